package nfs4

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
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

// misaddressEvery returns a Reply hook that, from reply from on, sends each
// reply whole but with another XID, and hangs up: a complete record that
// answers no call.
func misaddressEvery(from int) func(int, []byte) hostile.Reply {
	return func(n int, msg []byte) hostile.Reply {
		if n < from {
			return hostile.Reply{Msg: msg}
		}
		m := append([]byte(nil), msg...)
		m[0] ^= 0x80 // msg starts with the XID
		return hostile.Reply{Msg: m, Close: true}
	}
}

// A server that breaks every connection before it answers: it sends half
// of each reply, or the whole reply under another XID, and hangs up. Bytes
// arrive on each new connection, even whole records, but no reply to a
// call: no evidence that the server works, so the transport backs off
// between redials (with the default policy: 250ms, doubling, ±50%)
// instead of redialing at once. A soft call gives up after its budget,
// Timeo × Retrans × SoftTimeouts from its start, however often it was
// re-sent on a new connection meanwhile. Before, the client redialed at
// once, forever: 39,000 connections in 20 s, and the soft call never
// returned.
func TestHostileBrokenConnections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(from int) func(int, []byte) hostile.Reply
	}{
		{"half reply", hostile.CutEvery},
		{"other XID", misaddressEvery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, hostile.Faults{})
			hard := dialHostile(t, s, Config{})
			soft := dialHostile(t, s, Config{Soft: true, Timeo: 500 * time.Millisecond, Retrans: 1})
			s.SetFaults(hostile.Faults{Reply: tc.fault(s.Replies())})
			defer s.SetFaults(hostile.Faults{}) // so that the clients close at once

			// The soft call's budget is 500ms: an immediate redial after
			// the connection that had answered, then backoff steps of at
			// least 125ms and 250ms fit in it.
			conns := soft.Stats().Transport.Connects
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := soft.Stat(ctx, "/file")
			n := soft.Stats().Transport.Connects - conns
			t.Logf("soft Stat: %v after %d connections", err, n)
			if !errors.Is(err, rpc.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("soft Stat: %v; want an error matching rpc.ErrTimeout", err)
			}
			if n > 8 {
				t.Errorf("soft Stat: %d connections in its 500ms budget; want a backoff (at most 8)", n)
			}

			// A hard call keeps trying until its context ends, with the
			// same backoff: steps of at least 125, 250, 500 and 1000ms in
			// a 3 s window.
			conns = hard.Stats().Transport.Connects
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = hard.Stat(ctx, "/file")
			n = hard.Stats().Transport.Connects - conns
			t.Logf("hard Stat: %v after %d connections", err, n)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hard Stat: %v; want the context's deadline", err)
			}
			if n > 12 {
				t.Errorf("hard Stat: %d connections in 3s; want a backoff (at most 12)", n)
			}
		})
	}
}
