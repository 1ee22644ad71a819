package nfs4

import (
	"bytes"
	"io/fs"
	"math"
	"testing"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
)

// Tests of the bounds on what a server's replies can make the client
// allocate, read or hold, against internal/hostile.

// fs.ReadFile of a file whose size attribute is absurd reads what the
// server sends up to its end of file: the size does not size a buffer.
func TestHostileReadFileHugeSize(t *testing.T) {
	for _, size := range []uint64{1 << 40, math.MaxInt64, math.MaxUint64} {
		t.Run("", func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, hostile.Faults{Size: size})
			c := dialHostile(t, s, Config{})
			fi, err := fs.Stat(c.FS("/"), "file")
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if fi.Size() < 0 {
				t.Errorf("Stat of a file of size %d: Size() = %d; want it clamped, not negative", size, fi.Size())
			}
			data, err := fs.ReadFile(c.FS("/"), "file")
			if err != nil {
				t.Fatalf("ReadFile of a file of size %d: %v", size, err)
			}
			want := make([]byte, 4096)
			for i := range want {
				want[i] = byte(i*7 + i>>9)
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("ReadFile returned %d bytes; want the server's 4096", len(data))
			}
		})
	}
}
