package policy

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// maxLocalRetries bounds how many local failures in a row (a busy port, a
// denied reserved port) are retried at once on another port. Past it the
// range is evidently crowded, and further retries take backoff steps, so a
// full port range cannot turn the transport into a busy loop.
const maxLocalRetries = 8

// lostConnection reports whether c says an established connection ended, as
// opposed to a dial that failed.
func lostConnection(c Cause) bool {
	switch c {
	case CauseClosed, CauseReset, CauseDeadPeer, CauseMajorTimeout, CauseProbeTimeout:
		return true
	}
	return false
}

// localFailure reports whether c is a failure to bind the local port, which
// says nothing about the server or the path to it.
func localFailure(c Cause) bool {
	return c == CauseAddrInUse || c == CausePermission
}

// pacer decides the wait before each dial, and so which attempts take a
// backoff step. Every stock policy paces the same way:
//
//   - The first dial after construction or Reset is immediate and takes no
//     step, if its Cause is CauseInitial or a lost connection (CauseClosed,
//     CauseReset, CauseDeadPeer, CauseMajorTimeout, CauseProbeTimeout). It also restarts the
//     BackOff, so that elapsed time counts from the start of this outage.
//   - A local failure (CauseAddrInUse, or CausePermission where the policy
//     does not give up) is retried at once without a step, if the policy
//     now asks for a different port, at most maxLocalRetries times in a row.
//     It also ends the claim to the immediate redial above, which a real
//     transport has had by then anyway; so, whatever order causes come in,
//     at most 1+maxLocalRetries dials in a row go without a wait.
//   - Everything else takes one step: failed dials (refused, timed out,
//     unreachable, other), local failures with no other port to try, and a
//     lost connection with no Reset since the dial that made it. The last
//     case is a connection that answered no call: a server that accepts
//     and hangs up, at once or after part of a reply, must not be redialed
//     in a tight loop.
//
// A step spaces the starts of two dials, not the end of one and the start
// of the next: the time the failed dial (or the connection it made) took
// since it began is taken off the wait (to the millisecond). A refused dial takes no time and
// waits the whole step; a dial that timed out after longer than the step
// is followed at once by the next, whose SYN then goes out about when the
// kernel would have retransmitted the old one. Dials therefore start at
// most once per step, whatever they meet.
//
// The transport's Reset is what re-arms the immediate redial; Attempt.N is
// not consulted, so a transport that miscounts cannot cause a busy loop.
type pacer struct {
	b      backoff.BackOff
	clock  backoff.Clock // when dials start; tests inject their own
	fresh  bool          // no dial decided since construction or Reset
	local  int           // local failures retried at once in a row
	dialAt time.Time     // when the last decided dial was to start
}

// newPacer returns a pacer over b, or over def() if b is nil.
func newPacer(b backoff.BackOff, def func() backoff.BackOff) pacer {
	if b == nil {
		b = def()
	}
	if e, ok := b.(*backoff.ExponentialBackOff); ok {
		// A struct literal leaves these zero: a nil Clock panics in Reset,
		// and a zero Stop would make "give up" read as "retry at once".
		if e.Clock == nil {
			e.Clock = backoff.SystemClock
		}
		if e.Stop == 0 {
			e.Stop = backoff.Stop
		}
	}
	b.Reset()
	return pacer{b: b, clock: backoff.SystemClock, fresh: true}
}

// next returns the wait before the dial for cause c, or giveUp when the
// BackOff says stop. changed says whether the policy asks for a different
// port than at the previous dial.
func (p *pacer) next(c Cause, changed bool) (wait time.Duration, giveUp bool) {
	now := p.clock.Now()
	wait, giveUp = p.step(c, changed, now)
	p.dialAt = now.Add(wait)
	return wait, giveUp
}

// step is next's decision at time now.
func (p *pacer) step(c Cause, changed bool, now time.Time) (time.Duration, bool) {
	if localFailure(c) && changed && p.local < maxLocalRetries {
		p.fresh = false
		p.local++
		return 0, false
	}
	p.local = 0
	if p.fresh && (c == CauseInitial || lostConnection(c)) {
		p.fresh = false
		p.b.Reset()
		return 0, false
	}
	p.fresh = false
	d := p.b.NextBackOff()
	if d < 0 {
		return 0, true
	}
	if !p.dialAt.IsZero() {
		took := now.Sub(p.dialAt).Truncate(time.Millisecond)
		d -= min(d, max(0, took))
	}
	return d, false
}

// reset re-arms the immediate redial and restarts the BackOff.
func (p *pacer) reset() {
	p.fresh = true
	p.local = 0
	p.b.Reset()
}

