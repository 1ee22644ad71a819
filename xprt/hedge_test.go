package xprt

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// Ports used inside the private network namespace of the blackhole tests,
// where nothing else runs.
const (
	blackholePort = 901 // packets from this port vanish
	openPort      = 902
)

// inNetns re-executes t in a new network namespace and reports false; in
// that child it brings loopback up and reports true.
func inNetns(t *testing.T) bool {
	t.Helper()
	if !inChild(t) {
		for _, tool := range []string{"unshare", "ip", "nft"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed: cannot build a network namespace that drops packets", tool)
			}
		}
		runChild(t, "unshare", "--net", "--")
		return false
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	return true
}

// dropTo makes every TCP packet whose match (for example "sport 901")
// holds vanish on arrival, as behind a dead middlebox. Only for a network
// namespace of the test's own.
func dropTo(t *testing.T, match string) {
	t.Helper()
	rules := "table inet xprt_test {\n chain in {\n  type filter hook input priority 0; policy accept;\n" +
		"  tcp " + match + " drop\n }\n}\n"
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

// inBlackholeNetns is inNetns where packets from blackholePort vanish.
func inBlackholeNetns(t *testing.T) bool {
	t.Helper()
	if !inNetns(t) {
		return false
	}
	dropTo(t, "sport "+strconv.Itoa(blackholePort))
	return true
}

// A first leg whose SYNs vanish does not hold up the hedge leg, which wins;
// the first is cancelled and leaves no socket behind.
func TestHedgeWinsWhenFirstLegHangs(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inBlackholeNetns(t) {
		return
	}
	srv := newServer(t)
	pol := &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{Port: blackholePort, HedgeAfter: 50 * time.Millisecond, HedgePort: openPort}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	c, _ := waitReady(t, tr)
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != openPort {
		t.Errorf("connected from %d, want the hedge port %d", got, openPort)
	}
	if got := remotePort(srv.accept(t)); got != openPort {
		t.Errorf("server sees port %d, want %d", got, openPort)
	}
	if st := tr.Stats(); st.FailedAttempts != [policy.NumCauses]uint64{} {
		t.Errorf("FailedAttempts %v: the cancelled leg counted as a failure", st.FailedAttempts)
	}
	for _, e := range tcpTable(t) {
		if e.local == blackholePort {
			t.Errorf("the losing leg left a socket in state %s", e.state)
		}
	}
}

// A dial that gets no answer within DialTimeout is a dial timeout.
func TestDialTimeout(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inBlackholeNetns(t) {
		return
	}
	srv := newServer(t)
	pol := ports(blackholePort)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol, DialTimeout: 50 * time.Millisecond})
	err := waitErr(t, tr)
	var de *DialError
	if !errors.As(err, &de) || de.Cause != policy.CauseDialTimeout || de.Port != blackholePort {
		t.Fatalf("Conn error %v, want a dial timeout from port %d", err, blackholePort)
	}
	if as, _ := pol.seen(); len(as) != 2 || as[1].Cause != policy.CauseDialTimeout {
		t.Errorf("attempts %+v, want a second with CauseDialTimeout", as)
	}
}

// When both legs connect, the one that lost the race is aborted.
func TestHedgeLoserAbortedWhenBothConnect(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 2)
	slow, fast := ps[0], ps[1]
	pol := &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{Port: slow, HedgeAfter: time.Millisecond, HedgePort: fast}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	tr.dial = func(ctx context.Context, addr netip.AddrPort, port int) (*net.TCPConn, error) {
		if port == slow {
			// Connect only once the other leg has won, as a SYN-ACK
			// arriving just too late would.
			<-ctx.Done()
			return tr.dialPort(context.Background(), addr, port)
		}
		return tr.dialPort(ctx, addr, port)
	}
	c, _ := waitReady(t, tr)
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != fast {
		t.Fatalf("connected from %d, want %d", got, fast)
	}
	// The server accepted both; the loser's end sees a reset.
	for range 2 {
		sc := srv.accept(t)
		if remotePort(sc) != slow {
			continue
		}
		sc.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("losing connection: server read %v, want ECONNRESET", err)
		}
		if st := tr.Stats(); st.FailedAttempts != [policy.NumCauses]uint64{} || st.Connects != 1 {
			t.Errorf("Stats %+v: want one connect and no failures", st)
		}
		return
	}
	t.Errorf("the server never saw the losing leg from port %d", slow)
}

// A first leg that fails starts the hedge leg at once, which connects.
func TestHedgeStartsWhenFirstLegFails(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 2)
	busy, next := ps[0], ps[1]
	holdPort(t, busy)
	pol := &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{Port: busy, HedgeAfter: time.Hour, HedgePort: next}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	c, _ := waitReady(t, tr)
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != next {
		t.Errorf("connected from %d, want the hedge port %d", got, next)
	}
	if st := tr.Stats(); st.FailedAttempts[policy.CauseAddrInUse] != 1 {
		t.Errorf("FailedAttempts %v, want the busy leg counted", st.FailedAttempts)
	}
	if as, _ := pol.seen(); len(as) != 1 {
		t.Errorf("policy asked %d times, want once", len(as))
	}
}

// When both legs fail, both failures are counted and the policy is told.
func TestHedgeBothLegsFail(t *testing.T) {
	testutil.CheckLeaks(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connects are refused
	ps := freePorts(t, 2)
	pol := &script{next: func(a policy.Attempt) policy.Decision {
		if a.N > 1 {
			return policy.Decision{GiveUp: true}
		}
		return policy.Decision{Port: ps[0], HedgeAfter: time.Hour, HedgePort: ps[1]}
	}}
	tr := newTransport(t, Config{Addr: addr, Policy: pol})
	err = waitErr(t, tr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Conn error %v, want ECONNREFUSED", err)
	}
	if st := tr.Stats(); st.FailedAttempts[policy.CauseRefused] != 2 {
		t.Errorf("FailedAttempts %v, want two refused legs", st.FailedAttempts)
	}
	if as, _ := pol.seen(); len(as) != 2 || as[1].Cause != policy.CauseRefused {
		t.Errorf("attempts %+v, want a second with CauseRefused", as)
	}
}
