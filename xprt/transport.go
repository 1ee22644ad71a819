package xprt

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/policy"
)

// maxAddrInUse bounds the consecutive dial attempts that fail only because
// the local port is taken and that are retried at once. The next such
// failure is shown to the policy as CauseOther, so that it takes a backoff
// step rather than spin.
const maxAddrInUse = 64

// Transport is one logical connection to a server: at most one TCP
// connection at a time, replaced by a new one, from the port its policy
// chooses, after the old one is reported broken. Each connection is a
// generation, numbered from 1.
//
// New does not dial. The first Conn starts a supervisor goroutine that
// dials, waiting and retrying as the policy says, until a connection is
// made, the policy gives up, or Close is called; then it exits. A broken
// connection is redialed when Conn is next called.
//
// A Transport is safe for concurrent use.
type Transport struct {
	// Set by New, then read-only (tests replace dial and wait before the
	// first Conn).
	addr        string     // Config.Addr, for errors and the TLS server name
	specs       []addrSpec // Config.Addr and Config.Addrs; used under polMu after New
	spread      int        // Config.Spread, not negative
	resolver    Resolver
	sock        SocketOptions // with defaults
	dialTimeout time.Duration // 0: none
	portHistory int
	log         *slog.Logger
	ctx         context.Context // done when Close is called; bounds dials and waits
	cancel      context.CancelFunc
	dial        dialFunc                   // t.dialPort
	tls         *tlsSetup                  // nil: plain TCP (tls.go)
	wait        func(d time.Duration) bool // t.sleep

	// Owned by the supervisor goroutine; at most one runs at a time, and
	// each starts after the previous one has finished with it. A spare's
	// dial (spare.go) consults them too, under polMu, which the
	// supervisor also holds while it does.
	pol   policy.Policy
	polMu sync.Mutex

	wg         sync.WaitGroup       // counts the supervisor and path-watch goroutines
	ready      atomic.Pointer[conn] // the connection while Ready, else nil: Conn's fast path
	sent, recv atomic.Uint64        // bytes over all connections, counted by conn
	probes     atomic.Uint64        // path probes sent (watch.go)

	mu          sync.Mutex // guards everything below
	state       State
	changed     chan struct{} // closed and replaced at every state change
	err         error         // final error: ErrClosed, or the DialError the policy gave up on
	cur         *conn         // the current connection; nil unless Ready
	spare       *spare        // dialed while cur was suspect (spare.go); nil if none
	spareUnused time.Time     // when the last spare was closed because the path proved alive
	gen         uint64        // generation of the newest connection; 0 before the first
	dialing     bool          // a supervisor goroutine is running
	attempts    int           // dial attempts since the last connection that answered a call

	// What the next policy.Attempt reports.
	resetPolicy    bool // call pol.Reset before the next dial
	prevPort       int
	prevAddr       netip.AddrPort // server address of the last connection
	lastAddr       netip.AddrPort // server address of the last attempt; owned by the supervisor
	cause          policy.Cause
	causeErr       error
	lastDialErr    *DialError // latest failed attempt since the last connect
	downSince      time.Time  // when the last connection was lost, or the first dial began
	reservedDenied bool

	// Statistics.
	connects    uint64
	spares      uint64 // spare connections made
	sparesUsed  uint64 // of them, those that became the connection
	failedBy    [policy.NumCauses]uint64
	disconnects [policy.NumCauses]uint64 // connections lost, by cause
	downTotal   time.Duration            // outages that have ended, after the first connect
	ports       []int                    // local ports of recent connections, oldest first

	// TLS statistics (tls.go).
	handshakes    uint64
	handshakeTime time.Duration
	lastHandshake time.Duration
}

