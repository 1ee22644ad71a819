package nfs4

import (
	"context"
	"sync"
)

// slotTable is the client side of a session's fore-channel slot table
// (RFC 8881 §2.10.6.1): at most one request in flight per slot, each
// carrying the slot's next sequence id, so that the server's reply cache
// gives a re-sent request exactly-once semantics.
//
// Slots are handed out lowest first, so highest_slotid stays small while the
// load is light. The number of usable slots follows the server's
// target_highest_slotid. A slotTable is safe for concurrent use.
type slotTable struct {
	mu      sync.Mutex
	slots   []slot          // the negotiated number of slots
	limit   int             // usable slots: 1 ≤ limit ≤ len(slots)
	waiters []chan struct{} // FIFO of goroutines waiting for a slot
}

// slot is one entry of the table.
type slot struct {
	busy bool
	// seq is the sequence id of the last request the server is known to
	// have processed on this slot.
	seq uint32
}

func newSlotTable(n int) *slotTable {
	return &slotTable{slots: make([]slot, n), limit: n}
}

// get waits for a free slot and returns its index, the sequence id to send
// and the highest slot id in use (for SEQUENCE's sa_highest_slotid).
func (t *slotTable) get(ctx context.Context) (id int, seq, highest uint32, err error) {
	for {
		t.mu.Lock()
		for i := 0; i < t.limit; i++ {
			if !t.slots[i].busy {
				t.slots[i].busy = true
				seq = t.slots[i].seq + 1
				highest = uint32(t.highestBusyLocked())
				t.mu.Unlock()
				return i, seq, highest, nil
			}
		}
		w := make(chan struct{})
		t.waiters = append(t.waiters, w)
		t.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			t.mu.Lock()
			removed := t.removeWaiterLocked(w)
			t.mu.Unlock()
			if !removed {
				// A slot was handed to us as we gave up: pass it on.
				t.wakeOne()
			}
			return 0, 0, 0, ctx.Err()
		}
	}
}

func (t *slotTable) highestBusyLocked() int {
	h := 0
	for i := range t.slots {
		if t.slots[i].busy {
			h = i
		}
	}
	return h
}

func (t *slotTable) removeWaiterLocked(w chan struct{}) bool {
	for i, x := range t.waiters {
		if x == w {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// wakeOne wakes the longest waiter, if any.
func (t *slotTable) wakeOne() {
	t.mu.Lock()
	var w chan struct{}
	if len(t.waiters) > 0 {
		w = t.waiters[0]
		t.waiters = t.waiters[1:]
	}
	t.mu.Unlock()
	if w != nil {
		close(w)
	}
}

// put releases slot id. If processed, the server processed the request
// sent with sequence id seq (its SEQUENCE succeeded) and the slot moves on
// to it; otherwise the slot's sequence id stays. A slot whose request's
// fate is unknown must not be put back until it is known (Client.resync).
func (t *slotTable) put(id int, seq uint32, processed bool) {
	t.mu.Lock()
	s := &t.slots[id]
	s.busy = false
	if processed {
		s.seq = seq
	}
	t.mu.Unlock()
	t.wakeOne()
}

// setTarget follows the server's target_highest_slotid: from the next get
// on, only slots 0..target are handed out (at least one).
func (t *slotTable) setTarget(target uint32) {
	t.mu.Lock()
	n := int(min(uint64(target)+1, uint64(len(t.slots))))
	grew := n > t.limit
	t.limit = max(n, 1)
	t.mu.Unlock()
	if grew {
		for i := 0; i < n; i++ {
			t.wakeOne()
		}
	}
}
