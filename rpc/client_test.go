package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
	"github.com/gonfs/nfs/xprt"
)

// opaque is call arguments and results of the echo peer: one XDR opaque.
type opaque struct{ b []byte }

func (o *opaque) MarshalXDR(e *xdr.Encoder) error { e.Opaque(o.b); return nil }

func (o *opaque) UnmarshalXDR(d *xdr.Decoder) error {
	o.b = append(o.b[:0], d.Opaque(4<<20)...)
	return d.Err()
}

// dial returns a Client for addr over a real xprt.Transport. The client is
// closed at cleanup, before the server's cleanup runs.
func dial(t testing.TB, addr string, p policy.Policy, cfg rpc.Config) *rpc.Client {
	t.Helper()
	if p == nil {
		p = policy.Ephemeral(policy.Options{})
	}
	tr, err := xprt.New(xprt.Config{Addr: addr, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prog == 0 {
		cfg.Prog, cfg.Vers = 400000, 1
	}
	c := rpc.NewClient(tr, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(ctx context.Context, c *rpc.Client, payload []byte) ([]byte, error) {
	var res opaque
	err := c.Call(ctx, 1, &opaque{payload}, &res)
	return res.b, err
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPipelinedCallsEachGetTheirOwnReply(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, rpctest.Echo)
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, 2*time.Minute)

	const goroutines, calls = 64, 1000
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := make([]byte, 8)
			var res opaque
			for i := 0; i < calls; i++ {
				binary.BigEndian.PutUint32(want, uint32(g))
				binary.BigEndian.PutUint32(want[4:], uint32(i))
				if err := c.Call(ctx, 1, &opaque{want}, &res); err != nil {
					errs <- fmt.Errorf("goroutine %d call %d: %w", g, i, err)
					return
				}
				if string(res.b) != string(want) {
					errs <- fmt.Errorf("goroutine %d call %d: got reply %x, want %x", g, i, res.b, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Errorf("server saw %d connections, want all calls pipelined on 1", n)
	}
	st := c.Stats()
	if st.Calls != goroutines*calls || st.Retransmits != 0 || st.UnknownXIDs != 0 || st.Pending != 0 {
		t.Errorf("stats = %+v, want %d calls and nothing else", st, goroutines*calls)
	}
}

func TestOutOfOrderReplies(t *testing.T) {
	testutil.CheckLeaks(t)
	const n = 16
	var mu sync.Mutex
	var held []*rpctest.Call
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, call)
		if len(held) == n {
			for i := n - 1; i >= 0; i-- { // newest first
				c.Reply(held[i], held[i].Args)
			}
		}
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte(fmt.Sprintf("call-%d", i))
			got, err := echo(ctx, c, want)
			if err != nil || string(got) != string(want) {
				t.Errorf("call %d: got %q, %v; want %q", i, got, err, want)
			}
		}()
	}
	wg.Wait()
}

func TestMultiFragmentReply(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, rpctest.Echo)
	srv.SetFragmentSize(1000)
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	want := make([]byte, 100_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got, err := echo(ctxT(t, time.Minute), c, want)
	if err != nil || string(got) != string(want) {
		t.Fatalf("100 kB echo in 1000-byte fragments: err %v, equal %v", err, string(got) == string(want))
	}
}

func TestCancellingOneCallLeavesOthersAlone(t *testing.T) {
	testutil.CheckLeaks(t)
	stuck := make(chan *rpctest.Call, 1)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if call.Proc == 2 {
			stuck <- call // never answered until the test says so
			return
		}
		rpctest.Echo(c, call)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Call(cctx, 2, &opaque{[]byte("slow")}, nil) }()
	held := <-stuck // the slow call reached the server

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := echo(ctx, c, []byte("fast")); err != nil {
				t.Errorf("fast call: %v", err)
			}
		}()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v, want context.Canceled", err)
	}
	wg.Wait()

	// A late reply to the abandoned call is counted and dropped.
	held.Conn.Reply(held, nil)
	waitFor(t, "late reply counted as unknown XID", func() bool { return c.Stats().UnknownXIDs == 1 })
	if _, err := echo(ctx, c, []byte("after")); err != nil {
		t.Fatalf("call after the late reply: %v", err)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Errorf("cancelling a call cost a reconnect: %d connections", n)
	}
}

