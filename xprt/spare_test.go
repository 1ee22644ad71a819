package xprt

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// causes returns the Cause of each Attempt.
func causes(as []policy.Attempt) []policy.Cause {
	var cs []policy.Cause
	for _, a := range as {
		cs = append(cs, a.Cause)
	}
	return cs
}

// silenced connects tr through a watched connection, blackholes its flow
// once the server has read the request, waits for the verdict and asks for
// the next connection. It returns the old and new connections' local ports.
func silenced(t *testing.T, tr *Transport, srv *server) (oldPort, newPort int) {
	t.Helper()
	c, peer := watched(t, tr, srv)
	if _, err := io.ReadFull(peer, make([]byte, len("request"))); err != nil {
		t.Fatal(err)
	}
	oldPort = localPort(c.(*conn).tc)
	silence(t, oldPort) // the client side of the flow: the server's other connections are untouched
	waitStats(t, tr, "the verdict", func(s Stats) bool { return s.Disconnects[policy.CauseProbeTimeout] == 1 })
	nc, gen := waitReady(t, tr) // redials, as the next call would
	if gen != 2 {
		t.Fatalf("generation %d after the verdict; want 2", gen)
	}
	return oldPort, localPort(nc.(*conn).tc)
}

// A connection whose path goes silent is replaced by the spare dialed when
// it became suspect: the policy is asked once for the spare and once after
// the verdict, and no dial follows the verdict.
func TestSpareReplacesDeadPath(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	p := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }} // ephemeral ports, no wait
	tr := newTransport(t, Config{Addr: srv.addr, Policy: p})
	_, newPort := silenced(t, tr, srv)

	spare := srv.accept(t)
	if got := remotePort(spare); got != newPort {
		t.Errorf("the new connection is from port %d; the spare the server accepted, from %d", newPort, got)
	}
	select {
	case c := <-srv.conns:
		t.Errorf("the server accepted another connection, from port %d: the verdict was followed by a dial", remotePort(c))
		c.Close()
	default:
	}
	st := tr.Stats()
	if st.Spares != 1 || st.SparesUsed != 1 || st.Disconnects != [policy.NumCauses]uint64{policy.CauseProbeTimeout: 1} {
		t.Errorf("spares %d, used %d, disconnects by cause %v; want one spare, used, after one probe timeout", st.Spares, st.SparesUsed, st.Disconnects)
	}
	as, _ := p.seen()
	want := []policy.Cause{policy.CauseInitial, policy.CauseSuspect, policy.CauseProbeTimeout}
	if got := causes(as); !slices.Equal(got, want) {
		t.Errorf("the policy was asked for %v; want %v", got, want)
	}
}

// A policy that redials the old port with a hedge (Hedged's way after a
// silent path) gets the spare as its hedge leg: no dial from the hedge
// port is made.
func TestSpareIsTheHedgeLeg(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	pp := freePorts(t, 2)
	first, hedgePort := pp[0], pp[1]
	p := &script{next: func(a policy.Attempt) policy.Decision {
		switch a.Cause {
		case policy.CauseInitial:
			return policy.Decision{Port: first}
		case policy.CauseSuspect:
			return policy.Decision{} // an ephemeral port
		}
		return policy.Decision{Port: a.PrevPort, HedgeAfter: 50 * time.Millisecond, HedgePort: hedgePort}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: p})
	_, newPort := silenced(t, tr, srv)
	if newPort == first || newPort == hedgePort {
		t.Errorf("the new connection is from port %d; want the spare's (not the old port %d nor the hedge port %d)", newPort, first, hedgePort)
	}
	spare := srv.accept(t)
	if got := remotePort(spare); got != newPort {
		t.Errorf("the new connection is from port %d; the spare the server accepted, from %d", newPort, got)
	}
	if st := tr.Stats(); st.SparesUsed != 1 {
		t.Errorf("spares used %d; want 1", st.SparesUsed)
	}
}

// A policy that keeps its port (SameReservedPort) is not given a spare:
// the one it is asked for names the old 4-tuple.
func TestNoSpareForTheOldPort(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	port := freePorts(t, 1)[0]
	p := &script{next: func(a policy.Attempt) policy.Decision { return policy.Decision{Port: port} }}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: p})
	c, peer := watched(t, tr, srv)
	if _, err := io.ReadFull(peer, make([]byte, len("request"))); err != nil {
		t.Fatal(err)
	}
	silence(t, localPort(c.(*conn).tc))
	st := waitStats(t, tr, "the verdict", func(s Stats) bool { return s.Disconnects[policy.CauseProbeTimeout] == 1 })
	if st.Spares != 0 {
		t.Errorf("%d spares for a policy that keeps its port", st.Spares)
	}
	select {
	case c := <-srv.conns:
		t.Errorf("the server accepted a second connection, from port %d", remotePort(c))
		c.Close()
	default:
	}
}

// A server that is silent but whose kernel acknowledges the probe (a
// stopped process) keeps its connection; the spare dialed on suspicion is
// closed unused, and no other is made while the server stays silent.
func TestSpareClosedWhenPathAlive(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: policy.Ephemeral(policy.Options{})})
	watched(t, tr, srv)
	st := waitStats(t, tr, "three probes", func(s Stats) bool { return s.Probes >= 3 })
	if st.State != Ready || st.Gen != 1 || st.SparesUsed != 0 || st.Spares > 1 {
		t.Errorf("after %d probes of a silent but acknowledging server: state %v, generation %d, spares %d (used %d); want the first connection still up and at most one spare, unused",
			st.Probes, st.State, st.Gen, st.Spares, st.SparesUsed)
	}
	for range 2 {
		select {
		case c := <-srv.conns:
			t.Cleanup(func() { c.Close() })
			c.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Errorf("a spare from port %d is still open (read: %v)", remotePort(c), err)
			}
		default:
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}
