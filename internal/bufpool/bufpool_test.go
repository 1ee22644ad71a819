package bufpool

import (
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
)

func TestGetLengthAndCapacity(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 1 << 20, 1<<20 + 1, 1 << 22, 1<<22 + 1} {
		p := Get(n)
		if len(*p) != n || cap(*p) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*p), cap(*p))
		}
		Put(p)
	}
}

func TestPutGrownBufferServesItsClass(t *testing.T) {
	testutil.CheckLeaks(t)
	// A buffer grown by append to an odd capacity must still satisfy any
	// Get that draws it from the class it was put into.
	b := make([]byte, 0, 3000)
	Put(&b)
	for i := 0; i < 4; i++ {
		p := Get(2048)
		if cap(*p) < 2048 || len(*p) != 2048 {
			t.Fatalf("Get(2048) after Put(cap 3000): len %d cap %d", len(*p), cap(*p))
		}
	}
	Put(nil) // must not panic
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	testutil.CheckLeaks(t)
	Put(Get(64 << 10))
	allocs := testing.AllocsPerRun(1000, func() {
		p := Get(64 << 10)
		Put(p)
	})
	// sync.Pool may drop items at a GC; allow a rare miss.
	if allocs > 0.1 {
		t.Fatalf("Get/Put allocates %.2f times per round", allocs)
	}
}