func TestUnknownXIDIsCountedAndDropped(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		bogus := *call
		bogus.XID ^= 0xdeadbeef
		c.Reply(&bogus, []byte{0, 0, 0, 0})
		c.Reply(call, call.Args)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	got, err := echo(ctxT(t, time.Minute), c, []byte("x"))
	if err != nil || string(got) != "x" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	waitFor(t, "unknown XID counted", func() bool { return c.Stats().UnknownXIDs == 1 })
}

func TestReplyOutcomesAreTypedErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		switch call.Proc {
		case 1:
			c.ReplyAccept(call, rpctest.ProgMismatch, 2, 3)
		case 2:
			c.ReplyAccept(call, rpctest.GarbageArgs, 0, 0)
		case 3:
			c.ReplyDenied(call, rpctest.AuthError, 0, 0, rpctest.AuthTooWeak)
		case 4:
			c.ReplyDenied(call, rpctest.RPCMismatch, 2, 2, 0)
		case 5:
			c.ReplyAccept(call, rpctest.ProcUnavail, 0, 0)
		}
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)

	err := c.Call(ctx, 1, nil, nil)
	var ae *rpc.AcceptError
	if !errors.Is(err, rpc.ProgMismatch) || !errors.As(err, &ae) || ae.Low != 2 || ae.High != 3 {
		t.Errorf("PROG_MISMATCH 2..3: got %v", err)
	}
	if err := c.Call(ctx, 2, nil, nil); !errors.Is(err, rpc.GarbageArgs) {
		t.Errorf("GARBAGE_ARGS: got %v", err)
	}
	err = c.Call(ctx, 3, nil, nil)
	var de *rpc.DeniedError
	if !errors.Is(err, rpc.AuthTooWeak) || !errors.Is(err, rpc.AuthError) || !errors.As(err, &de) {
		t.Errorf("AUTH_ERROR AUTH_TOOWEAK: got %v", err)
	}
	err = c.Call(ctx, 4, nil, nil)
	if !errors.Is(err, rpc.RPCMismatch) || !errors.As(err, &de) || de.Low != 2 || de.High != 2 {
		t.Errorf("RPC_MISMATCH 2..2: got %v", err)
	}
	if err := c.Call(ctx, 5, nil, nil); !errors.Is(err, rpc.ProcUnavail) {
		t.Errorf("PROC_UNAVAIL: got %v", err)
	}
}

func TestAuthSysCredentialOnTheWire(t *testing.T) {
	testutil.CheckLeaks(t)
	seen := make(chan *rpctest.Call, 1)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		seen <- call
		c.Reply(call, nil)
	})
	auth, err := rpc.NewAuthSys(rpc.SysCred{Stamp: 7, Machine: "client.example", UID: 1000, GID: 100, GIDs: []uint32{4, 24, 27}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.Addr(), nil, rpc.Config{Auth: auth})
	if err := c.Call(ctxT(t, time.Minute), 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	call := <-seen
	cred, err := rpc.ParseSysCred(call.Cred)
	if call.CredFlavor != rpctest.AuthSys || err != nil || cred.UID != 1000 || cred.GID != 100 ||
		cred.Machine != "client.example" || len(cred.GIDs) != 3 || cred.Stamp != 7 {
		t.Fatalf("server saw flavor %d cred %+v (%v)", call.CredFlavor, cred, err)
	}
}

func TestCloseFailsPendingCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(*rpctest.Conn, *rpctest.Call) {}) // never answers
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)
	const n = 5
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errc <- c.Call(ctx, 1, nil, nil) }()
	}
	srv.WaitCalls(t, n, 10*time.Second)
	c.Close()
	for i := 0; i < n; i++ {
		if err := <-errc; !errors.Is(err, rpc.ErrClosed) {
			t.Errorf("pending call after Close: %v, want ErrClosed", err)
		}
	}
	if err := c.Call(ctx, 1, nil, nil); !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
}

