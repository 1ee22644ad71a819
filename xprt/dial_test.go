package xprt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

func TestDialFromReservedPort(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	port := freePorts(t, 1)[0]
	tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(port)})
	c, gen := waitReady(t, tr)
	if gen != 1 {
		t.Errorf("first generation = %d, want 1", gen)
	}
	if got := remotePort(srv.accept(t)); got != port {
		t.Errorf("server sees client port %d, want %d", got, port)
	}
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != port {
		t.Errorf("LocalAddr port %d, want %d", got, port)
	}
	if st := tr.Stats(); st.LocalPort != port || st.State != Ready {
		t.Errorf("Stats: LocalPort %d State %v, want %d ready", st.LocalPort, st.State, port)
	}
}

func TestDialFromEphemeralPort(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(0)})
	c, _ := waitReady(t, tr)
	port := c.LocalAddr().(*net.TCPAddr).Port
	if port < 1024 {
		t.Errorf("ephemeral dial used port %d", port)
	}
	if got := remotePort(srv.accept(t)); got != port {
		t.Errorf("server sees client port %d, want %d", got, port)
	}
	if st := tr.Stats(); st.LocalPort != port || len(st.LastPorts) != 1 || st.LastPorts[0] != port {
		t.Errorf("Stats: LocalPort %d LastPorts %v, want %d", st.LocalPort, st.LastPorts, port)
	}
}

