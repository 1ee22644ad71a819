package rpc_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// dialTrunk returns a Client over n real transports to addr.
func dialTrunk(t testing.TB, addr string, n int, cfg rpc.Config) *rpc.Client {
	t.Helper()
	ts := make([]rpc.Transport, n)
	for i := range ts {
		tr, err := xprt.New(xprt.Config{Addr: addr, Policy: policy.Ephemeral(policy.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	if cfg.Prog == 0 {
		cfg.Prog, cfg.Vers = 400000, 1
	}
	c := rpc.NewTrunk(ts, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTrunkSpreadsCallsAndBindsEachConnection: calls of a Client with two
// transports go on both connections, and each connection carries its Bind
// call before any other.
func TestTrunkSpreadsCallsAndBindsEachConnection(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if call.Proc == 7 {
			time.Sleep(20 * time.Millisecond) // keep calls in flight so that both lanes fill
		}
		rpctest.Echo(c, call)
	})
	var binds atomic.Int32
	c := dialTrunk(t, srv.Addr(), 2, rpc.Config{Bind: func(ctx context.Context, remote net.Addr, call rpc.CallFunc) error {
		binds.Add(1)
		if remote == nil || remote.String() != srv.Addr() {
			t.Errorf("Bind got remote address %v; want the server's, %s", remote, srv.Addr())
		}
		var res opaque
		return call(ctx, 9, &opaque{[]byte("bind")}, &res)
	}})
	ctx := ctxT(t, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res opaque
			errs <- c.Call(ctx, 7, &opaque{[]byte("x")}, &res)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := binds.Load(); n != 2 {
		t.Errorf("Bind ran %d times, want 2 (one per connection)", n)
	}
	perConn := map[int]int{}
	first := map[int]uint32{}
	for _, r := range srv.Calls() {
		if _, ok := first[r.Conn]; !ok {
			first[r.Conn] = r.Proc
		}
		perConn[r.Conn]++
	}
	if len(perConn) != 2 {
		t.Fatalf("calls per connection %v, want calls on 2 connections", perConn)
	}
	for conn, proc := range first {
		if proc != 9 {
			t.Errorf("connection %d carried procedure %d first, want the Bind call (9)", conn, proc)
		}
	}
	if st := c.Stats(); st.Conns != 2 {
		t.Errorf("Stats.Conns = %d, want 2", st.Conns)
	}
}

// TestTrunkResendsOnTheOtherConnection: the calls a connection swallows
// are re-sent, with their XIDs, on the Client's other connection when that
// one is reset, and complete without waiting for a reconnect.
func TestTrunkResendsOnTheOtherConnection(t *testing.T) {
	testutil.CheckLeaks(t)
	var victim atomic.Pointer[rpctest.Conn]
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if call.Proc == 7 && victim.CompareAndSwap(nil, c) || victim.Load() == c {
			return // the first connection to see a call swallows it, and every later one
		}
		rpctest.Echo(c, call)
	})
	c := dialTrunk(t, srv.Addr(), 2, rpc.Config{})
	ctx := ctxT(t, time.Minute)
	// Both connections up first.
	for i := 0; i < 2; i++ {
		var res opaque
		if err := c.Call(ctx, 1, &opaque{[]byte("warm")}, &res); err != nil {
			t.Fatal(err)
		}
	}
	srv.WaitConns(t, 2, 10*time.Second)
	waitFor(t, "two ready connections", func() bool { return c.Stats().Conns == 2 })

	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res opaque
			errs <- c.Call(ctx, 7, &opaque{[]byte("y")}, &res)
		}()
	}
	waitFor(t, "a connection swallowing calls", func() bool { return victim.Load() != nil && c.Stats().Pending > 0 })
	time.Sleep(50 * time.Millisecond) // let more calls land on it (bounded; not asserted)
	victim.Load().Abort()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	v := victim.Load()
	swallowed := map[uint32]bool{}
	answered := map[uint32]bool{}
	for _, r := range srv.Calls() {
		if r.Proc != 7 {
			continue
		}
		if r.Conn == v.Index() {
			swallowed[r.XID] = true
		} else {
			answered[r.XID] = true
		}
	}
	if len(swallowed) == 0 {
		t.Fatal("no call went on the swallowing connection")
	}
	for xid := range swallowed {
		if !answered[xid] {
			t.Errorf("XID %#x swallowed but never re-sent on another connection", xid)
		}
	}
	if st := c.Stats(); st.Retransmits != uint64(len(swallowed)) {
		t.Errorf("Retransmits = %d, want %d (the swallowed calls)", st.Retransmits, len(swallowed))
	}
}

// TestTrunkLeavesOutATransportThatGaveUp: a transport whose policy gives up
// for good is left out, and calls go on the other; once every transport
// has given up, calls fail with the last one's error.
func TestTrunkLeavesOutATransportThatGaveUp(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, rpctest.Echo)
	giveUp := policy.Func(func(a policy.Attempt) policy.Decision { return policy.Decision{GiveUp: a.N > 1} })
	newT := func(addr string, p policy.Policy) rpc.Transport {
		tr, err := xprt.New(xprt.Config{Addr: addr, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	dead := newT("127.0.0.1:1", giveUp) // nothing listens on port 1 here
	c := rpc.NewTrunk([]rpc.Transport{dead, newT(srv.Addr(), policy.Ephemeral(policy.Options{}))},
		rpc.Config{Prog: 400000, Vers: 1})
	defer c.Close()
	ctx := ctxT(t, time.Minute)
	for i := 0; i < 20; i++ {
		if got, err := echo(ctx, c, []byte("on")); err != nil || string(got) != "on" {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}

	lone := rpc.NewTrunk([]rpc.Transport{newT("127.0.0.1:1", giveUp)}, rpc.Config{Prog: 400000, Vers: 1})
	defer lone.Close()
	var de *xprt.DialError
	if _, err := echo(ctx, lone, []byte("off")); !errors.As(err, &de) {
		t.Fatalf("a call with every transport given up: %v; want the *xprt.DialError", err)
	}
}