func TestHostileRecordMarkerResetsConnection(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() == 0 {
			// A reply announcing a 2 GiB fragment, and nothing after it.
			c.WriteRaw([]byte{0xff, 0xff, 0xff, 0xff})
			return
		}
		rpctest.Echo(c, call)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := echo(ctxT(t, time.Minute), c, []byte("still here"))
	runtime.ReadMemStats(&after)
	if err != nil || string(got) != "still here" {
		t.Fatalf("call across the reset: %q, %v", got, err)
	}
	calls := srv.Calls()
	if len(calls) != 2 || calls[0].XID != calls[1].XID || calls[0].Conn == calls[1].Conn {
		t.Fatalf("want the same XID re-sent on a second connection, server saw %+v", calls)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("a hostile 4-byte header cost %d MiB of allocation", grew>>20)
	}
}

func TestMajorTimeoutForcesReconnect(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() == 0 {
			return // the first connection swallows the call
		}
		rpctest.Echo(c, call)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{Timeo: 50 * time.Millisecond, Retrans: 2})
	got, err := echo(ctxT(t, time.Minute), c, []byte("eventually"))
	if err != nil || string(got) != "eventually" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	calls := srv.Calls()
	if len(calls) != 2 || calls[0].XID != calls[1].XID || calls[0].Conn != 0 || calls[1].Conn != 1 {
		t.Fatalf("want the same XID on connection 0 then 1, server saw %+v", calls)
	}
	if st := c.Stats(); st.MajorTimeouts < 1 || st.Retransmits != 1 {
		t.Errorf("stats = %+v, want ≥1 major timeout and 1 retransmit", st)
	}
}

func TestSoftCallFailsAfterMajorTimeouts(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(*rpctest.Conn, *rpctest.Call) {}) // never answers
	c := dial(t, srv.Addr(), nil, rpc.Config{Timeo: 20 * time.Millisecond, Retrans: 1, Soft: true, SoftTimeouts: 2})
	err := c.Call(ctxT(t, time.Minute), 1, nil, nil)
	var te *rpc.TimeoutError
	if !errors.Is(err, rpc.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || te.MajorTimeouts != 2 {
		t.Fatalf("soft call: %v, want a TimeoutError after 2 major timeouts", err)
	}
	// The first major timeout dropped the connection. Whether the re-sent
	// call reached the server before the second one depends on how fast the
	// redial was; if it did, it carried the same XID on a new connection.
	calls := srv.Calls()
	if len(calls) == 0 || len(calls) > 2 || len(calls) == 2 && (calls[0].XID != calls[1].XID || calls[0].Conn == calls[1].Conn) {
		t.Fatalf("server saw %+v, want the call once, or twice with one XID on two connections", calls)
	}
	if st := c.Stats(); st.MajorTimeouts != 2 || st.Pending != 0 {
		t.Errorf("stats %+v, want 2 major timeouts and nothing pending", st)
	}
	if c.Stats().Pending != 0 {
		t.Errorf("a timed-out call is still pending")
	}
}

// halfReply is a handler that writes the first half of a reply to every
// call, its XID included, and hangs up: bytes arrive, never a whole reply.
func halfReply(c *rpctest.Conn, call *rpctest.Call) {
	rec := binary.BigEndian.AppendUint32(nil, 1<<31|24)
	rec = binary.BigEndian.AppendUint32(rec, call.XID)
	rec = binary.BigEndian.AppendUint32(rec, 1) // REPLY; 16 bytes of 24 missing
	c.WriteRaw(rec)
	c.Close()
}

