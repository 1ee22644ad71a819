package xprt

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// The path watch's decisions, one TCP_INFO snapshot at a time: when it
// probes, when it declares the path dead, and when it leaves a silent
// server alone.
func TestWatchLook(t *testing.T) {
	testutil.CheckLeaks(t)
	const rto = 200 * time.Millisecond // the kernel's minimum: suspect 400ms, probe wait 600ms
	ms := func(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
	silentFor := func(d time.Duration) *unix.TCPInfo {
		return &unix.TCPInfo{Rto: uint32(rto / time.Microsecond), Last_ack_recv: ms(d), Last_data_recv: ms(d), Segs_in: 100}
	}
	tr, err := New(Config{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var probes atomic.Int32
	newWatch := func() *watch {
		return &watch{c: &conn{t: tr}, rto: firstRTO, probe: func() error { probes.Add(1); return nil }}
	}
	now := time.Now()
	// settle waits for the probe goroutine and dates the probe's write at.
	settle := func(w *watch, at time.Time) {
		if w.probing != nil {
			<-w.probing
			w.sentAt = at
		}
	}
	look := func(w *watch, info *unix.TCPInfo, at time.Duration) (time.Duration, bool) {
		return w.look(info, now.Add(at), now.Add(at))
	}

	t.Run("a talking server is never probed", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		for i := range 20 {
			info := silentFor(50 * time.Millisecond)
			info.Bytes_received = uint64(i) * 1000
			info.Segs_in = uint32(i)
			if _, dead := look(w, info, time.Duration(i)*time.Second); dead || w.suspected {
				t.Fatalf("look %d: dead %v, suspect %v", i, dead, w.suspected)
			}
		}
		if got := probes.Load() - before; got != 0 {
			t.Errorf("%d probes sent to a server that talks", got)
		}
	})

	t.Run("silence, then an unacknowledged probe: dead", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		next, dead := look(w, silentFor(500*time.Millisecond), 0)
		settle(w, now)
		if dead || probes.Load()-before != 1 || next != 600*time.Millisecond {
			t.Fatalf("after 500ms of silence: dead %v, probes %d, next look in %v; want a probe and a look in 600ms", dead, probes.Load()-before, next)
		}
		if _, dead := look(w, silentFor(800*time.Millisecond), 300*time.Millisecond); dead {
			t.Fatal("dead before the probe's time was up")
		}
		if _, dead := look(w, silentFor(1100*time.Millisecond), 600*time.Millisecond); !dead {
			t.Fatal("probe unanswered for 3 RTOs, yet not dead")
		}
	})

	t.Run("a probe acknowledged by a stopped server: alive, probed less often", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		look(w, silentFor(400*time.Millisecond), 0)
		settle(w, now)
		// The server's kernel acknowledged the probe 100ms after it went out.
		info := silentFor(200 * time.Millisecond)
		info.Segs_in++
		next, dead := look(w, info, 300*time.Millisecond)
		if dead || w.suspected {
			t.Fatalf("acknowledged probe: dead %v, still suspect %v", dead, w.suspected)
		}
		if next != 600*time.Millisecond {
			t.Errorf("next look in %v, want 600ms: the tolerated silence doubles to 800ms", next)
		}
		// Still silent, but less than the doubled tolerance: no probe.
		if look(w, silentFor(700*time.Millisecond), 800*time.Millisecond); w.suspected {
			t.Error("probed again before the doubled silence")
		}
		if got := probes.Load() - before; got != 1 {
			t.Errorf("%d probes, want 1", got)
		}
		// The kernel's count of segments received decides, not the clocks:
		// an answer counts even when, by the times read, the server was
		// silent since before the probe (a late look).
		w.quiet = 0
		look(w, silentFor(400*time.Millisecond), 2*time.Second)
		settle(w, now.Add(2*time.Second))
		info = silentFor(3 * time.Second)
		info.Segs_in++
		if _, dead := look(w, info, 4*time.Second); dead || w.suspected {
			t.Errorf("probe answered, looked at late: dead %v, still suspect %v", dead, w.suspected)
		}
		if got := probes.Load() - before; got != 2 {
			t.Errorf("%d probes, want 2", got)
		}
		// The tolerance never exceeds maxQuiet.
		for range 10 {
			w.quiet = min(2*w.quietOr(), maxQuiet)
		}
		if w.quiet != maxQuiet {
			t.Errorf("tolerated silence grew to %v, want at most %v", w.quiet, maxQuiet)
		}
	})

	t.Run("unacknowledged data: the kernel's retransmissions are the probe", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		info := silentFor(500 * time.Millisecond)
		info.Unacked, info.Backoff, info.Retransmits, info.Rto = 3, 2, 2, uint32(4*rto/time.Microsecond) // backed off
		w.rto = rto
		// The read took 250ms (the watch was descheduled): the probe's
		// time runs from after it.
		w.look(info, now, now.Add(250*time.Millisecond))
		settle(w, now)
		if probes.Load() != before || !w.suspected {
			t.Fatalf("probes %d, suspect %v: want no probe written behind unacknowledged data, but the path suspect", probes.Load()-before, w.suspected)
		}
		if w.rto != rto {
			t.Errorf("RTO taken as %v while backed off, want the base %v", w.rto, rto)
		}
		info = silentFor(1100 * time.Millisecond)
		info.Unacked = 3
		if _, dead := look(w, info, 600*time.Millisecond); dead {
			t.Error("dead 350ms after the read that made the path suspect")
		}
		if _, dead := look(w, info, 850*time.Millisecond); !dead {
			t.Error("retransmissions unacknowledged for 3 RTOs, yet not dead")
		}
	})

	t.Run("data unsent, the kernel's window probes unanswered: dead", func(t *testing.T) {
		// A request written after the path went silent, dropped before
		// it left this host (or a window probe lost on the way): nothing
		// in flight, data waiting, the kernel's window probes counting up.
		w, before := newWatch(), probes.Load()
		info := silentFor(500 * time.Millisecond)
		info.Notsent_bytes, info.Probes, info.Backoff, info.Snd_wnd = 168, 1, 1, 65536
		if _, dead := look(w, info, 0); dead || !w.suspected {
			t.Fatalf("dead %v, suspect %v: want the path suspect", dead, w.suspected)
		}
		// One window probe unanswered, the next not due for a while (a
		// live server's window shut, the probe lost): not yet.
		info = silentFor(1100 * time.Millisecond)
		info.Notsent_bytes, info.Probes, info.Backoff = 168, 1, 4
		if _, dead := look(w, info, 600*time.Millisecond); dead {
			t.Error("dead after one unanswered window probe")
		}
		info.Probes, info.Backoff = 2, 5
		if _, dead := look(w, info, 4*time.Second); !dead {
			t.Error("two window probes in a row unanswered, silent for 3 RTOs, yet not dead")
		}
		if probes.Load() != before {
			t.Error("probe written behind unsent data")
		}
	})

	t.Run("a closed window whose probes are answered: alive, never suspect", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		for i := range 20 {
			info := silentFor(time.Duration(i) * time.Second)
			info.Notsent_bytes = 1 << 20
			if _, dead := look(w, info, time.Duration(i)*time.Second); dead || w.suspected {
				t.Fatalf("look %d: dead %v, suspect %v", i, dead, w.suspected)
			}
		}
		if probes.Load() != before {
			t.Error("probed a server whose kernel announced a full receive buffer")
		}
	})

	t.Run("a probe written late: its time runs from the write", func(t *testing.T) {
		release := make(chan struct{})
		w := &watch{c: &conn{t: tr}, rto: firstRTO, probe: func() error { <-release; return nil }}
		look(w, silentFor(500*time.Millisecond), 0)
		if _, dead := look(w, silentFor(3*time.Second), 2*time.Second); dead || !w.suspected {
			t.Fatalf("probe not written yet: dead %v, suspect %v", dead, w.suspected)
		}
		close(release)
		settle(w, now.Add(2500*time.Millisecond))
		if _, dead := look(w, silentFor(3300*time.Millisecond), 2800*time.Millisecond); dead {
			t.Error("dead 300ms after the probe's write")
		}
		if _, dead := look(w, silentFor(3600*time.Millisecond), 3100*time.Millisecond); !dead {
			t.Error("probe unanswered 600ms after its write, yet not dead")
		}
	})

	t.Run("bounds", func(t *testing.T) {
		w := newWatch()
		for _, c := range []struct{ rto, suspect, wait time.Duration }{
			{10 * time.Millisecond, minSuspect, minProbeWait},
			{200 * time.Millisecond, 400 * time.Millisecond, 600 * time.Millisecond},
			{10 * time.Second, maxSuspect, maxProbeWait},
		} {
			w.rto = c.rto
			if w.suspect() != c.suspect || w.probeWait() != c.wait {
				t.Errorf("RTO %v: suspect %v, probe wait %v; want %v, %v", c.rto, w.suspect(), w.probeWait(), c.suspect, c.wait)
			}
		}
	})
}

