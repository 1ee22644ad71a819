package nfs4

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// TestAbandonedCallsLeaveSlotsUsable: calls whose context ends while their
// request is on the wire leave their slot's state unknown; the slot is
// resynchronised before reuse, so that no later call is answered as the
// replay of an abandoned one (NFS4ERR_SEQ_MISORDERED,
// NFS4ERR_RETRY_UNCACHED_REP, or a reply to another operation).
func TestAbandonedCallsLeaveSlotsUsable(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{Slots: 8})
	name := srv.Pseudo()
	var wg sync.WaitGroup
	var abandoned atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+(g*i)%300)*time.Microsecond)
				_, err := c.Stat(ctx, name)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("abandoned Stat: %v, want a deadline error", err)
						return
					}
					abandoned.Add(1)
				}
				if _, err := c.Stat(context.Background(), name); err != nil {
					t.Errorf("Stat after abandoned calls: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if abandoned.Load() == 0 {
		t.Log("no call was abandoned mid-flight this run; the machine was faster than the deadlines")
	}
	// Resyncs of abandoned slots run in the background; they finish.
	for i := 0; i < 1000 && c.Stats().RPC.Pending != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.Stats(); st.RPC.Pending != 0 {
		t.Errorf("%d calls still pending 10 s after the last caller returned", st.RPC.Pending)
	}
}
