package xprt

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gonfs/nfs/policy"
)

// dialFunc connects to the server at addr from a local port (0: the
// kernel chooses). It is a Transport field so that tests can hold up one leg
// of a hedged dial; outside tests it is always (*Transport).dialPort.
type dialFunc func(ctx context.Context, addr netip.AddrPort, port int) (*net.TCPConn, error)

// dialPort connects to the server at addr from port with the socket
// options set before the SYN leaves.
func (t *Transport) dialPort(ctx context.Context, addr netip.AddrPort, port int) (*net.TCPConn, error) {
	d := net.Dialer{
		Timeout: t.dialTimeout,
		// Negative with KeepAliveConfig.Enable false: Go leaves keepalive
		// alone, so the options set by Control stand.
		KeepAlive: -1,
		Control:   t.sock.control(port != 0),
	}
	if port != 0 {
		// An unspecified IP binds the wildcard address of the family the
		// server's address needs.
		d.LocalAddr = &net.TCPAddr{Port: port}
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok { // cannot happen for network "tcp"
		nc.Close()
		return nil, errors.New("xprt: dial did not return a TCP connection")
	}
	if t.sock.Nagle {
		// Go turns TCP_NODELAY on after every connect; undo it.
		if err := tc.SetNoDelay(false); err != nil {
			abort(tc)
			return nil, err
		}
	}
	return tc, nil
}

// abort closes tc without leaving its local port in TIME_WAIT.
//
// After an orderly close the side that closed first keeps the 4-tuple in
// TIME_WAIT for a minute. For a reserved port that blocks redialing the
// same server from the same port (connect fails with EADDRNOTAVAIL), which
// is what a same-port policy needs, and repeated reconnects would tie up
// the small reserved range. Setting SO_LINGER to {on, 0 seconds} makes
// close send a RST and free the 4-tuple at once instead.
//
// The cost: data still in the send buffer is discarded, and the server sees
// a reset rather than an orderly close. That is acceptable because a
// transport closes only connections it already considers dead (Fail) and
// at shutdown (Close); requests that were cut off are re-sent on the next
// connection by package rpc, or abandoned with the transport.
func abort(tc *net.TCPConn) error {
	// SetLinger fails only on a connection that is already closed, and
	// Close reports that too.
	_ = tc.SetLinger(0)
	return tc.Close()
}

// legResult is the outcome of one leg of a dial attempt.
type legResult struct {
	addr  netip.AddrPort // server address dialed
	port  int            // local port asked for
	tc    *net.TCPConn
	rw    net.Conn // tc secured already (a spare's), or nil
	spare bool     // the leg is the transport's spare (spare.go)
	err   error
}

// dialAttempt makes the dial that d asks for: one leg to d.Addr from d.Port
// and, when d.HedgeAfter > 0, a second leg to d.HedgeAddr (both set) from
// d.HedgePort once the first has not connected within HedgeAfter, or at
// once if the first fails sooner. The first leg to connect wins; a leg
// still dialing is cancelled, and one that connected too is aborted. If
// one leg fails, the other is still awaited.
//
// sp, if not nil, is a spare connected while the last connection was
// suspect: it is the leg to its address that asks for its port, or for
// any port but the last connection's (the package documentation's "Spare
// connections"), and is aborted if no leg is it or it does not win.
//
// It returns the winning leg (tc nil if none connected) and the failure
// of each leg that failed, even if the other won. Every leg has finished
// when it returns. A leg cut short because the other won, or because the
// transport closed, is not reported as a failure.
func (t *Transport) dialAttempt(n int, d policy.Decision, sp *spare) (legResult, []*DialError) {
	var spareLeg legResult
	if sp != nil {
		spareLeg = legResult{addr: sp.addr, port: sp.port, tc: sp.tc, rw: sp.rw, spare: true}
		t.mu.Lock()
		oldPort := t.prevPort
		t.mu.Unlock()
		// The spare is a leg to its address that asks for its port, or
		// for any port but the last connection's.
		is := func(addr netip.AddrPort, port int) bool {
			return addr == sp.addr && (port == sp.port || port != oldPort)
		}
		switch {
		case is(d.Addr, d.Port):
			return spareLeg, nil
		case d.HedgeAfter <= 0 || !is(d.HedgeAddr, d.HedgePort):
			abort(sp.tc) // no leg of this dial
			sp = nil
		}
	}

	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()

	results := make(chan legResult, 2) // buffered: a leg never blocks on sending
	leg := func(addr netip.AddrPort, port int) {
		tc, err := t.dial(ctx, addr, port)
		results <- legResult{addr: addr, port: port, tc: tc, err: err}
	}
	go leg(d.Addr, d.Port)
	running := 1

	var hedge <-chan time.Time // fires when the hedge leg is due
	hedgeDue := d.HedgeAfter > 0
	if hedgeDue {
		timer := time.NewTimer(d.HedgeAfter)
		defer timer.Stop()
		hedge = timer.C
	}
	startHedge := func() {
		hedgeDue, hedge = false, nil
		running++
		if sp != nil {
			t.log.Debug("xprt: hedging with the spare", slog.Int("attempt", n),
				slog.Int("port", d.Port), slog.Int("spare_port", spareLeg.port))
			sp = nil
			results <- spareLeg
			return
		}
		t.log.Debug("xprt: hedging dial", slog.Int("attempt", n),
			slog.Int("port", d.Port), slog.Int("hedge_port", d.HedgePort))
		go leg(d.HedgeAddr, d.HedgePort)
	}

	var win legResult
	var fails []*DialError
	for running > 0 {
		select {
		case <-hedge:
			startHedge()
		case r := <-results:
			running--
			switch {
			case r.err == nil && win.tc == nil:
				win = r
				cancel()
			case r.err == nil:
				// Lost the race after connecting.
				abort(r.tc)
			case win.tc != nil || t.ctx.Err() != nil:
				// Cancelled because the other leg won or the transport
				// closed; not a failure of the path.
			default:
				fails = append(fails, &DialError{Addr: r.addr.String(), Port: r.port, Cause: classify(r.err, true), Err: r.err})
				if hedgeDue {
					startHedge()
				}
			}
		}
	}
	if sp != nil { // the hedge was never due
		abort(sp.tc)
	}
	return win, fails
}

// conn is the net.Conn a Transport hands out: its TCP connection, counting
// the bytes it carries into the transport's totals with one atomic add per
// Read or Write, and waking its path watch (watch.go) with a non-blocking
// send per Write, without allocating. It is safe for concurrent use as far
// as net.TCPConn is.
type conn struct {
	tc       *net.TCPConn
	rw       net.Conn // what Read and Write use: tc, or a *tls.Conn over it
	t        *Transport
	gen      uint64
	port     int  // local port
	answered bool // Transport.Answered was called for it; guarded by t.mu

	kick     chan struct{} // capacity 1: a Write happened since the watch last looked
	done     chan struct{} // closed when the connection is aborted
	doneOnce sync.Once
	watched  bool // Watch was called; guarded by t.mu
}

// newConn wraps tc as generation gen of t.
func newConn(t *Transport, tc *net.TCPConn, rw net.Conn, gen uint64, port int) *conn {
	return &conn{tc: tc, rw: rw, t: t, gen: gen, port: port,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// abort closes the connection (see abort) and stops its path watch.
func (c *conn) abort() error {
	c.doneOnce.Do(func() { close(c.done) })
	return abort(c.tc)
}

// Read reads from the connection and counts what it got.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	if n > 0 {
		c.t.recv.Add(uint64(n))
	}
	return n, err
}

// Write writes to the connection and counts what it sent.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	if n > 0 {
		c.t.sent.Add(uint64(n))
	}
	c.kickWatch()
	return n, err
}