// watched connects tr, registers its connection with the path watch
// (replies always awaited; a probe writes "probe"), and returns both ends.
func watched(t *testing.T, tr *Transport, srv *server) (net.Conn, *net.TCPConn) {
	t.Helper()
	c, _ := waitReady(t, tr)
	peer := srv.accept(t)
	c.(*conn).Watch(func() bool { return true }, func() error {
		_, err := c.Write([]byte("probe"))
		return err
	})
	if _, err := c.Write([]byte("request")); err != nil { // wakes the watch
		t.Fatal(err)
	}
	return c, peer
}

// waitStats polls tr's statistics until ok holds, at most testTimeout.
func waitStats(t *testing.T, tr *Transport, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for range 10000 {
		st := tr.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; stats %+v", what, testTimeout, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: too many polls", what)
	return Stats{}
}

// A server that stops reading and replying, while its kernel acknowledges
// what it is sent (a stopped or overloaded process), is probed, and never
// taken for a dead path.
func TestWatchSlowServerIsNotDead(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: policy.Ephemeral(policy.Options{})})
	watched(t, tr, srv)
	st := waitStats(t, tr, "three probes", func(s Stats) bool { return s.Probes >= 3 })
	if st.State != Ready || st.Gen != 1 || st.Disconnects != [policy.NumCauses]uint64{} {
		t.Errorf("after %d probes of a silent but acknowledging server: state %v, generation %d, disconnects %v; want the first connection still up",
			st.Probes, st.State, st.Gen, st.Disconnects)
	}
}

