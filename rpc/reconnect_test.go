package rpc_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
)

// needRoot skips tests that bind reserved ports when they cannot. Under
// `make test` and in CI we run as root, so they run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("binding reserved ports needs root or CAP_NET_BIND_SERVICE; run `make test` as root")
	}
}

func reserved(p int) bool { return p >= 665 && p <= 1023 }

// dropFirst returns a handler that ends each of the first n connections as
// soon as a call arrives on it — by reset, or by orderly close — and echoes
// on every later connection.
func dropFirst(n int, abort bool) rpctest.Handler {
	return func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() < n {
			if abort {
				c.Abort()
			} else {
				c.Close()
			}
			return
		}
		rpctest.Echo(c, call)
	}
}

// TestCallSurvivesServerDroppingConnection: a call in flight when the server
// drops the connection completes after the reconnect; the server sees the
// same XID on both connections, from the local ports the policy chose.
func TestCallSurvivesServerDroppingConnection(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name     string
		policy   func() policy.Policy
		abort    bool
		samePort bool
	}{
		{"SameReservedPort/reset", func() policy.Policy { return policy.SameReservedPort(policy.Options{}) }, true, true},
		{"SameReservedPort/close", func() policy.Policy { return policy.SameReservedPort(policy.Options{}) }, false, true},
		{"NewReservedPort/reset", func() policy.Policy { return policy.NewReservedPort(policy.Options{}) }, true, false},
		{"Ephemeral/close", func() policy.Policy { return policy.Ephemeral(policy.Options{}) }, false, false},
		{"Hedged/reset", func() policy.Policy { return policy.Hedged(policy.Options{}) }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			srv := rpctest.Start(t, dropFirst(1, tc.abort))
			c := dial(t, srv.Addr(), tc.policy(), rpc.Config{})
			got, err := echo(ctxT(t, time.Minute), c, []byte("once more"))
			if err != nil || string(got) != "once more" {
				t.Fatalf("call across the drop: %q, %v", got, err)
			}
			calls := srv.Calls()
			if len(calls) != 2 || calls[0].XID != calls[1].XID || calls[0].Conn == calls[1].Conn {
				t.Fatalf("want one XID on two connections, server saw %+v", calls)
			}
			p0, p1 := calls[0].RemotePort, calls[1].RemotePort
			if (p0 == p1) != tc.samePort {
				t.Errorf("local ports %d then %d; want same port: %v", p0, p1, tc.samePort)
			}
			if st := c.Stats(); st.Retransmits != 1 {
				t.Errorf("retransmits = %d, want 1", st.Retransmits)
			}
		})
	}
}

