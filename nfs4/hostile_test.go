package nfs4

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
)

// Tests against internal/hostile, a server that breaks the protocol on
// command: what a broken or malicious server can make the client do.

// dialHostile dials s; the test's cleanup closes the client.
func dialHostile(t *testing.T, s *hostile.Server, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.Addr(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// quickBackOff waits 1ms between retries, so that tests of retry bounds
// do not wait for the default backoff.
func quickBackOff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

// A server that answers every SEQUENCE with NFS4ERR_RETRY_UNCACHED_REP or
// NFS4ERR_CONN_NOT_BOUND_TO_SESSION does not make the client spin: it
// backs off, and gives up after a bounded number of tries.
func TestHostileRepeatedRetryStatus(t *testing.T) {
	for _, tc := range []struct {
		status uint32
		want   error
	}{
		{hostile.StatusRetryUncached, ErrRetryUncachedRep},
		{hostile.StatusConnNotBound, ErrConnNotBoundToSession},
	} {
		t.Run(Status(tc.status).String(), func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, hostile.Faults{})
			hard := dialHostile(t, s, Config{})
			soft := dialHostile(t, s, Config{Soft: true, BackOff: quickBackOff})
			s.SetFaults(hostile.Faults{Status: map[uint32]uint32{hostile.OpSequence: tc.status}})

			// A hard call in a 2 s window: a handful of COMPOUNDs, not
			// the tens of thousands of a loop without a wait.
			before := s.Compounds()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := hard.Stat(ctx, "/file")
			cancel()
			n := s.Compounds() - before
			t.Logf("hard Stat: %d COMPOUNDs in 2s, err %v", n, err)
			if err == nil {
				t.Fatal("hard Stat succeeded against a server that refuses every SEQUENCE")
			}
			if n > 100 {
				t.Errorf("hard Stat sent %d COMPOUNDs in 2s; want a backoff (at most 100)", n)
			}

			// A soft call without a deadline gives up by itself.
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before = s.Compounds()
			_, err = soft.Stat(ctx, "/file")
			n = s.Compounds() - before
			if !errors.Is(err, tc.want) {
				t.Fatalf("soft Stat: %v; want an error matching %v", err, tc.want)
			}
			if n > 2*(8+1) {
				t.Errorf("soft Stat sent %d COMPOUNDs before giving up; want at most %d", n, 2*(8+1))
			}
		})
	}
}