// writeSlice bounds each write system call of WriteBuffersUntil, so that
// it notices done this often while the server does not take the data.
const writeSlice = 100 * time.Millisecond

// ErrWriteCancelled is WriteBuffersUntil's error when done was closed
// before all was written: the connection then carries a cut-short record
// and must be reported with Fail.
var ErrWriteCancelled = errors.New("xprt: write given up with the data partly sent")

// WriteBuffersUntil writes the buffers of b in turn as Write writes one,
// in one writev system call where it can, and consumes b. If done is
// closed while the server does not take the data, it gives up within
// about 100ms with ErrWriteCancelled. Over TLS it does not give up: a
// TLS write cut short by a deadline leaves the TLS connection unusable.
func (c *conn) WriteBuffersUntil(done <-chan struct{}, b *net.Buffers) (int64, error) {
	defer c.kickWatch()
	if done == nil || c.rw != net.Conn(c.tc) {
		n, err := b.WriteTo(c.rw)
		c.t.sent.Add(uint64(n))
		return n, err
	}
	var total int64
	for {
		c.tc.SetWriteDeadline(time.Now().Add(writeSlice))
		n, err := b.WriteTo(c.tc)
		total += n
		c.t.sent.Add(uint64(n))
		if err == nil {
			return total, c.tc.SetWriteDeadline(time.Time{})
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return total, err
		}
		select {
		case <-done:
			return total, ErrWriteCancelled
		default:
		}
	}
}

// kickWatch tells the path watch that a write happened; it does not block.
func (c *conn) kickWatch() {
	select {
	case c.kick <- struct{}{}:
	default: // already kicked, which is the steady state of a busy connection
	}
}

// Close aborts the connection (see abort) without telling the transport,
// which keeps handing it out until its generation is reported with Fail.
// Callers report a broken connection with Fail instead of closing it.
func (c *conn) Close() error { return c.abort() }

// LocalAddr returns the local address.
func (c *conn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr returns the server's address.
func (c *conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(d time.Time) error { return c.tc.SetDeadline(d) }

// SetReadDeadline sets the read deadline.
func (c *conn) SetReadDeadline(d time.Time) error { return c.tc.SetReadDeadline(d) }

// SetWriteDeadline sets the write deadline.
func (c *conn) SetWriteDeadline(d time.Time) error { return c.tc.SetWriteDeadline(d) }

// localPort returns the local port of tc.
func localPort(tc *net.TCPConn) int {
	if a, ok := tc.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
