package xprt

import (
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"
)

// The path watch: how a connection whose replies are overdue is made to
// prove that its network path is alive. The mechanism, and why it cannot
// mistake a slow server for a dead path, is in the package documentation
// ("Detecting a dead path"); these are its bounds.
const (
	// suspectRTOs is how many retransmission timeouts of silence from the
	// server, while replies are awaited, make the path suspect; the result
	// is kept within [minSuspect, maxSuspect].
	suspectRTOs = 2
	minSuspect  = 300 * time.Millisecond
	maxSuspect  = 3 * time.Second

	// probeRTOs is how many retransmission timeouts a probe has to be
	// acknowledged before the path is declared dead; the result is kept
	// within [minProbeWait, maxProbeWait]. The floor covers a delayed
	// acknowledgement (at most 200ms on Linux) and one lost segment.
	probeRTOs    = 3
	minProbeWait = 400 * time.Millisecond
	maxProbeWait = 5 * time.Second

	// maxQuiet caps the silence tolerated between probes while a live
	// server keeps acknowledging them without replying: each probe it
	// acknowledges doubles the silence before the next, up to this.
	maxQuiet = 5 * time.Second

	// firstRTO paces the first look at a connection, before its measured
	// RTO is known: Linux's minimum RTO.
	firstRTO = 200 * time.Millisecond
)

// ErrDeadPath is the cause a Transport gives when its path watch declares a
// connection dead (see "Detecting a dead path" in the package
// documentation): replies were overdue, the server had been silent, and a
// probe went unacknowledged. Classify maps it to policy.CauseProbeTimeout.
var ErrDeadPath = errors.New("xprt: dead path: replies overdue and a probe went unacknowledged")

// Watch starts the path watch of the connection: from now on, whenever a
// write is followed by silence from the server while awaiting reports
// true, the transport makes the path prove itself by calling probe, and
// fails the connection with ErrDeadPath if the probe is not acknowledged in
// time. probe must send a small request that the server answers (an RPC
// NULL call) on this connection; it is called on a goroutine of its own
// and may block until its write completes or the connection is closed.
// awaiting is called from the watch goroutine about once per suspect
// interval while the connection is busy, never per call.
//
// Watch is for the protocol layer that owns the connection (package rpc
// calls it once per connection); a second call does nothing. Without it a
// connection relies on the socket options alone.
func (c *conn) Watch(awaiting func() bool, probe func() error) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.watched || t.state == Shutdown || t.cur != c {
		return
	}
	c.watched = true
	w := &watch{c: c, awaiting: awaiting, probe: probe, rto: firstRTO}
	t.wg.Add(1)
	go w.run()
}

// watch is the state of one connection's path watch, owned by its
// goroutine.
type watch struct {
	c        *conn
	awaiting func() bool
	probe    func() error

	rto      time.Duration // the path's retransmission timeout, before any backoff
	quiet    time.Duration // silence tolerated before the next probe; 0: suspect()
	received uint64        // tcpi_bytes_received at the last look

	// The path is suspect from the look that finds the server silent too
	// long until a look finds it heard from (by the kernel's count of
	// segments received, which does not depend on when it is read) or the
	// probe's time is up. The time runs from a moment when the probe was
	// certainly out: after the read that saw the kernel's own
	// retransmissions or window probes unanswered, or after the write of
	// our probe returned; and is judged against a moment before the read
	// that found nothing heard. The watch being late only gives the path
	// more time.
	suspected bool
	segsIn    uint32    // tcpi_segs_in when the path became suspect
	probeAt   time.Time // when the probe was out; zero while our probe's write has not returned
	window    bool      // the kernel's window probes are the probe

	probing chan struct{} // closed when the last probe's write has returned
	sentAt  time.Time     // when it returned; written before probing is closed
}

// run is the watch goroutine: idle until a request is written, then busy
// until no reply is awaited, and so on until the connection is closed.
// Every Write kicks it, and a kick is only taken by a busy watch that then
// asks awaiting (after the call's caller registered it), so a call that
// becomes outstanding always finds the watch busy.
func (w *watch) run() {
	defer w.c.t.wg.Done()
	defer func() {
		if w.probing != nil {
			<-w.probing // ends once the write returns: the socket is closed by now
		}
	}()
	for {
		select {
		case <-w.c.done:
			return
		case <-w.c.kick:
		}
		if !w.busy() {
			return
		}
	}
}

// busy watches the path while replies are awaited. It returns true when
// none is awaited any more, false when the connection is gone.
func (w *watch) busy() bool {
	timer := time.NewTimer(w.suspect())
	defer timer.Stop()
	w.suspected, w.probeAt = false, time.Time{}
	w.quiet = 0
	for {
		select {
		case <-w.c.done:
			return false
		case <-timer.C:
		}
		select {
		case <-w.c.kick: // a write since the last look; awaiting says the rest
		default:
		}
		if !w.awaiting() {
			if w.suspected {
				w.c.t.unsuspect(w.c) // answered after all
			}
			return true
		}
		before := time.Now()
		var info *unix.TCPInfo
		rc, err := w.c.tc.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
			if cerr != nil {
				err = cerr
			}
		}
		if err != nil {
			return false // closed under us; done is closed or about to be
		}
		next, dead := w.look(info, before, time.Now())
		if dead {
			w.c.t.pathDead(w.c, time.Duration(min(info.Last_ack_recv, info.Last_data_recv))*time.Millisecond, w.rto)
			return false
		}
		timer.Reset(next)
	}
}