// Default pacing of every stock policy: 250ms, doubling, at most 1s for
// as long as the outage lasts, each wait within ±25% of its step. Why, and
// what it costs, is in the package documentation ("Waiting").
const (
	defaultInitial = 250 * time.Millisecond
	defaultMost    = time.Second
	defaultJitter  = 0.25
)

// defaultBackOff returns the default pacing's BackOff, which never gives
// up.
func defaultBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = defaultInitial
	b.Multiplier = 2
	b.MaxInterval = defaultMost
	b.RandomizationFactor = defaultJitter
	b.MaxElapsedTime = 0 // never stop; the library's default is 15 minutes
	b.Reset()            // the current interval was taken from the old InitialInterval
	return b
}

// SameReservedPort returns the Linux client's policy for NFSv3 and NFSv4.0
// with the resvport mount option (the default): one random port in
// [o.MinPort, o.MaxPort], chosen at the first dial and reused for every
// reconnect. If that port turns out busy (CauseAddrInUse) it moves to
// another random one at once, without a backoff step, and keeps that one
// from then on, as the kernel does when its bind fails; but the port of
// the last connection (Attempt.PrevPort) is first tried again 8 times,
// 25ms apart, since the socket of the connection just lost can hold it
// for a moment, and leaving it loses the server's duplicate request cache.
//
// Use it against NFSv3 and NFSv4.0 servers that are reached directly, not
// through NAT, a load balancer or a floating IP: the same port keeps their
// duplicate request caches matching replays (see the package
// documentation). The price: a middlebox that still
// holds state for the old 4-tuple can hang every reconnect for minutes.
//
// Default backoff (o.BackOff nil): the first redial after a connection that
// answered a call is immediate, then dials start 250ms, 500ms, then 1s
// apart for as long as the outage lasts, with ±25% jitter, never giving up
// (the Linux client waits 3s, doubling to 60s; Options.BackOff can ask for
// that). CausePermission, or Attempt.ReservedDenied, makes it give up: it
// never falls back to an unreserved port, and the transport reports that
// reserved ports need root or CAP_NET_BIND_SERVICE.
//
// The policy belongs to one transport and is not safe for concurrent use.
// It panics if o is invalid (see Options).
func SameReservedPort(o Options) Policy {
	c := o.resolve()
	return &sameReserved{
		opts:  o,
		pace:  newPacer(o.BackOff, defaultBackOff),
		ports: newPorts(c, 0),
	}
}

// sameReserved is the policy of SameReservedPort.
type sameReserved struct {
	opts  Options // as given, for Fresh
	pace  pacer
	ports ports
	port  int // the port in use; 0 until the first dial
	busy  int // CauseAddrInUse on port in a row, retried on it
}

// Patience of SameReservedPort with the port of its last connection found
// busy: that connection's socket can hold the 4-tuple for a moment after
// it is closed (until the goroutines using it have let go), so the port is
// tried again samePortRetries times, samePortWait apart, before it is
// given up.
const (
	samePortRetries = 8
	samePortWait    = 25 * time.Millisecond
)

// Next implements Policy.
func (s *sameReserved) Next(a Attempt) Decision {
	if a.ReservedDenied || a.Cause == CausePermission {
		return Decision{GiveUp: true}
	}
	if a.Cause == CauseSuspect {
		return Decision{Port: a.PrevPort} // no spare unless the address moved: the port is the policy
	}
	if a.Cause != CauseAddrInUse {
		s.busy = 0
	} else if s.port != 0 && a.PrevPort == s.port && s.busy < samePortRetries {
		s.busy++
		return Decision{Wait: samePortWait, Port: s.port}
	}
	prev := s.port
	if s.port == 0 || a.Cause == CauseAddrInUse {
		s.port = s.ports.fresh(prev, 0)
		s.busy = 0
	}
	wait, giveUp := s.pace.next(a.Cause, s.port != prev)
	if giveUp {
		return Decision{GiveUp: true}
	}
	return Decision{Wait: wait, Port: s.port}
}

// Reset implements Policy.
func (s *sameReserved) Reset() { s.pace.reset() }

// NewReservedPort returns the Linux client's policy for NFSv4.1 and later
// with resvport: a new random port in [o.MinPort, o.MaxPort] for each dial,
// never Attempt.PrevPort nor the port just tried, and none of the last
// o.Avoid ports it chose, as far as the range has room.
//
// Use it against NFSv4.1+ servers with AUTH_SYS exports that require a
// reserved ("secure") port. Changing ports is safe with sessions, not
// against NFSv3 or NFSv4.0 servers (see Duplicate request caches in the
// package documentation). A new port each time steps around stale
// NAT, load-balancer and failover state for the old 4-tuple.
//
// Default backoff (o.BackOff nil): that of SameReservedPort. A busy port
// (CauseAddrInUse) is replaced at once without a backoff step.
// CausePermission, or Attempt.ReservedDenied, makes it give up, as
// SameReservedPort does.
//
// The policy belongs to one transport and is not safe for concurrent use.
// It panics if o is invalid (see Options).
func NewReservedPort(o Options) Policy {
	c := o.resolve()
	return &newReserved{
		opts:  o,
		pace:  newPacer(o.BackOff, defaultBackOff),
		ports: newPorts(c, c.avoid),
	}
}