// TestPolicyPortSequences drops the connection three times and checks the
// four local ports the server saw against each stock policy's promise.
func TestPolicyPortSequences(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name   string
		policy policy.Policy
		check  func(t *testing.T, ports []int)
	}{
		// The kernel's 3 s backoff would only slow this test down.
		{"SameReservedPort", policy.SameReservedPort(policy.Options{BackOff: backoff.NewConstantBackOff(10 * time.Millisecond)}), func(t *testing.T, ports []int) {
			for _, p := range ports {
				if p != ports[0] || !reserved(p) {
					t.Errorf("ports %v: want one reserved port throughout", ports)
					return
				}
			}
		}},
		{"NewReservedPort", policy.NewReservedPort(policy.Options{}), func(t *testing.T, ports []int) {
			seen := map[int]bool{}
			for _, p := range ports {
				if seen[p] || !reserved(p) {
					t.Errorf("ports %v: want a new reserved port each time", ports)
					return
				}
				seen[p] = true
			}
		}},
		{"Ephemeral", policy.Ephemeral(policy.Options{}), func(t *testing.T, ports []int) {
			seen := map[int]bool{}
			for _, p := range ports {
				if seen[p] || p < 1024 {
					t.Errorf("ports %v: want a new ephemeral port each time", ports)
					return
				}
				seen[p] = true
			}
		}},
		{"Hedged", policy.Hedged(policy.Options{}), func(t *testing.T, ports []int) {
			// The path is healthy, so the redial from the old port wins
			// every time and the old 4-tuple is kept.
			for _, p := range ports {
				if p != ports[0] || !reserved(p) {
					t.Errorf("ports %v: on a healthy path Hedged should keep its reserved port", ports)
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			srv := rpctest.Start(t, dropFirst(3, true))
			c := dial(t, srv.Addr(), tc.policy, rpc.Config{})
			if _, err := echo(ctxT(t, time.Minute), c, []byte("x")); err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, conn := range srv.Conns() {
				ports = append(ports, conn.RemotePort())
			}
			if len(ports) != 4 {
				t.Fatalf("server saw %d connections, want 4", len(ports))
			}
			tc.check(t, ports)
		})
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

// TestStatsCountResentCallsAwaitingReply: Stats.Resent counts the calls
// that were re-sent on a new connection and are still unanswered — the
// calls a flapping path keeps in flight — and drops back to zero once they
// are answered.
func TestStatsCountResentCallsAwaitingReply(t *testing.T) {
	testutil.CheckLeaks(t)
	var (
		mu      sync.Mutex
		victims []*rpctest.Conn
	)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() < 2 {
			mu.Lock()
			victims = append(victims, c)
			mu.Unlock()
			return // the first two connections swallow the call
		}
		rpctest.Echo(c, call)
	})
	c := dial(t, srv.Addr(), policy.Ephemeral(policy.Options{BackOff: backoff.NewConstantBackOff(10 * time.Millisecond)}), rpc.Config{})
	done := make(chan error, 1)
	go func() {
		_, err := echo(ctxT(t, time.Minute), c, []byte("again"))
		done <- err
	}()
	swallowedOn := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(victims) == n }
	}
	victim := func(i int) *rpctest.Conn { mu.Lock(); defer mu.Unlock(); return victims[i] }
	for i := range 2 { // sent once, then re-sent once; unanswered each time
		waitFor(t, fmt.Sprintf("connection %d swallowing the call", i+1), swallowedOn(i+1))
		if st := c.Stats(); st.Pending != 1 || st.Resent != i {
			t.Fatalf("sent %d time(s), unanswered: Pending %d, Resent %d; want 1, %d", i+1, st.Pending, st.Resent, i)
		}
		victim(i).Abort()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Pending != 0 || st.Resent != 0 || st.Retransmits != 2 {
		t.Errorf("answered after two re-sends: Pending %d, Resent %d, Retransmits %d; want 0, 0, 2", st.Pending, st.Resent, st.Retransmits)
	}
}

// staleArgs is a call's arguments that refuse to be re-sent once stale is
// set (rpc.Resender).
type staleArgs struct {
	opaque
	stale *atomic.Bool
}

var errStale = errors.New("the server no longer knows this call's context")

func (a *staleArgs) Resend() error {
	if a.stale.Load() {
		return errStale
	}
	return nil
}

// TestResenderDecidesReSend: a call cut off by a lost connection is re-sent
// on the next one while its arguments' Resend allows it, and fails with
// Resend's error, without being re-sent, once it does not.
func TestResenderDecidesReSend(t *testing.T) {
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			testutil.CheckLeaks(t)
			srv := rpctest.Start(t, dropFirst(1, true))
			c := dial(t, srv.Addr(), policy.Ephemeral(policy.Options{}), rpc.Config{})
			var flag atomic.Bool
			flag.Store(stale)
			var res opaque
			err := c.Call(ctxT(t, time.Minute), 1, &staleArgs{opaque{[]byte("x")}, &flag}, &res)
			st := c.Stats()
			if stale {
				if !errors.Is(err, errStale) || st.Retransmits != 0 || len(srv.Calls()) != 1 {
					t.Fatalf("stale call: %v after %d re-sends, server saw %d calls; want errStale, not re-sent", err, st.Retransmits, len(srv.Calls()))
				}
				return
			}
			if err != nil || st.Retransmits != 1 || len(srv.Calls()) != 2 {
				t.Fatalf("call: %v after %d re-sends, server saw %d calls; want success after 1 re-send", err, st.Retransmits, len(srv.Calls()))
			}
		})
	}
}
