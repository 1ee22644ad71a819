package nfs4

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
)

// TestResetsDuringNonIdempotentOperations: while the connection is reset
// again and again, 64 goroutines each run exclusive creates, renames and
// removes. Requests cut off by a reset are re-sent on the new connection
// with their slot and sequence id, and the server's session reply cache
// answers a replay of one that had already run with its original reply —
// so none of them fails with NOENT or EXIST, and the final tree is exactly
// what one run of each operation leaves.
func TestResetsDuringNonIdempotentOperations(t *testing.T) {
	// A reset every few milliseconds can push the reconnect backoff past a
	// short lease; expiry is a different fault (lease recovery), so give
	// this test a long one where the server can.
	forEachServerWith(t, ganesha.Config{Lease: time.Minute}, Config{Slots: 64}, testResets)
}

// testResets is TestResetsDuringNonIdempotentOperations's test, also run
// over NFSv4.0.
func testResets(t *testing.T, s testServer, c *Client) {
	{
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		base := s.dir + "/replay"
		if err := c.Mkdir(ctx, base, 0o755); err != nil {
			t.Fatal(err)
		}

		stop := make(chan struct{})
		resets := make(chan int, 1)
		go func() { // the fault: reset the connection every few milliseconds
			n := 0
			defer func() { resets <- n }()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				case <-time.After(3 * time.Millisecond):
				}
				// Each connection in turn (Config.Connections).
				tr := c.trs[n%len(c.trs)]
				tr.Fail(tr.Stats().Gen, io.ErrUnexpectedEOF)
				n++
			}
		}()

		const workers, rounds = 64, 4
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- func() error {
					for r := 0; r < rounds; r++ {
						a := fmt.Sprintf("%s/w%02d-r%d-a", base, g, r)
						b := fmt.Sprintf("%s/w%02d-r%d-b", base, g, r)
						f, err := c.OpenFile(ctx, a, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
						if err != nil {
							return err
						}
						if err := f.Close(); err != nil {
							return err
						}
						if err := c.Rename(ctx, a, b); err != nil {
							return err
						}
						if r%2 == 0 {
							if err := c.Remove(ctx, b); err != nil {
								return err
							}
						}
					}
					return nil
				}()
			}()
		}
		wg.Wait()
		close(stop)
		n := <-resets
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("an operation failed across %d resets: %v", n, err)
			}
		}
		// Rounds 1 and 3 leave their renamed file; nothing else may remain.
		var want []string
		for g := 0; g < workers; g++ {
			for _, r := range []int{1, 3} {
				want = append(want, fmt.Sprintf("w%02d-r%d-b", g, r))
			}
		}
		sort.Strings(want)
		got := s.side.tree(t, "replay")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("final tree after %d resets:\n got %v\nwant %v", n, got, want)
		}
		st := c.Stats()
		t.Logf("%d resets, %d reconnects, %d retransmitted calls", n, st.Transport.Reconnects, st.RPC.Retransmits)
		if st.RPC.Retransmits == 0 {
			t.Errorf("no call was cut off by a reset: the test did not exercise replay")
		}
	}
}
