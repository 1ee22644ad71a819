package xprt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

func TestNewNeedsAddr(t *testing.T) {
	testutil.CheckLeaks(t)
	if _, err := New(Config{}); err == nil {
		t.Fatal("New with no Addr succeeded")
	}
}

func TestNewDoesNotDial(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	pol := ports(0)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	if s := tr.State(); s != Idle {
		t.Errorf("new transport is %v, want idle", s)
	}
	if as, _ := pol.seen(); len(as) != 0 {
		t.Errorf("New consulted the policy %d times", len(as))
	}
	waitReady(t, tr)
	as, _ := pol.seen()
	if len(as) != 1 || as[0].N != 1 || as[0].Cause != policy.CauseInitial || as[0].PrevPort != 0 {
		t.Errorf("attempts %+v, want one initial", as)
	}
}

// After the server closes or resets the connection, Fail and Conn give a new
// generation; the policy hears why, from which port, and Reset is called
// because the old connection answered a call.
func TestRedialAfterServerEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		cause policy.Cause
	}{
		{"close", false, policy.CauseClosed},
		{"reset", true, policy.CauseReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			srv := newServer(t)
			pol := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }}
			tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
			c1, gen1 := waitReady(t, tr)
			s1 := srv.accept(t)
			if _, err := s1.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if tc.reset {
				s1.SetLinger(0)
			}
			s1.Close()

			buf := make([]byte, 8)
			var err error
			for range 3 { // "x", then EOF or ECONNRESET
				if _, err = c1.Read(buf); err != nil {
					break
				}
			}
			if got := Classify(err); got != tc.cause {
				t.Fatalf("read error %v classified %v, want %v", err, got, tc.cause)
			}
			tr.Answered(gen1) // as a Client does when "x" was a reply to a call
			tr.Fail(gen1, err)
			if s := tr.State(); s != Idle {
				t.Errorf("after Fail: %v, want idle", s)
			}

			c2, gen2 := waitReady(t, tr)
			if gen2 != gen1+1 || c2 == c1 {
				t.Fatalf("after redial: gen %d (conn changed %v), want gen %d and a new conn", gen2, c2 != c1, gen1+1)
			}
			srv.accept(t)
			as, resets := pol.seen()
			port1 := c1.LocalAddr().(*net.TCPAddr).Port
			if len(as) != 2 || as[1].Cause != tc.cause || as[1].PrevPort != port1 || as[1].N != 1 || as[1].Down <= 0 {
				t.Errorf("second attempt %+v, want cause %v, PrevPort %d, N 1, Down > 0", as[1], tc.cause, port1)
			}
			if resets != 1 {
				t.Errorf("policy Reset called %d times, want 1 (the connection answered a call)", resets)
			}
		})
	}
}

// A late Fail for an old generation leaves the new connection alone.
func TestLateFailIgnored(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{}
	}}})
	_, gen1 := waitReady(t, tr)
	srv.accept(t)
	tr.Fail(gen1, io.EOF)
	tr.Fail(gen1, io.EOF) // twice: still ignored
	c2, gen2 := waitReady(t, tr)
	s2 := srv.accept(t)

	tr.Fail(gen1, majorTimeout{}) // a timeout of a call on the old connection
	tr.Fail(gen2+1, io.EOF)       // a generation that does not exist
	if c, gen, _, err := tr.Conn(); c != c2 || gen != gen2 || err != nil {
		t.Fatalf("Conn after stale Fail = %v, %d, %v; want the generation %d connection", c, gen, err, gen2)
	}
	if _, err := c2.Write([]byte("ping")); err != nil {
		t.Fatalf("write on the new connection: %v", err)
	}
	buf := make([]byte, 4)
	s2.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(s2, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v; want ping", buf, err)
	}
}