// New returns a Transport for cfg. It does not dial; the first Conn does.
func New(cfg Config) (*Transport, error) {
	if cfg.Addr == "" {
		return nil, errors.New("xprt: Config.Addr is empty")
	}
	specs, err := parseAddrs(cfg.Addr, cfg.Addrs)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		addr:        cfg.Addr,
		specs:       specs,
		spread:      max(cfg.Spread, 0),
		resolver:    cfg.Resolver,
		sock:        cfg.Socket.withDefaults(),
		dialTimeout: cfg.DialTimeout,
		portHistory: cfg.PortHistory,
		log:         cfg.Logger,
		pol:         cfg.Policy,
		changed:     make(chan struct{}),
	}
	switch {
	case t.dialTimeout == 0:
		t.dialTimeout = DefaultDialTimeout
	case t.dialTimeout < 0:
		t.dialTimeout = 0
	}
	switch {
	case t.portHistory == 0:
		t.portHistory = DefaultPortHistory
	case t.portHistory < 0:
		t.portHistory = 0
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With(slog.String("server", cfg.Addr))
	if t.pol == nil {
		t.pol = policy.Hedged(policy.Options{})
	}
	if t.resolver == nil {
		t.resolver = net.DefaultResolver
	}
	if t.tls, err = newTLSSetup(cfg.TLS, cfg.Addr); err != nil {
		return nil, err
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.dial = t.dialPort
	t.wait = t.sleep
	return t, nil
}

// Conn returns the ready connection and its generation. If none is ready it
// starts connecting, unless a dial is already under way, and returns a nil
// conn with a channel that is closed when the state next changes, so the
// caller can wait on it together with its own context and timers, then call
// Conn again. A non-nil error is final: ErrClosed, or the *DialError on
// which the policy gave up.
//
// The connection stays the transport's: report it broken with Fail rather
// than closing it. When Ready, Conn takes one atomic load and does not
// allocate.
func (t *Transport) Conn() (c net.Conn, gen uint64, changed <-chan struct{}, err error) {
	if cur := t.ready.Load(); cur != nil {
		return cur, cur.gen, nil, nil
	}
	return t.connSlow()
}

// connSlow is Conn when no connection is ready.
func (t *Transport) connSlow() (net.Conn, uint64, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return nil, 0, nil, t.err
	}
	if t.cur != nil {
		return t.cur, t.cur.gen, nil, nil
	}
	if !t.dialing {
		t.dialing = true
		if t.gen == 0 && t.downSince.IsZero() {
			t.downSince = time.Now()
		}
		t.setStateLocked(Connecting)
		t.wg.Add(1)
		go t.supervise()
	}
	return nil, 0, t.changed, nil
}

// Fail reports that the connection of generation gen is broken because of
// cause: an I/O error, io.EOF, or an error whose MajorTimeout method
// reports true. It aborts that connection and leaves the transport Idle
// until the next Conn redials. Reports for any generation other than the
// current Ready one are ignored, so a late timeout from an old connection
// never tears down a newer one. Fail does not block on I/O or dialing.
func (t *Transport) Fail(gen uint64, cause error) {
	t.mu.Lock()
	c := t.cur
	if c == nil || c.gen != gen {
		t.mu.Unlock()
		return
	}
	t.cur = nil
	t.ready.Store(nil)
	t.cause, t.causeErr = Classify(cause), cause
	t.downSince = time.Now()
	if c.answered {
		t.resetPolicy = true
	}
	t.disconnects[t.cause]++
	// Close the socket before the supervisor may redial: a policy that
	// keeps the port dials from it at once, and finds the 4-tuple in use
	// while the old socket holds it.
	c.abort()
	if !t.refusedLocked(c, cause) {
		t.setStateLocked(Idle)
	}
	kind := t.cause
	t.mu.Unlock()

	t.log.Info("xprt: disconnected", slog.Uint64("gen", gen), slog.Int("local_port", c.port),
		slog.String("cause", kind.String()), slog.Any("err", cause))
}

// Answered reports that the connection of generation gen carried a
// complete, well-formed reply to a call, the evidence that it works: when
// it is lost, the policy is Reset, so the redial is immediate and the
// backoff starts afresh. Bytes alone are not evidence: a server that sends
// half a reply and hangs up is redialed with a backoff step each time.
// Reports for any generation other than the current one are ignored.
func (t *Transport) Answered(gen uint64) {
	t.mu.Lock()
	if c := t.cur; c != nil && c.gen == gen {
		c.answered = true
	}
	t.mu.Unlock()
}