// newReserved is the policy of NewReservedPort.
type newReserved struct {
	opts  Options // as given, for Fresh
	pace  pacer
	ports ports
	last  int // the port of the previous decision; 0 before the first
}

// Next implements Policy.
func (n *newReserved) Next(a Attempt) Decision {
	if a.ReservedDenied || a.Cause == CausePermission {
		return Decision{GiveUp: true}
	}
	port := n.ports.fresh(a.PrevPort, n.last)
	if a.Cause == CauseSuspect {
		return Decision{Port: port} // a spare: no wait, no backoff step
	}
	changed := port != n.last
	n.last = port
	wait, giveUp := n.pace.next(a.Cause, changed)
	if giveUp {
		return Decision{GiveUp: true}
	}
	return Decision{Wait: wait, Port: port}
}

// Reset implements Policy.
func (n *newReserved) Reset() { n.pace.reset() }

// Ephemeral returns the policy of the noresvport mount option: port 0 for
// every dial, so the kernel chooses a new ephemeral port each time.
//
// Use it when the process cannot bind reserved ports (not root, no
// CAP_NET_BIND_SERVICE), with exports marked insecure or secured by
// Kerberos or RPC-over-TLS, and whenever NAT or a load balancer sits in the
// path. Against NFSv3 or NFSv4.0 the duplicate request cache caveat of the
// package documentation applies. o.MinPort, o.MaxPort, o.Rand, o.Avoid and
// o.HedgeAfter are not used.
//
// Default backoff: that of SameReservedPort. A local failure
// (CauseAddrInUse: the kernel found no free ephemeral port;
// CausePermission) takes a backoff step like any failed dial, since asking
// for port 0 again at once would only spin. It gives up only when the
// BackOff says stop.
//
// The policy belongs to one transport and is not safe for concurrent use.
// It panics if o is invalid (see Options).
func Ephemeral(o Options) Policy {
	o.resolve()
	return &ephemeral{opts: o, pace: newPacer(o.BackOff, defaultBackOff)}
}

// ephemeral is the policy of Ephemeral.
type ephemeral struct {
	opts Options // as given, for Fresh
	pace pacer
}

// Next implements Policy.
func (e *ephemeral) Next(a Attempt) Decision {
	if a.Cause == CauseSuspect {
		return Decision{} // a spare: no wait, no backoff step
	}
	wait, giveUp := e.pace.next(a.Cause, false)
	if giveUp {
		return Decision{GiveUp: true}
	}
	return Decision{Wait: wait}
}

// Reset implements Policy.
func (e *ephemeral) Reset() { e.pace.reset() }

// Hedged returns this package's own policy, which keeps the old port while
// the path is healthy and races a fresh one when it is not. The first dial,
// and any dial before a connection has been made (Attempt.PrevPort 0),
// uses a fresh random port in [o.MinPort, o.MaxPort], unhedged. Each redial
// after that dials from Attempt.PrevPort, keeping the old 4-tuple, and asks
// for a second dial from a fresh port (HedgePort, avoiding PrevPort and the
// last o.Avoid choices) if the first has not connected within o.HedgeAfter.
// Whichever connects first wins.
//
// Use it where a middlebox may or may not hold stale state for the old
// 4-tuple: NAT, load balancers, floating-IP failover. A healthy path
// reconnects on the old port at once; a poisoned one costs o.HedgeAfter
// more than NewReservedPort would. After a connection whose path went
// silent (CauseProbeTimeout, CauseDeadPeer), the usual sign of a middlebox
// that still sends the old 4-tuple to a server that is gone, the old port
// runs alone for 50ms unless o.HedgeAfter was set: enough for a path that
// is alive again to connect, in a LAN or a cloud region, before the fresh
// port does. Whenever the fresh port wins, the
// duplicate request cache caveat of the package documentation applies
// against NFSv3 and NFSv4.0; with NFSv4.1+ sessions either port is safe.
//
// When reserved ports are denied (Attempt.ReservedDenied, or CausePermission
// for this attempt) it falls back to ephemeral ports instead of giving up:
// the fresh port becomes 0, and a PrevPort below 1024 is no longer kept. A
// local failure that gets a different port this way, or a busy port
// (CauseAddrInUse), is retried at once without a backoff step. As it cannot
// tell which of its two ports was busy, it assumes the old one (the socket
// of the connection just lost, not yet released, is the usual reason):
// it tries it again 8 times, 25ms apart, as SameReservedPort does, then
// stops keeping it until a new connection is made or Reset is called.
//
// With several server addresses (Attempt.Addrs), every dial is hedged: the
// first leg goes to DefaultAddr's choice, the second, after o.HedgeAfter
// and from a fresh port, to the next address, so that an address that no
// longer answers costs o.HedgeAfter rather than a dial timeout.
//
// Default backoff between failed rounds: that of SameReservedPort. The
// policy belongs to one transport and is not safe for concurrent use. It
// panics if o is invalid (see Options).
func Hedged(o Options) Policy {
	c := o.resolve()
	return &hedged{
		opts:  o,
		pace:  newPacer(o.BackOff, defaultBackOff),
		ports: newPorts(c, c.avoid),
		after: c.hedgeAfter,
	}
}