// An abortive close frees the 4-tuple at once, so the transport can redial
// the same server from the same reserved port; an orderly close would park
// it in TIME_WAIT.
func TestAbortLeavesNoTimeWait(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 2)
	port, plain := ps[0], ps[1]
	tr := newTransport(t, Config{Addr: srv.addr, Policy: &script{next: func(policy.Attempt) policy.Decision {
		return policy.Decision{Port: port}
	}}})

	_, gen := waitReady(t, tr)
	first := srv.accept(t)
	tr.Fail(gen, io.EOF)
	// The server's side sees the reset, not an orderly close.
	first.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read after Fail: %v, want ECONNRESET", err)
	}
	if timeWait(t, port, srv.port) {
		t.Errorf("port %d to %d is in TIME_WAIT after Fail", port, srv.port)
	}
	_, gen = waitReady(t, tr)
	if gen != 2 {
		t.Errorf("generation after redial = %d, want 2", gen)
	}
	if got := remotePort(srv.accept(t)); got != port {
		t.Errorf("redial came from port %d, want %d", got, port)
	}
	if st := tr.Stats(); st.Connects != 2 || st.FailedAttempts != [policy.NumCauses]uint64{} {
		t.Errorf("Stats: Connects %d FailedAttempts %v, want 2 and none", st.Connects, st.FailedAttempts)
	}

	// Control: an orderly close by the client leaves TIME_WAIT.
	d := net.Dialer{LocalAddr: &net.TCPAddr{Port: plain}, Control: SocketOptions{}.withDefaults().control(true)}
	c, err := d.Dial("tcp4", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	sc := srv.accept(t)
	c.Close()
	sc.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := sc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server read after orderly close: %v, want EOF", err)
	}
	sc.Close()
	found := false
	for range 1000 { // the final ACK crosses loopback at once, but let it
		if found = timeWait(t, plain, srv.port); found {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !found {
		t.Errorf("orderly close: port %d to %d not in TIME_WAIT; the control is broken", plain, srv.port)
	}
}

// A port another socket listens on fails with EADDRINUSE at bind; the
// policy is asked again at once, and its wait is not honoured.
func TestAddrInUseAsksAgainAtOnce(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 2)
	busy, next := ps[0], ps[1]
	holdPort(t, busy)

	pol := &script{next: func(a policy.Attempt) policy.Decision {
		if a.N == 1 {
			return policy.Decision{Port: busy}
		}
		return policy.Decision{Port: next, Wait: time.Hour}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	tr.wait = func(d time.Duration) bool {
		t.Errorf("waited %v after a busy port", d)
		return true
	}
	c, _ := waitReady(t, tr)
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != next {
		t.Errorf("connected from %d, want %d", got, next)
	}
	as, _ := pol.seen()
	if len(as) != 2 || as[1].Cause != policy.CauseAddrInUse || !errors.Is(as[1].Err, syscall.EADDRINUSE) {
		t.Fatalf("attempts %+v, want a second with CauseAddrInUse and EADDRINUSE", as)
	}
	if st := tr.Stats(); st.FailedAttempts[policy.CauseAddrInUse] != 1 {
		t.Errorf("FailedAttempts %v, want one AddrInUse", st.FailedAttempts)
	}
}

// A 4-tuple still in use fails with EADDRNOTAVAIL at connect; it too is a
// busy port.
func TestAddrNotAvailIsAddrInUse(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	ps := freePorts(t, 2)
	taken, next := ps[0], ps[1]
	holder := newTransport(t, Config{Addr: srv.addr, Policy: ports(taken)})
	waitReady(t, holder)

	pol := ports(taken, next)
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	c, _ := waitReady(t, tr)
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != next {
		t.Errorf("connected from %d, want %d", got, next)
	}
	as, _ := pol.seen()
	if len(as) != 2 || as[1].Cause != policy.CauseAddrInUse || !errors.Is(as[1].Err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("attempts %+v, want a second with CauseAddrInUse and EADDRNOTAVAIL", as)
	}
}

// A policy that keeps choosing a busy port is shown CauseOther after
// maxAddrInUse immediate retries, so that it backs off.
func TestAddrInUseRetriesBounded(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	busy := freePorts(t, 1)[0]
	holdPort(t, busy)
	pol := &script{next: func(a policy.Attempt) policy.Decision {
		if a.Cause == policy.CauseOther {
			return policy.Decision{GiveUp: true}
		}
		return policy.Decision{Port: busy, Wait: time.Hour}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	waits := 0
	tr.wait = func(time.Duration) bool { waits++; return true }
	err := waitErr(t, tr)
	as, _ := pol.seen()
	if len(as) != maxAddrInUse+2 || waits != 1 {
		t.Errorf("%d attempts and %d waits (only the first may wait), want %d and 1", len(as), waits, maxAddrInUse+2)
	}
	for i, a := range as[1 : len(as)-1] {
		if a.Cause != policy.CauseAddrInUse {
			t.Fatalf("attempt %d: cause %v, want address in use", i+2, a.Cause)
		}
	}
	var de *DialError
	if !errors.As(err, &de) || de.Port != busy || de.Cause != policy.CauseAddrInUse {
		t.Errorf("Conn error %v, want the busy port's DialError", err)
	}
}

// Without CAP_NET_BIND_SERVICE, binding a reserved port fails with EACCES:
// the error says so and what to do, and the policy learns ReservedDenied.
func TestReservedPortDenied(t *testing.T) {
	testutil.CheckLeaks(t)
	const port = 700
	if !inChild(t) {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if err != nil {
			t.Skipf("cannot read ip_unprivileged_port_start: %v", err)
		}
		if start, _ := strconv.Atoi(strings.TrimSpace(string(b))); start <= port {
			t.Skipf("ip_unprivileged_port_start is %d: anyone may bind port %d, so EACCES cannot happen", start, port)
		}
		// As root, execve gives the child exactly the bounding set.
		runChild(t, "setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", "--")
		return
	}

	srv := newServer(t)
	pol := &script{next: func(a policy.Attempt) policy.Decision {
		if a.N == 1 {
			return policy.Decision{Port: port}
		}
		return policy.Decision{GiveUp: true}
	}}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol})
	err := waitErr(t, tr)
	t.Logf("Conn: %v", err)
	if !errors.Is(err, ErrReservedPort) {
		t.Fatalf("Conn error %v, want ErrReservedPort", err)
	}
	for _, want := range []string{"port 700", "CAP_NET_BIND_SERVICE", "root", "ephemeral", "insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	as, _ := pol.seen()
	if len(as) != 2 || !as[1].ReservedDenied || as[1].Cause != policy.CausePermission {
		t.Errorf("attempts %+v, want a second with ReservedDenied and CausePermission", as)
	}
	if st := tr.Stats(); st.FailedAttempts[policy.CausePermission] != 1 {
		t.Errorf("FailedAttempts %v, want one Permission", st.FailedAttempts)
	}
}

// majorTimeout is an error like package rpc's major timeout.
type majorTimeout struct{}

func (majorTimeout) Error() string      { return "server not responding" }
func (majorTimeout) MajorTimeout() bool { return true }

func TestClassify(t *testing.T) {
	testutil.CheckLeaks(t)
	op := func(op, syscallName string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(syscallName, errno)}
	}
	for _, tc := range []struct {
		err  error
		want policy.Cause
	}{
		{nil, policy.CauseOther},
		{io.EOF, policy.CauseClosed},
		{fmt.Errorf("reading reply: %w", io.ErrUnexpectedEOF), policy.CauseClosed},
		{op("read", "read", syscall.ECONNRESET), policy.CauseReset},
		{op("write", "write", syscall.EPIPE), policy.CauseReset},
		{op("read", "read", syscall.ECONNABORTED), policy.CauseReset},
		{op("read", "read", syscall.ETIMEDOUT), policy.CauseDeadPeer},
		{op("read", "read", syscall.EHOSTUNREACH), policy.CauseDeadPeer},
		{op("dial", "connect", syscall.ETIMEDOUT), policy.CauseDialTimeout},
		{op("dial", "connect", syscall.ECONNREFUSED), policy.CauseRefused},
		{op("dial", "connect", syscall.ENETUNREACH), policy.CauseUnreachable},
		{op("dial", "connect", syscall.EHOSTUNREACH), policy.CauseUnreachable},
		{op("dial", "bind", syscall.EADDRINUSE), policy.CauseAddrInUse},
		{op("dial", "connect", syscall.EADDRNOTAVAIL), policy.CauseAddrInUse},
		{op("dial", "bind", syscall.EACCES), policy.CausePermission},
		{op("dial", "connect", syscall.EPERM), policy.CausePermission},
		{&net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, policy.CauseDialTimeout},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, policy.CauseOther},
		{majorTimeout{}, policy.CauseMajorTimeout},
		{fmt.Errorf("call: %w", majorTimeout{}), policy.CauseMajorTimeout},
		{&DialError{Cause: policy.CauseRefused, Err: io.EOF}, policy.CauseRefused},
		{errors.New("something else"), policy.CauseOther},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestDialErrorMessage(t *testing.T) {
	testutil.CheckLeaks(t)
	refused := &DialError{Addr: "127.0.0.1:2049", Port: 800, Cause: policy.CauseRefused,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	if got, want := refused.Error(), "xprt: dial 127.0.0.1:2049 from port 800: connection refused: dial tcp: connect: connection refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(refused, ErrReservedPort) || !errors.Is(refused, syscall.ECONNREFUSED) {
		t.Errorf("refused dial: Is(ErrReservedPort) true or Is(ECONNREFUSED) false")
	}
	denied := &DialError{Addr: "127.0.0.1:2049", Port: 800, Cause: policy.CausePermission,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}}
	if !errors.Is(denied, ErrReservedPort) || !strings.Contains(denied.Error(), "CAP_NET_BIND_SERVICE") {
		t.Errorf("denied bind: %q is not ErrReservedPort with advice", denied)
	}
}