// look judges one TCP_INFO snapshot, read between before and after: it
// sends a probe when one is due, and returns when to look next, or dead
// when a probe went unanswered for too long.
func (w *watch) look(info *unix.TCPInfo, before, after time.Time) (next time.Duration, dead bool) {
	if info.Backoff == 0 && info.Rto > 0 {
		// The kernel doubles its RTO while it retransmits; keep the one it
		// had before.
		w.rto = time.Duration(info.Rto) * time.Microsecond
	}
	// Silence: how long since the server was last heard from, by data or
	// by an acknowledgement (what keepalive measures, too).
	silent := time.Duration(min(info.Last_ack_recv, info.Last_data_recv)) * time.Millisecond
	data := info.Bytes_received != w.received
	if data {
		// Data arrived: the server is working, not just acknowledging.
		w.received = info.Bytes_received
		w.quiet = 0
	}
	if w.suspected {
		if data || info.Segs_in != w.segsIn {
			// Heard from since the path became suspect: it is alive. If
			// only the server's kernel answered, the server is slow: probe
			// it less often while it stays silent.
			w.suspected, w.probeAt = false, time.Time{}
			w.c.t.unsuspect(w.c)
			if !data {
				w.quiet = min(2*w.quietOr(), maxQuiet)
			}
			return max(w.quietOr()-silent, minSuspect/4), false
		}
		if w.probeAt.IsZero() {
			select {
			case <-w.probing:
				w.probeAt = w.sentAt
			default:
				// Our probe is not written yet: the lateness is ours, not
				// the path's.
				return w.probeWait(), false
			}
		}
		wait := w.probeWait()
		if since := before.Sub(w.probeAt); since < wait {
			return wait - since, false
		}
		if w.window && info.Probes < 2 {
			// The kernel spaces its window probes out (each RTO doubled):
			// one lost on the way to a live server that keeps its window
			// shut may be the last for seconds. Two in a row unanswered,
			// as a retransmission and its successor, make it the path.
			return w.suspect(), false
		}
		return 0, true
	}
	quiet := w.quietOr()
	if silent < quiet {
		return quiet - silent, false
	}
	// Replies are overdue and nothing proves the path alive: make it
	// prove it.
	w.window = false
	switch {
	case info.Unacked > 0:
		// The kernel's retransmissions are the probe already.
	case info.Notsent_bytes > 0 && info.Probes == 0:
		// Data waits unsent with nothing in flight, and the kernel's
		// window probes (sent while data cannot go out, every RTO with
		// backoff) are answered: the server's kernel announced a full
		// receive buffer, so the host is alive and the server just not
		// reading. The window probes, bounded by TCP_USER_TIMEOUT, watch
		// that state.
		return w.suspect(), false
	case info.Notsent_bytes > 0:
		// Data waits unsent and the kernel's window probe went
		// unanswered (or could not even leave this host): that probe is
		// the path's to answer, and ours would only queue behind it.
		w.window = true
	default:
		w.suspected, w.segsIn, w.probeAt = true, info.Segs_in, time.Time{}
		w.sendProbe()
		w.spare()
		return w.probeWait(), false
	}
	w.suspected, w.segsIn, w.probeAt = true, info.Segs_in, after
	w.spare()
	return w.probeWait(), false
}

// spare asks the transport for a spare connection (spare.go) as the path
// becomes suspect, unless the server has been found slow rather than gone
// since it last sent data: then its path proved alive, and the suspicion
// is of the server, which another connection would not cure.
func (w *watch) spare() {
	if w.quiet == 0 {
		w.c.t.suspect(w.c)
	}
}

// sendProbe calls probe on a goroutine of its own, unless the previous
// probe's write has not returned yet.
func (w *watch) sendProbe() {
	if w.probing != nil {
		select {
		case <-w.probing:
		default:
			return
		}
	}
	done := make(chan struct{})
	w.probing = done
	w.c.t.probes.Add(1)
	go func() {
		defer close(done)
		if err := w.probe(); err != nil {
			w.c.t.log.Debug("xprt: probe not sent", slog.Uint64("gen", w.c.gen), slog.Any("err", err))
		}
		w.sentAt = time.Now()
	}()
}

// suspect is the silence, while replies are awaited, after which the path
// must prove itself.
func (w *watch) suspect() time.Duration {
	return min(max(suspectRTOs*w.rto, minSuspect), maxSuspect)
}

// quietOr is the silence tolerated before the next probe.
func (w *watch) quietOr() time.Duration {
	if w.quiet == 0 {
		return w.suspect()
	}
	return w.quiet
}

// probeWait is how long a probe has to be acknowledged.
func (w *watch) probeWait() time.Duration {
	return min(max(probeRTOs*w.rto, minProbeWait), maxProbeWait)
}

// pathDead fails c with ErrDeadPath: the server was silent for silent,
// replies were overdue, and a probe went unacknowledged.
func (t *Transport) pathDead(c *conn, silent, rto time.Duration) {
	t.log.Warn("xprt: dead path", slog.Uint64("gen", c.gen), slog.Int("local_port", c.port),
		slog.Duration("silent", silent), slog.Duration("rto", rto))
	t.Fail(c.gen, ErrDeadPath)
}