// silentHedgeAfter is Hedged's default HedgeAfter after a path went
// silent.
const silentHedgeAfter = 50 * time.Millisecond

// hedged is the policy of Hedged.
type hedged struct {
	opts  Options // as given, for Fresh
	pace  pacer
	ports ports
	after time.Duration
	busy  int // a PrevPort found busy, not to be kept again; 0 = none
	tries int // CauseAddrInUse in a row on the kept port, retried on it
	port  int // Port of the previous decision
	hedge int // HedgePort of the previous decision
}

// Next implements Policy.
func (h *hedged) Next(a Attempt) Decision {
	denied := a.ReservedDenied || a.Cause == CausePermission
	if a.Cause == CauseSuspect {
		// A spare is the hedge, dialed before the verdict: a fresh port,
		// which escapes whatever a middlebox holds for the old 4-tuple.
		return Decision{Port: h.fresh(a.PrevPort, denied)}
	}
	keep := a.PrevPort
	if keep == h.busy || denied && keep < firstUnprivilegedPort {
		keep = 0
	}
	if a.Cause != CauseAddrInUse {
		h.tries = 0
	} else if keep != 0 && h.port == keep {
		if h.tries < samePortRetries {
			// Most likely the socket of the connection just lost, which
			// lets go of the 4-tuple in a moment: the old port keeps the
			// server's duplicate request cache, worth a short wait.
			h.tries++
			return Decision{Wait: samePortWait, Port: keep, HedgeAfter: h.after, HedgePort: h.hedge}
		}
		h.busy, keep = keep, 0
	}
	var d Decision
	if keep != 0 {
		d.Port = keep
		d.HedgeAfter = h.after
		if (a.Cause == CauseProbeTimeout || a.Cause == CauseDeadPeer) && h.opts.HedgeAfter == 0 {
			d.HedgeAfter = silentHedgeAfter
		}
		d.HedgePort = h.fresh(a.PrevPort, denied)
	} else {
		d.Port = h.fresh(a.PrevPort, denied)
	}
	if len(a.Addrs) > 1 {
		// Several addresses: the hedged dial goes to the next one, so
		// that a dead address costs HedgeAfter, not a dial timeout.
		d.HedgeAfter = h.after
		if d.HedgePort == 0 && !denied {
			d.HedgePort = h.ports.fresh(a.PrevPort, d.Port)
		}
		d.HedgeAddr = NextAddr(a.Addrs, DefaultAddr(a))
	}
	changed := d.Port != h.port || d.HedgePort != h.hedge
	h.port, h.hedge = d.Port, d.HedgePort
	wait, giveUp := h.pace.next(a.Cause, changed)
	if giveUp {
		return Decision{GiveUp: true}
	}
	d.Wait = wait
	return d
}

// fresh returns a new port avoiding prev and the previous decision's port,
// or 0 if reserved ports are denied.
func (h *hedged) fresh(prev int, denied bool) int {
	if denied {
		return 0
	}
	return h.ports.fresh(prev, h.port)
}

// Reset implements Policy.
func (h *hedged) Reset() {
	h.busy = 0
	h.pace.reset()
}

// Fresh returns a new policy of the same kind and Options as p, one of this
// package's, for another transport of the same client: a client with
// several connections needs one policy per connection, since a policy
// belongs to one transport. A custom Options.BackOff, which has state, is
// not shared: the new policy takes its kind's default backoff. Fresh
// returns nil for a policy this package did not make.
func Fresh(p Policy) Policy {
	switch p := p.(type) {
	case *sameReserved:
		return SameReservedPort(p.opts.fresh())
	case *newReserved:
		return NewReservedPort(p.opts.fresh())
	case *ephemeral:
		return Ephemeral(p.opts.fresh())
	case *hedged:
		return Hedged(p.opts.fresh())
	}
	return nil
}

// fresh is o without its BackOff, which has state.
func (o Options) fresh() Options {
	o.BackOff = nil
	return o
}
