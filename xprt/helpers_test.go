package xprt

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/policy"
)

// testTimeout bounds every wait in these tests; reaching it is a failure.
const testTimeout = 20 * time.Second

// server is a loopback TCP listener whose accepted connections arrive on
// conns.
type server struct {
	ln    *net.TCPListener
	conns chan *net.TCPConn
	addr  string
	port  int
}

// newServer listens on 127.0.0.1 and accepts until the test ends.
func newServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, conns: make(chan *net.TCPConn, 16), addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			select {
			case s.conns <- c:
			default:
				c.Close() // more than a test can use
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for {
			select {
			case c := <-s.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return s
}

// accept returns the next accepted connection; the test closes it.
func (s *server) accept(t *testing.T) *net.TCPConn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(testTimeout):
		t.Fatal("server accepted nothing")
		return nil
	}
}

// remotePort is the client's port as the server sees it.
func remotePort(c net.Conn) int { return c.RemoteAddr().(*net.TCPAddr).Port }

// newTransport returns a Transport for addr that the test closes.
func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// waitReady calls Conn until it returns a connection.
func waitReady(t *testing.T, tr *Transport) (net.Conn, uint64) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for range 10000 {
		c, gen, changed, err := tr.Conn()
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		if c != nil {
			return c, gen
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no connection; state %v", tr.State())
		}
	}
	t.Fatal("Conn: too many state changes")
	return nil, 0
}

// waitErr calls Conn until it returns an error.
func waitErr(t *testing.T, tr *Transport) error {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for range 10000 {
		c, _, changed, err := tr.Conn()
		if err != nil {
			return err
		}
		if c != nil {
			t.Fatal("Conn connected; want an error")
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no error; state %v", tr.State())
		}
	}
	t.Fatal("Conn: too many state changes")
	return nil
}

// script is a Policy driven by a test function; it records every Attempt
// and counts Reset calls. Its methods run on the supervisor goroutine, the
// accessors on the test's.
type script struct {
	mu       sync.Mutex
	next     func(a policy.Attempt) policy.Decision
	attempts []policy.Attempt
	resets   int
}

func (s *script) Next(a policy.Attempt) policy.Decision {
	s.mu.Lock()
	s.attempts = append(s.attempts, a)
	s.mu.Unlock()
	return s.next(a)
}

func (s *script) Reset() {
	s.mu.Lock()
	s.resets++
	s.mu.Unlock()
}

func (s *script) seen() ([]policy.Attempt, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]policy.Attempt(nil), s.attempts...), s.resets
}

// ports returns a policy that dials from each port in turn, one per call,
// and then gives up.
func ports(list ...int) *script {
	calls := 0
	return &script{next: func(policy.Attempt) policy.Decision {
		calls++
		if calls > len(list) {
			return policy.Decision{GiveUp: true}
		}
		return policy.Decision{Port: list[calls-1]}
	}}
}

// tcpEntry is one line of /proc/net/tcp or tcp6.
type tcpEntry struct {
	local, remote int // ports
	state         string
}

// tcpTable reads the kernel's TCP sockets of this network namespace.
func tcpTable(t *testing.T) []tcpEntry {
	t.Helper()
	var out []tcpEntry
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if name == "/proc/net/tcp6" {
				continue // no IPv6
			}
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 {
				continue
			}
			out = append(out, tcpEntry{local: hexPort(fields[1]), remote: hexPort(fields[2]), state: fields[3]})
		}
		f.Close()
	}
	return out
}

// hexPort parses the port of "0100007F:02BC".
func hexPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.ParseUint(addr[i+1:], 16, 16)
	return int(p)
}

// timeWait reports whether the 4-tuple between local ports a and b (either
// side) is in TIME_WAIT (state 06).
func timeWait(t *testing.T, a, b int) bool {
	for _, e := range tcpTable(t) {
		if e.state == "06" && (e.local == a && e.remote == b || e.local == b && e.remote == a) {
			return true
		}
	}
	return false
}

// freePorts returns n distinct reserved ports that no socket uses now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	used := map[int]bool{}
	for _, e := range tcpTable(t) {
		used[e.local] = true
	}
	var out []int
	for range 2000 {
		p := 600 + rand.IntN(400)
		if used[p] {
			continue
		}
		used[p] = true
		out = append(out, p)
		if len(out) == n {
			return out
		}
	}
	t.Fatal("no free reserved ports")
	return nil
}

// childEnv names the test a re-executed test binary is to run for real.
const childEnv = "XPRT_TEST_CHILD"

// inChild reports whether this process is the re-executed child of t.
func inChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// runChild re-executes the test binary, prefixed by wrapper (for example
// setpriv or unshare), to run only t, and fails t unless it passes there.
func runChild(t *testing.T, wrapper ...string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := slices.Concat(wrapper[1:], []string{self, "-test.run=^" + t.Name() + "$", "-test.v", "-test.count=1"})
	cmd := exec.Command(wrapper[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child %v: %v\n%s", wrapper, err, out)
	}
}

// sockopt reads an integer socket option of a connection Conn returned.
func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.(*conn).tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(fmt.Errorf("getsockopt %d/%d: %w", level, opt, gerr))
	}
	return v
}

// holdPort listens on port for the rest of the test, so that binding it
// fails with EADDRINUSE.
func holdPort(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp4", ":"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}