// A connection that answered no call does not reset the policy, however
// many bytes it carried, and attempts keep counting: a server that sends
// half a reply and hangs up is redialed with a backoff step each time.
func TestNoResetWithoutAnswer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	pol := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	c, gen := waitReady(t, tr)
	s := srv.accept(t)
	if _, err := c.Write([]byte("a call")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("half a reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("client read: %v", err)
	}
	tr.Answered(gen + 1) // no such generation: ignored
	tr.Fail(gen, io.EOF)
	tr.Answered(gen) // too late: the connection is gone
	waitReady(t, tr)
	as, resets := pol.seen()
	if resets != 0 || len(as) != 2 || as[1].N != 2 {
		t.Errorf("resets %d, attempts %+v; want no reset and N 2", resets, as)
	}
}

// The policy's wait is passed to the wait and the dial happens after it.
func TestWaitHonoured(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	pol := &script{next: func(a policy.Attempt) policy.Decision {
		return policy.Decision{Wait: time.Duration(a.N) * time.Hour}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	var waits []time.Duration
	tr.wait = func(d time.Duration) bool {
		if st := tr.Stats(); st.Connects != 0 {
			t.Errorf("connected before the wait")
		}
		waits = append(waits, d)
		return true
	}
	waitReady(t, tr)
	if len(waits) != 1 || waits[0] != time.Hour {
		t.Errorf("waits %v, want [1h]", waits)
	}
}

// A real wait: the dial does not start before it is over.
func TestWaitDelaysDial(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	const wait = 50 * time.Millisecond
	tr := newTransport(t, Config{Addr: srv.addr, Policy: &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{Wait: wait}
	}}})
	start := time.Now()
	waitReady(t, tr)
	if took := time.Since(start); took < wait {
		t.Errorf("connected after %v, before the %v wait was over", took, wait)
	}
}

// Close cuts a long wait short, wakes waiters, and Conn then fails with
// ErrClosed.
func TestCloseInterruptsWait(t *testing.T) {
	testutil.CheckLeaks(t)
	asked := make(chan struct{})
	tr, err := New(Config{Addr: "127.0.0.1:1", Policy: &script{next: func(policy.Attempt) policy.Decision {
		close(asked)
		return policy.Decision{Wait: time.Hour}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, changed, err := tr.Conn()
	if err != nil || changed == nil {
		t.Fatalf("Conn = %v, %v; want a channel to wait on", changed, err)
	}
	<-asked
	closed := make(chan error)
	go func() { closed <- tr.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not interrupt the wait")
	}
	select {
	case <-changed:
	default:
		t.Error("Close did not wake a waiter")
	}
	if _, _, _, err := tr.Conn(); !errors.Is(err, ErrClosed) {
		t.Errorf("Conn after Close: %v, want ErrClosed", err)
	}
	if err := tr.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if s := tr.State(); s != Shutdown {
		t.Errorf("state %v, want shutdown", s)
	}
}

// Close cancels a dial under way and aborts a ready connection.
func TestCloseCancelsDialAndConn(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr, err := New(Config{Addr: srv.addr, Policy: ports(0)})
	if err != nil {
		t.Fatal(err)
	}
	dialing := make(chan struct{})
	tr.dial = func(ctx context.Context, _ netip.AddrPort, port int) (*net.TCPConn, error) {
		close(dialing)
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	tr.Conn()
	<-dialing
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if st := tr.Stats(); st.FailedAttempts != [policy.NumCauses]uint64{} {
		t.Errorf("a dial cancelled by Close counted as failed: %v", st.FailedAttempts)
	}

	tr2, err := New(Config{Addr: srv.addr, Policy: ports(0)})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, tr2)
	sc := srv.accept(t)
	tr2.Close()
	sc.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read after Close: %v, want ECONNRESET", err)
	}
}

func TestGiveUp(t *testing.T) {
	testutil.CheckLeaks(t)
	t.Run("before dialing", func(t *testing.T) {
		testutil.CheckLeaks(t)
		tr := newTransport(t, Config{Addr: "127.0.0.1:1", Policy: &script{next: func(policy.Attempt) policy.Decision {
			return policy.Decision{GiveUp: true}
		}}})
		err := waitErr(t, tr)
		var de *DialError
		if !errors.As(err, &de) || !errors.Is(err, errNoDial) || de.Cause != policy.CauseInitial {
			t.Errorf("Conn error %v, want a DialError that says no dial was made", err)
		}
		if _, _, _, again := tr.Conn(); again != err {
			t.Errorf("Conn again: %v, want the same final error", again)
		}
		if s := tr.State(); s != TransientFailure {
			t.Errorf("state %v, want transient failure", s)
		}
	})
	t.Run("after a disconnect", func(t *testing.T) {
		testutil.CheckLeaks(t)
		srv := newServer(t)
		tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(0)})
		_, gen := waitReady(t, tr)
		tr.Fail(gen, majorTimeout{})
		err := waitErr(t, tr)
		var de *DialError
		if !errors.As(err, &de) || de.Cause != policy.CauseMajorTimeout || !errors.Is(err, majorTimeout{}) {
			t.Errorf("Conn error %v, want the major timeout that ended the connection", err)
		}
	})
}

// Many callers waiting at once share one dial.
func TestConcurrentConn(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	pol := ports(0)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	var wg sync.WaitGroup
	gens := make([]uint64, 8)
	for i := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, gens[i] = waitReady(t, tr)
		}()
	}
	wg.Wait()
	for i, g := range gens {
		if g != 1 {
			t.Errorf("caller %d got generation %d, want 1", i, g)
		}
	}
	if st := tr.Stats(); st.Connects != 1 {
		t.Errorf("%d connects for concurrent callers, want 1", st.Connects)
	}
}