// A soft call's budget runs from its start: re-sending it on a new
// connection does not restart it. The server breaks every connection
// before it answers and the policy redials much faster than the major
// timeout, yet the call gives up with a TimeoutError.
func TestSoftBudgetSurvivesResends(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, halfReply)
	p := policy.Ephemeral(policy.Options{BackOff: backoff.NewConstantBackOff(time.Millisecond)})
	c := dial(t, srv.Addr(), p, rpc.Config{Timeo: 200 * time.Millisecond, Retrans: 1, Soft: true, SoftTimeouts: 2})
	err := c.Call(ctxT(t, 20*time.Second), 1, nil, nil)
	var te *rpc.TimeoutError
	if !errors.Is(err, rpc.ErrTimeout) || !errors.As(err, &te) {
		t.Fatalf("soft call: %v, want a TimeoutError", err)
	}
	// Timers never fire early: the call had all of its budget.
	if te.MajorTimeouts != 2 || te.Waited < 400*time.Millisecond {
		t.Errorf("soft call: %+v; want a budget of 2 major timeouts, 400ms", te)
	}
	st := c.Stats()
	t.Logf("%d connections, %d retransmits before %v", len(srv.Calls()), st.Retransmits, err)
	if st.Pending != 0 {
		t.Errorf("a timed-out call is still pending")
	}
}

// resetCounter counts the Resets of the policy it wraps.
type resetCounter struct {
	policy.Policy
	resets atomic.Int32
}

func (r *resetCounter) Reset() { r.resets.Add(1); r.Policy.Reset() }

// Only a whole reply to a call is evidence that a connection works, and
// resets the policy's backoff: half a reply is not, however many bytes it
// has. The first connection answers one call and is closed by the server;
// every later one sends half a reply and hangs up.
func TestPolicyResetByRepliesOnly(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() > 0 {
			halfReply(c, call)
			return
		}
		rpctest.Echo(c, call)
		c.Close()
	})
	p := &resetCounter{Policy: policy.Ephemeral(policy.Options{BackOff: backoff.NewConstantBackOff(time.Millisecond)})}
	c := dial(t, srv.Addr(), p, rpc.Config{})
	if _, err := echo(ctxT(t, time.Minute), c, []byte("answered")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Call(ctx, 1, nil, nil) }()
	srv.WaitConns(t, 6, 30*time.Second)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("hard call: %v, want context.Canceled", err)
	}
	if n := p.resets.Load(); n != 1 {
		t.Errorf("policy Reset %d times over 1 connection that answered and 5 that sent half a reply; want 1", n)
	}
}

func TestHardCallWaitsUntilContextEnds(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, func(*rpctest.Conn, *rpctest.Call) {}) // never answers
	c := dial(t, srv.Addr(), nil, rpc.Config{Timeo: 20 * time.Millisecond, Retrans: 1})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Call(ctx, 1, nil, nil) }()
	// Several major timeouts pass without the hard call giving up.
	srv.WaitConns(t, 3, 30*time.Second)
	select {
	case err := <-errc:
		t.Fatalf("hard call returned %v before its context ended", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("hard call: %v, want context.Canceled", err)
	}
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting: %s", what)
}

// TestSmallCallNotStuckBehindBulkRecords: when a connection cannot take
// bulk records (WRITE data) as fast as calls produce them — a slow link, or
// the burst of re-sends after a reconnect — a small call issued after them
// reaches the server behind what the kernel's buffers hold and the record
// being written, not behind every bulk record waiting to be written.
func TestSmallCallNotStuckBehindBulkRecords(t *testing.T) {
	testutil.CheckLeaks(t)
	const bulk = 48
	release := make(chan struct{})
	var releaseOnce, holdOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if call.Proc == 1 {
			// The server stops reading at the first bulk call, until
			// released: the buffers fill and the writers block.
			holdOnce.Do(func() { <-release })
		}
		_ = c.Reply(call, nil)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)
	if err := c.Call(ctx, 2, &opaque{[]byte("warm")}, noResult{}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	var wg sync.WaitGroup
	for i := 0; i < bulk; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Call(ctx, 1, &opaque{payload}, noResult{}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "the bulk calls pending", func() bool { return c.Stats().Pending == bulk })
	time.Sleep(200 * time.Millisecond) // the writers block on full buffers (bounded; not asserted)
	small := make(chan error, 1)
	go func() { small <- c.Call(ctx, 3, &opaque{[]byte("small")}, noResult{}) }()
	waitFor(t, "the small call pending", func() bool { return c.Stats().Pending == bulk+1 })
	time.Sleep(200 * time.Millisecond) // it reaches the write lock (bounded; not asserted)
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	ahead := -1
	bulkSeen := 0
	for _, r := range srv.Calls() {
		switch r.Proc {
		case 1:
			bulkSeen++
		case 3:
			ahead = bulkSeen
		}
	}
	t.Logf("the small call reached the server after %d of %d bulk records", ahead, bulk)
	if ahead < 0 || ahead > bulk/2 {
		t.Errorf("the small call reached the server after %d of %d bulk records issued before it; want at most %d (what the buffers hold)", ahead, bulk, bulk/2)
	}
}