// Close shuts the transport down: it aborts the connection, stops any dial
// or wait, waits for the supervisor to exit and wakes every waiter; Conn
// then returns ErrClosed. Close returns nil the first time and ErrClosed
// after.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.state == Shutdown {
		t.mu.Unlock()
		return ErrClosed
	}
	c := t.cur
	t.cur = nil
	t.ready.Store(nil)
	if c == nil && t.connects > 0 {
		t.downTotal += time.Since(t.downSince)
	}
	sp := t.spare
	t.spare = nil
	t.err = ErrClosed
	t.setStateLocked(Shutdown)
	gen := t.gen
	t.mu.Unlock()

	t.cancel()
	if c != nil {
		c.abort()
	}
	if sp != nil {
		t.dropSpare(sp, "transport closed")
	}
	t.wg.Wait()
	t.log.Info("xprt: closed", slog.Uint64("gen", gen))
	return nil
}

// setStateLocked moves to s and wakes everyone waiting on changed. t.mu is
// held.
func (t *Transport) setStateLocked(s State) {
	t.state = s
	close(t.changed)
	t.changed = make(chan struct{})
}

// sleep waits d, or until Close; it reports whether the wait ran out.
func (t *Transport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// supervise is the supervisor goroutine: it asks the policy, waits, dials,
// and repeats until it connects, the policy gives up, or Close is called.
func (t *Transport) supervise() {
	defer t.wg.Done()
	inUse := 0 // consecutive attempts that failed only on a taken port
	for {
		t.mu.Lock()
		if t.state == Shutdown {
			t.dialing = false
			t.mu.Unlock()
			return
		}
		reset := t.resetPolicy
		if reset {
			t.resetPolicy = false
			t.attempts = 0
		}
		t.attempts++
		a := policy.Attempt{
			N:              t.attempts,
			PrevPort:       t.prevPort,
			Cause:          t.cause,
			Err:            t.causeErr,
			Down:           time.Since(t.downSince),
			ReservedDenied: t.reservedDenied,
			PrevAddr:       t.prevAddr,
			LastAddr:       t.lastAddr,
		}
		t.mu.Unlock()

		// The addresses are looked up before the policy decides, so that
		// it can choose among them; a lookup that found none fails the
		// attempt after the policy's wait, as a failed dial would.
		t.polMu.Lock()
		addrs, rerr := t.resolve()
		a.Addrs = addrs
		if reset {
			t.pol.Reset()
		}
		d := t.pol.Next(a)
		t.polMu.Unlock()
		if d.GiveUp {
			t.giveUp(a)
			return
		}
		wait := d.Wait
		if a.Cause == policy.CauseAddrInUse {
			wait = 0 // another port, at once; not a backoff step
		}
		if !d.Addr.IsValid() {
			d.Addr = policy.DefaultAddr(a)
		}
		if !d.HedgeAddr.IsValid() {
			d.HedgeAddr = d.Addr
		}
		t.log.Debug("xprt: dialing", slog.Int("attempt", a.N), slog.String("addr", d.Addr.String()), slog.Int("port", d.Port),
			slog.String("hedge_addr", d.HedgeAddr.String()), slog.Int("hedge_port", d.HedgePort), slog.Duration("hedge_after", d.HedgeAfter),
			slog.Duration("wait", wait), slog.String("cause", a.Cause.String()))
		if wait > 0 && !t.wait(wait) {
			continue // closed; the loop head exits
		}
		if rerr != nil {
			if t.ctx.Err() == nil {
				de := &DialError{Addr: t.addr, Cause: policy.CauseUnreachable, Err: rerr}
				t.count([]*DialError{de})
				t.attemptFailed([]*DialError{de})
			}
			continue
		}
		if !t.enter(Connecting) {
			continue
		}

		win, fails := t.dialAttempt(a.N, d, t.takeSpare())
		t.mu.Lock()
		t.lastAddr = d.Addr
		t.mu.Unlock()
		t.count(fails)
		if tc := win.tc; tc != nil {
			rw := win.rw
			if rw == nil {
				var err error
				if rw, err = t.secure(tc); err != nil {
					if t.secureFailed(err) {
						return
					}
					continue
				}
			}
			if t.connected(tc, rw, a.N, win.spare) {
				return
			}
			continue
		}
		if t.ctx.Err() != nil {
			continue
		}
		if len(fails) == 0 { // cannot happen: a leg that did not connect failed
			fails = []*DialError{{Addr: t.addr, Port: d.Port, Cause: policy.CauseOther, Err: errors.New("xprt: dial failed")}}
		}
		f := t.attemptFailed(fails)
		if f.Cause == policy.CauseAddrInUse {
			inUse++
			if inUse > maxAddrInUse {
				inUse = 0
				t.mu.Lock()
				t.cause = policy.CauseOther
				t.mu.Unlock()
			}
		} else {
			inUse = 0
		}
	}
}

// enter moves the transport to s unless it is shut down, which it reports.
func (t *Transport) enter(s State) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == Shutdown {
		return false
	}
	if t.state != s {
		t.setStateLocked(s)
	}
	return true
}