func TestStats(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 4)
	busy := ps[0]
	holdPort(t, busy)
	pol := ports(ps[1], busy, ps[2], ps[3])
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol, PortHistory: 2})

	c, gen := waitReady(t, tr)
	sc := srv.accept(t)
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Write(make([]byte, 30)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 30)); err != nil {
		t.Fatal(err)
	}
	tr.Fail(gen, io.EOF)
	if st := tr.Stats(); st.State != Idle || st.LocalPort != 0 || st.Disconnected <= 0 {
		t.Errorf("while down: %+v, want idle, no port, Disconnected > 0", st)
	}
	_, gen = waitReady(t, tr) // busy fails, then ps[2]
	tr.Fail(gen, io.EOF)
	_, gen = waitReady(t, tr)

	st := tr.Stats()
	want := [policy.NumCauses]uint64{}
	want[policy.CauseAddrInUse] = 1
	if st.Connects != 3 || st.Reconnects != 2 || st.Gen != 3 || gen != 3 || st.State != Ready ||
		st.FailedAttempts != want || st.BytesSent != 100 || st.BytesReceived != 30 ||
		st.LocalPort != ps[3] || len(st.LastPorts) != 2 || st.LastPorts[0] != ps[2] || st.LastPorts[1] != ps[3] ||
		st.Disconnected <= 0 {
		t.Errorf("Stats %+v; want 3 connects, 2 reconnects, gen 3, one AddrInUse, 100 sent, 30 received, "+
			"port %d, LastPorts [%d %d], Disconnected > 0", st, ps[3], ps[2], ps[3])
	}
}

// Conn when Ready, and Read and Write on the connection, do not allocate.
func TestHotPathDoesNotAllocate(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(0)})
	c, _ := waitReady(t, tr)
	sc := srv.accept(t)
	go io.Copy(sc, sc) // echo until the connection closes
	if n := testing.AllocsPerRun(100, func() { tr.Conn() }); n != 0 {
		t.Errorf("Conn allocates %v times when ready", n)
	}
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a write and read allocate %v times", n)
	}
	tr.Close() // ends the echo
}