// With the default socket options, a path that goes silent while replies
// are awaited is declared dead by the path watch (a probe went
// unacknowledged), not by keepalive or TCP_USER_TIMEOUT, whose 15 s and
// 20 s it does not wait for.
func TestWatchDeadPath(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: policy.Ephemeral(policy.Options{})})
	c, peer := watched(t, tr, srv)
	if _, err := io.ReadFull(peer, make([]byte, len("request"))); err != nil {
		t.Fatal(err)
	}
	silence(t, srv.port)
	st := waitStats(t, tr, "a disconnect", func(s Stats) bool { return s.State != Ready })
	want := [policy.NumCauses]uint64{policy.CauseProbeTimeout: 1}
	if st.Disconnects != want || st.Probes == 0 {
		t.Errorf("disconnects by cause %v after %d probes; want one, by the probe timeout", st.Disconnects, st.Probes)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the dead connection still reads")
	}
	if got := Classify(fmt.Errorf("wrapped: %w", ErrDeadPath)); got != policy.CauseProbeTimeout {
		t.Errorf("Classify(ErrDeadPath) = %v", got)
	}
}

// A request written after the path went silent, dropped before it leaves
// this host (a local firewall; the lab's stale load balancer), stays unsent
// with nothing in flight: the kernel's window probes go unanswered, and the
// path watch declares the path dead as it does when data is in flight. It
// once took this for a server that had closed its window, and left the
// connection to TCP_USER_TIMEOUT.
func TestWatchDeadPathUnsent(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: policy.Ephemeral(policy.Options{})})
	c, peer := watched(t, tr, srv)
	if _, err := io.ReadFull(peer, make([]byte, len("request"))); err != nil {
		t.Fatal(err)
	}
	rules := "table inet xprt_silence_out {\n chain out {\n  type filter hook output priority 0; policy accept;\n" +
		"  tcp dport " + strconv.Itoa(srv.port) + " drop\n  tcp sport " + strconv.Itoa(srv.port) + " drop\n }\n}\n"
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	if _, err := c.Write([]byte("late request")); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, tr, "a disconnect", func(s Stats) bool { return s.State != Ready })
	want := [policy.NumCauses]uint64{policy.CauseProbeTimeout: 1}
	if st.Disconnects != want {
		t.Errorf("disconnects by cause %v; want one, by the probe timeout", st.Disconnects)
	}
}

// silence drops every TCP packet to or from port, both ways, in silence
// (no reset, no ICMP): the server's port silences all its connections, a
// client's port one connection. Only for a network namespace of the
// test's own.
func silence(t *testing.T, port int) {
	t.Helper()
	p := strconv.Itoa(port)
	rules := "table inet xprt_silence {\n chain in {\n  type filter hook input priority 0; policy accept;\n" +
		"  tcp dport " + p + " drop\n  tcp sport " + p + " drop\n }\n}\n"
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}
