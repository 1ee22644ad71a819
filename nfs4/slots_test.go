package nfs4

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
)

func TestSlotTable(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx := context.Background()
	st := newSlotTable(4)

	// Lowest free slot first; sequence ids start at 1; highest_slotid is
	// the highest slot in use.
	for want := 0; want < 3; want++ {
		id, seq, highest, err := st.get(ctx)
		if err != nil || id != want || seq != 1 || highest != uint32(want) {
			t.Fatalf("get %d: slot %d seq %d highest %d, %v", want, id, seq, highest, err)
		}
	}
	st.put(1, 1, true)  // processed: slot 1 moves to seq 1
	st.put(0, 1, false) // SEQUENCE failed: slot 0 stays at 0
	if id, seq, _, _ := st.get(ctx); id != 0 || seq != 1 {
		t.Fatalf("after an unprocessed request slot 0 should resend seq 1, got slot %d seq %d", id, seq)
	}
	if id, seq, _, _ := st.get(ctx); id != 1 || seq != 2 {
		t.Fatalf("after a processed request slot 1 should send seq 2, got slot %d seq %d", id, seq)
	}

	// The server's target shrinks the table: slot 3 is not handed out,
	// so a caller waits until a slot is put back; cancelling the wait works.
	st.setTarget(2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, _, err := st.get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get with slots 0-2 busy and target 2: %v, want a deadline error", err)
	}
	got := make(chan int)
	go func() {
		id, _, _, _ := st.get(ctx)
		got <- id
	}()
	st.put(2, 1, true)
	if id := <-got; id != 2 {
		t.Fatalf("waiter got slot %d, want the one put back (2)", id)
	}

	// Raising the target again makes slot 3 available at once.
	st.setTarget(10)
	if id, _, _, err := st.get(ctx); id != 3 || err != nil {
		t.Fatalf("after the target rose: slot %d, %v", id, err)
	}
}