// Connects and disconnects are logged at Info, attempts at Debug, failures
// at Warn.
func TestLogging(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	busy := freePorts(t, 1)[0]
	holdPort(t, busy)
	h := newRecorder()
	tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(busy, 0), Logger: slog.New(h)})
	_, gen := waitReady(t, tr)
	tr.Fail(gen, io.EOF)
	for _, want := range []struct {
		level slog.Level
		msg   string
		attrs []string
	}{
		{slog.LevelDebug, "xprt: dialing", []string{"server", "attempt", "port", "hedge_port", "wait", "cause"}},
		{slog.LevelWarn, "xprt: dial failed", []string{"server", "port", "cause", "err"}},
		{slog.LevelInfo, "xprt: connected", []string{"server", "gen", "local_port", "remote", "attempt", "down"}},
		{slog.LevelInfo, "xprt: disconnected", []string{"server", "gen", "local_port", "cause", "err"}},
	} {
		// The supervisor logs "connected" just after it publishes the
		// connection, so allow it a moment (bounded: 1000 × 5 ms).
		found := false
		for i := 0; i < 1000 && !found; i++ {
			if found = h.has(want.level, want.msg, want.attrs); !found {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if !found {
			t.Errorf("no %v record %q with %v; got %v", want.level, want.msg, want.attrs, h.all())
		}
	}
}

// recorder is a slog.Handler that keeps every record's level, message and
// attribute keys.
type recorder struct {
	mu      *sync.Mutex
	records *[]logged
	base    []string // keys from WithAttrs
}

// logged is what recorder keeps of a record.
type logged struct {
	level slog.Level
	msg   string
	keys  []string
}

func newRecorder() *recorder { return &recorder{mu: new(sync.Mutex), records: new([]logged)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	l := logged{level: rec.Level, msg: rec.Message, keys: slices.Clone(r.base)}
	rec.Attrs(func(a slog.Attr) bool { l.keys = append(l.keys, a.Key); return true })
	r.mu.Lock()
	*r.records = append(*r.records, l)
	r.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	n := *r
	n.base = slices.Clone(r.base)
	for _, a := range as {
		n.base = append(n.base, a.Key)
	}
	return &n
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) all() []logged {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.records)
}

// has reports whether a record of level and msg carries every key in keys.
func (r *recorder) has(level slog.Level, msg string, keys []string) bool {
	for _, l := range r.all() {
		if l.level == level && l.msg == msg && !slices.ContainsFunc(keys, func(k string) bool { return !slices.Contains(l.keys, k) }) {
			return true
		}
	}
	return false
}

func TestStateString(t *testing.T) {
	testutil.CheckLeaks(t)
	for s, want := range map[State]string{Idle: "idle", Connecting: "connecting", Ready: "ready",
		TransientFailure: "transient failure", Shutdown: "shutdown", State(42): "state(42)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// BenchmarkConnReady measures Conn on a ready transport, the per-call cost.
func BenchmarkConnReady(b *testing.B) {
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	tr, err := New(Config{Addr: srv.Addr().String(), Policy: policy.Func(func(policy.Attempt) policy.Decision {
		return policy.Decision{}
	})})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	for range 1000 {
		if c, _, changed, err := tr.Conn(); err != nil {
			b.Fatal(err)
		} else if c != nil {
			break
		} else {
			<-changed
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Conn()
		}
	})
}

// BenchmarkReconnect measures Fail followed by a redial from a new
// ephemeral port over loopback until Conn returns the new connection.
func BenchmarkReconnect(b *testing.B) {
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() { // accept and drop
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tr, err := New(Config{Addr: srv.Addr().String(), Policy: policy.Func(func(policy.Attempt) policy.Decision {
		return policy.Decision{}
	})})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var gen uint64
	for b.Loop() {
		tr.Fail(gen, io.EOF)
		for range 1000 {
			c, g, changed, err := tr.Conn()
			if err != nil {
				b.Fatal(err)
			}
			if c != nil {
				gen = g
				break
			}
			<-changed
		}
	}
}