// noResult decodes an empty result.
type noResult struct{}

func (noResult) UnmarshalXDR(d *xdr.Decoder) error { return d.Err() }

// payloadArgs is a bulk payload between two fields, the way an NFS WRITE
// carries its data: the payload goes by reference (xdr.Encoder.Payload).
type payloadArgs struct{ p []byte }

func (a *payloadArgs) MarshalXDR(e *xdr.Encoder) error {
	e.Uint32(uint32(len(a.p)))
	e.Payload(a.p)
	e.Uint32(0xfeedf00d)
	return nil
}

// A call whose bulk payload is left out of the record and written from
// the caller's buffer (head, payload and tail in one writev) arrives as
// the encoding would have it in one piece, its padding and what follows
// included, and so does its re-send on a new connection.
func TestBulkPayloadFromCallersBuffer(t *testing.T) {
	testutil.CheckLeaks(t)
	var mu sync.Mutex
	var got [][]byte // the arguments of each call, as the server read them
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		mu.Lock()
		got = append(got, bytes.Clone(call.Args))
		first := len(got) == 1
		mu.Unlock()
		if first {
			c.Close() // no reply: the call is re-sent on a new connection
			return
		}
		_ = c.Reply(call, nil)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	payload := make([]byte, 1<<20+5)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	if err := c.Call(ctxT(t, time.Minute), 1, &payloadArgs{payload}, noResult{}); err != nil {
		t.Fatal(err)
	}
	var want xdr.Encoder
	want.Opaque(payload)
	want.Uint32(0xfeedf00d)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("the server saw %d calls; want the call and its re-send", len(got))
	}
	for i, args := range got {
		if !bytes.Equal(args, want.Bytes()) {
			t.Errorf("call %d: the server got %d bytes of arguments that differ from the %d encoded", i, len(args), want.Len())
		}
	}
}

// A call whose record the server does not take (it stopped reading: a
// stopped process, whose kernel keeps the connection open) returns when
// its context ends, not when the socket gives up, and a small call queued
// behind it does not wait for the server either. The cut-short record
// costs the connection, and the next call goes on a new one.
func TestWriteEndsWithContext(t *testing.T) {
	testutil.CheckLeaks(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if call.Proc == 1 {
			<-release // stops reading this connection
		}
		_ = c.Reply(call, nil)
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	if err := c.Call(ctxT(t, time.Minute), 2, &opaque{[]byte("warm")}, noResult{}); err != nil {
		t.Fatal(err)
	}
	// The first call stops the server's reading; the second is more than
	// the socket buffers hold.
	first := make(chan error, 1)
	go func() { first <- c.Call(ctxT(t, time.Minute), 1, &opaque{[]byte("stop")}, noResult{}) }()
	waitFor(t, "the first call pending", func() bool { return c.Stats().Pending == 1 })
	big := make([]byte, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	small := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		defer scancel()
		waitFor(t, "the big call pending", func() bool { return c.Stats().Pending == 2 })
		small <- c.Call(sctx, 3, &opaque{[]byte("small")}, noResult{})
	}()
	err := c.Call(ctx, 4, &payloadArgs{big}, noResult{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call the server does not take: %v; want its context's deadline", err)
	}
	// Behind the big call it waited for the write lock; it then either
	// went on the next connection or ran out of time, but it did not wait
	// for the server (which is released only below).
	if err := <-small; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a small call behind it: %v; want an answer or its context's deadline", err)
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-first; err != nil {
		t.Errorf("the call the connection's loss cut off: %v; want it re-sent and answered", err)
	}
	if err := c.Call(ctxT(t, time.Minute), 2, &opaque{[]byte("after")}, noResult{}); err != nil {
		t.Fatalf("a call after: %v", err)
	}
}
