package xprt

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/gonfs/nfs/policy"
)

// Spare connections: dialed while the current connection is suspect, used
// by the next dial in place of a leg that leaves the old 4-tuple. Why and
// when is in the package documentation ("Spare connections").

// spare is a connection dialed while the current one was suspect. Its
// fields after done are set under Transport.mu.
type spare struct {
	of     *conn              // the suspect connection it would replace
	cancel context.CancelFunc // ends the dial when the spare is dropped
	tc     *net.TCPConn       // once connected; nil while dialing or if the dial failed
	rw     net.Conn           // tc, or TLS over it
	addr   netip.AddrPort     // the server address it connected to
	port   int                // its local port
}

// spareRest is how long after a spare was closed unused no other is
// dialed: a server with slow moments, whose path proves alive each time,
// is not dialed at every one.
const spareRest = 10 * time.Second

// suspect starts a spare for c, unless c is not the current connection,
// a spare exists, one went unused less than spareRest ago, or the
// transport is shut down. Called by c's path watch when c becomes
// suspect; it does not block.
func (t *Transport) suspect(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != c || t.spare != nil || t.state == Shutdown ||
		!t.spareUnused.IsZero() && time.Since(t.spareUnused) < spareRest {
		return
	}
	ctx, cancel := context.WithCancel(t.ctx)
	sp := &spare{of: c, cancel: cancel}
	t.spare = sp
	t.wg.Add(1)
	go t.dialSpare(ctx, sp)
}

// unsuspect drops c's spare: c's path proved alive.
func (t *Transport) unsuspect(c *conn) {
	t.mu.Lock()
	sp := t.spare
	if sp == nil || sp.of != c {
		t.mu.Unlock()
		return
	}
	t.spare = nil
	t.spareUnused = time.Now()
	t.mu.Unlock()
	t.dropSpare(sp, "path alive")
}

// dropSpare closes sp's connection, or ends its dial, once it is no
// longer t.spare.
func (t *Transport) dropSpare(sp *spare, why string) {
	sp.cancel()
	t.mu.Lock()
	tc := sp.tc
	t.mu.Unlock()
	if tc != nil {
		abort(tc)
		t.log.Debug("xprt: spare closed unused", slog.Int("local_port", sp.port), slog.String("why", why))
	}
}

// takeSpare removes the transport's spare and returns it if it is
// connected; one still dialing is dropped, as the dial about to be made
// makes it pointless.
func (t *Transport) takeSpare() *spare {
	t.mu.Lock()
	sp := t.spare
	t.spare = nil
	ready := sp != nil && sp.tc != nil
	t.mu.Unlock()
	switch {
	case sp == nil:
		return nil
	case !ready:
		t.dropSpare(sp, "not connected in time")
		return nil
	}
	sp.cancel()
	return sp
}

// dialSpare asks the policy for sp's dial and makes it: one leg, the
// first of the Decision's that is not the suspect connection's own
// 4-tuple.
func (t *Transport) dialSpare(ctx context.Context, sp *spare) {
	defer t.wg.Done()
	old := remoteAddr(sp.of.tc)
	t.mu.Lock()
	a := policy.Attempt{N: 1, PrevPort: sp.of.port, Cause: policy.CauseSuspect,
		ReservedDenied: t.reservedDenied, PrevAddr: old, LastAddr: old}
	t.mu.Unlock()

	t.polMu.Lock()
	addrs, err := t.resolve()
	a.Addrs = addrs
	d := t.pol.Next(a)
	t.polMu.Unlock()
	if err != nil || d.Wait > 0 || d.GiveUp {
		return
	}
	if !d.Addr.IsValid() {
		d.Addr = policy.DefaultAddr(a)
	}
	if !d.HedgeAddr.IsValid() {
		d.HedgeAddr = d.Addr
	}
	addr, port := d.Addr, d.Port
	if addr == old && port == sp.of.port {
		if d.HedgeAfter <= 0 || d.HedgeAddr == old && d.HedgePort == sp.of.port {
			return // the policy wants the old 4-tuple alone: no spare
		}
		addr, port = d.HedgeAddr, d.HedgePort
	}
	t.log.Debug("xprt: dialing a spare", slog.Uint64("suspect_gen", sp.of.gen),
		slog.String("addr", addr.String()), slog.Int("port", port))
	tc, err := t.dial(ctx, addr, port)
	if err != nil {
		if ctx.Err() == nil {
			t.count([]*DialError{{Addr: addr.String(), Port: port, Cause: classify(err, true), Err: err}})
		}
		return
	}
	rw, err := t.secure(tc)
	if err != nil {
		t.log.Debug("xprt: spare not secured", slog.Any("err", err))
		return // secure aborted tc
	}
	t.mu.Lock()
	keep := t.spare == sp && ctx.Err() == nil
	if keep {
		sp.tc, sp.rw, sp.addr, sp.port = tc, rw, remoteAddr(tc), localPort(tc)
		t.spares++
	}
	t.mu.Unlock()
	if !keep {
		abort(tc)
		return
	}
	t.log.Info("xprt: spare connected", slog.Uint64("suspect_gen", sp.of.gen),
		slog.Int("local_port", sp.port), slog.String("remote", sp.addr.String()))
}
