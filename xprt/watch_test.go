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
		return &unix.TCPInfo{Rto: uint32(rto / time.Microsecond), Last_ack_recv: ms(d), Last_data_recv: ms(d)}
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
	settle := func(w *watch) { // wait for the probe goroutine
		if w.probing != nil {
			<-w.probing
		}
	}
	now := time.Now()

	t.Run("a talking server is never probed", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		for i := range 20 {
			info := silentFor(50 * time.Millisecond)
			info.Bytes_received = uint64(i) * 1000
			if _, dead := w.look(info, now.Add(time.Duration(i)*time.Second)); dead || !w.probeAt.IsZero() {
				t.Fatalf("look %d: dead %v, probing %v", i, dead, !w.probeAt.IsZero())
			}
		}
		if got := probes.Load() - before; got != 0 {
			t.Errorf("%d probes sent to a server that talks", got)
		}
	})

	t.Run("silence, then an unacknowledged probe: dead", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		next, dead := w.look(silentFor(500*time.Millisecond), now)
		settle(w)
		if dead || probes.Load()-before != 1 || next != 600*time.Millisecond {
			t.Fatalf("after 500ms of silence: dead %v, probes %d, next look in %v; want a probe and a look in 600ms", dead, probes.Load()-before, next)
		}
		if _, dead := w.look(silentFor(800*time.Millisecond), now.Add(300*time.Millisecond)); dead {
			t.Fatal("dead before the probe's time was up")
		}
		if _, dead := w.look(silentFor(1100*time.Millisecond), now.Add(600*time.Millisecond)); !dead {
			t.Fatal("probe unacknowledged for 3 RTOs, yet not dead")
		}
	})

	t.Run("a probe acknowledged by a stopped server: alive, probed less often", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		w.look(silentFor(400*time.Millisecond), now)
		settle(w)
		// The server's kernel acknowledged the probe 100ms after it went out.
		next, dead := w.look(silentFor(200*time.Millisecond), now.Add(300*time.Millisecond))
		if dead || !w.probeAt.IsZero() {
			t.Fatalf("acknowledged probe: dead %v, still probing %v", dead, !w.probeAt.IsZero())
		}
		if next != 600*time.Millisecond {
			t.Errorf("next look in %v, want 600ms: the tolerated silence doubles to 800ms", next)
		}
		// Still silent, but less than the doubled tolerance: no probe.
		if w.look(silentFor(700*time.Millisecond), now.Add(800*time.Millisecond)); !w.probeAt.IsZero() {
			t.Error("probed again before the doubled silence")
		}
		if got := probes.Load() - before; got != 1 {
			t.Errorf("%d probes, want 1", got)
		}
		// An acknowledgement within the clock's resolution of the probe
		// counts too: tcpi_bytes_acked grew.
		w.quiet = 0
		w.look(silentFor(400*time.Millisecond), now.Add(2*time.Second))
		settle(w)
		info := silentFor(404 * time.Millisecond)
		info.Bytes_acked = 5
		if _, dead := w.look(info, now.Add(2*time.Second+time.Millisecond)); dead || !w.probeAt.IsZero() {
			t.Errorf("probe acknowledged in the same jiffy: dead %v, still probing %v", dead, !w.probeAt.IsZero())
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
		info.Unacked, info.Backoff, info.Rto = 3, 2, uint32(4*rto/time.Microsecond) // backed off
		w.rto = rto
		w.look(info, now)
		settle(w)
		if probes.Load() != before || w.probeAt.IsZero() {
			t.Fatalf("probes %d, suspect %v: want no probe written behind unacknowledged data, but the path suspect", probes.Load()-before, !w.probeAt.IsZero())
		}
		if w.rto != rto {
			t.Errorf("RTO taken as %v while backed off, want the base %v", w.rto, rto)
		}
		info = silentFor(1100 * time.Millisecond)
		info.Unacked = 3
		if _, dead := w.look(info, now.Add(600*time.Millisecond)); !dead {
			t.Error("retransmissions unacknowledged for 3 RTOs, yet not dead")
		}
	})

	t.Run("a closed window: alive, never suspect", func(t *testing.T) {
		w, before := newWatch(), probes.Load()
		for i := range 20 {
			info := silentFor(time.Duration(i) * time.Second)
			info.Notsent_bytes = 1 << 20
			if _, dead := w.look(info, now.Add(time.Duration(i)*time.Second)); dead || !w.probeAt.IsZero() {
				t.Fatalf("look %d: dead %v, suspect %v", i, dead, !w.probeAt.IsZero())
			}
		}
		if probes.Load() != before {
			t.Error("probed a server whose kernel announced a full receive buffer")
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

// silence drops every TCP packet to or from port, both ways, in silence
// (no reset, no ICMP). Only for a network namespace of the test's own.
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