// connected makes tc, carrying rw (tc itself, or TLS over it), the new
// generation's connection and ends the supervisor's work. It reports
// false, having aborted tc, if the transport was closed meanwhile.
func (t *Transport) connected(tc *net.TCPConn, rw net.Conn, attempt int, spare bool) bool {
	now := time.Now()
	port := localPort(tc)
	t.mu.Lock()
	if t.state == Shutdown {
		t.mu.Unlock()
		abort(tc)
		return false
	}
	down := now.Sub(t.downSince)
	if t.connects > 0 {
		t.downTotal += down
	}
	t.connects++
	if spare {
		t.sparesUsed++
	}
	t.gen++
	c := newConn(t, tc, rw, t.gen, port)
	t.cur = c
	t.ready.Store(c)
	t.prevPort = port
	t.prevAddr = remoteAddr(tc)
	t.lastDialErr = nil
	if t.portHistory > 0 {
		if len(t.ports) == t.portHistory {
			t.ports = append(t.ports[:0], t.ports[1:]...)
		}
		t.ports = append(t.ports, port)
	}
	t.dialing = false
	t.setStateLocked(Ready)
	gen := t.gen
	t.mu.Unlock()

	t.log.Info("xprt: connected", slog.Uint64("gen", gen), slog.Int("local_port", port),
		slog.String("remote", tc.RemoteAddr().String()), slog.Int("attempt", attempt),
		slog.Duration("down", down), slog.Bool("spare", spare))
	return true
}

// count records and logs failed dial legs, those of an attempt that
// connected through its other leg included.
func (t *Transport) count(fails []*DialError) {
	if len(fails) == 0 {
		return
	}
	t.mu.Lock()
	for _, e := range fails {
		t.failedBy[e.Cause]++
		if e.Is(ErrReservedPort) {
			t.reservedDenied = true
		}
	}
	t.mu.Unlock()
	for _, e := range fails {
		t.log.Warn("xprt: dial failed", slog.Int("port", e.Port),
			slog.String("cause", e.Cause.String()), slog.Any("err", e.Err))
	}
}

// attemptFailed notes an attempt that did not connect and returns the
// failure the next Attempt reports: the last, preferring one other than a
// busy port.
func (t *Transport) attemptFailed(fails []*DialError) *DialError {
	f := fails[len(fails)-1]
	for _, e := range fails {
		if e.Cause != policy.CauseAddrInUse {
			f = e
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cause, t.causeErr, t.lastDialErr = f.Cause, f, f
	if t.state != Shutdown {
		t.setStateLocked(TransientFailure)
	}
	return f
}

// LastDialError returns the latest failed connection attempt since the
// transport last connected (a *DialError, or the *TLSError of a
// handshake), or nil. A caller whose context ended while the transport
// was still dialing reports it, so that the user learns why the call was
// never sent.
func (t *Transport) LastDialError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastDialErr == nil {
		return nil
	}
	return t.lastDialErr
}

// giveUp ends the supervisor's work for good: Conn returns the last dial
// error from now on.
func (t *Transport) giveUp(a policy.Attempt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dialing = false
	if t.state == Shutdown {
		return
	}
	err := t.lastDialErr
	if err == nil { // no dial failed: the policy gave up after a disconnect, or at once
		err = &DialError{Addr: t.addr, Cause: a.Cause, Err: a.Err}
		if a.Err == nil {
			err.Err = errNoDial
		}
	}
	t.err = err
	t.setStateLocked(TransientFailure)
	t.log.Warn("xprt: policy gave up", slog.Int("attempt", a.N),
		slog.Duration("down", a.Down), slog.Any("err", err))
}
