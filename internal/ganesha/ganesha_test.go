package ganesha

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
	"github.com/gonfs/nfs/internal/testutil"
)

// TestMain checks for goroutine leaks once, after every test: each test's
// servers are stopped by its cleanups, and a leaked reaper or spawner
// names itself in its stack.
func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }

// ONC RPC program numbers (RFC 5531 registry).
const (
	progNFS   = 100003
	progMount = 100005
)

// nullCall sends an ONC RPC NULL call for prog/vers over c and fails the
// test unless the reply accepts it: proof that an RPC server serving
// that program, not just a listener, is at the other end.
func nullCall(t *testing.T, c net.Conn, xid, prog, vers uint32) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Record mark (last fragment, 40 bytes), xid, CALL, RPC version 2,
	// program, version, procedure 0, AUTH_NONE credential and verifier.
	call := []uint32{1<<31 | 40, xid, 0, 2, prog, vers, 0, 0, 0, 0, 0}
	buf := make([]byte, 0, 4*len(call))
	for _, w := range call {
		buf = binary.BigEndian.AppendUint32(buf, w)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatalf("NULL call to program %d v%d: %v", prog, vers, err)
	}
	// Record mark (last fragment, 24 bytes), xid, REPLY, MSG_ACCEPTED,
	// AUTH_NONE verifier, SUCCESS.
	want := []uint32{1<<31 | 24, xid, 1, 0, 0, 0, 0}
	reply := make([]byte, 4*len(want))
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("NULL reply from program %d v%d: %v", prog, vers, err)
	}
	for i, w := range want {
		if got := binary.BigEndian.Uint32(reply[4*i:]); got != w {
			t.Fatalf("NULL reply from program %d v%d: word %d is %#x, want %#x", prog, vers, i, got, w)
		}
	}
}

// dialNull connects to the server and checks it answers NFSv4 NULL.
func dialNull(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Dial(ctx)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	defer c.Close()
	nullCall(t, c, 1, progNFS, 4)
}

// processGone fails the test if /proc still lists pid.
func processGone(t *testing.T, pid int) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("process %d still exists (stat: %v)", pid, err)
	}
}

func TestLifecycle(t *testing.T) {
	s := Start(t, Config{})

	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID())); err != nil || strings.TrimSpace(string(comm)) != "ganesha.nfsd" {
		t.Fatalf("PID %d is %q (%v), want ganesha.nfsd", s.PID(), comm, err)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
		t.Fatalf("Addr() = %q, want %q", s.Addr(), want)
	}
	dialNull(t, s)

	// A connection open across the crash: once it is closed, the server
	// side of it lingers in TIME_WAIT on the server's port, and the
	// restarted server must bind that port all the same.
	held, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	nullCall(t, held, 2, progNFS, 4)

	pid1, epoch1 := s.PID(), s.Epoch()
	s.Kill()
	if s.Running() {
		t.Fatal("Running() = true after Kill")
	}
	processGone(t, pid1)
	if _, err := net.Dial("tcp", s.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Kill: %v, want connection refused", err)
	}
	if err := held.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read on a connection to the killed server returned %d bytes, no error", n)
	}
	held.Close()

	s.Restart(t)
	if !s.Running() || s.PID() == pid1 {
		t.Fatalf("after Restart: Running() = %v, PID %d (was %d)", s.Running(), s.PID(), pid1)
	}
	if s.Epoch() <= epoch1 {
		t.Fatalf("epoch after Restart = %d, want > %d", s.Epoch(), epoch1)
	}
	dialNull(t, s)

	// Ganesha prints its epoch in hex on every log line: the -E flag
	// took effect, for both starts, in the one log.
	logData, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []uint32{epoch1, s.Epoch()} {
		if !strings.Contains(string(logData), fmt.Sprintf("epoch %08x", e)) {
			t.Errorf("log %s has no line of epoch %08x", s.LogPath(), e)
		}
	}

	pid2 := s.PID()
	s.Stop()
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	processGone(t, pid2)
	if _, err := net.Dial("tcp", s.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Stop: %v, want connection refused", err)
	}
	s.Stop() // stopping a stopped server is a no-op
	s.Kill()
}

func TestTwoInstances(t *testing.T) {
	shared := t.TempDir()
	a := Start(t, Config{ExportDir: shared})
	// The second with a real grace period, which Ganesha must accept.
	b := Start(t, Config{ExportDir: shared, Lease: 2 * time.Second, Grace: 2 * time.Second})

	if a.Port() == b.Port() || a.StateDir() == b.StateDir() || a.PID() == b.PID() {
		t.Fatalf("instances share port (%d, %d), state dir (%s, %s) or PID (%d, %d)",
			a.Port(), b.Port(), a.StateDir(), b.StateDir(), a.PID(), b.PID())
	}
	if a.Epoch() == b.Epoch() {
		t.Fatalf("both instances have epoch %d", a.Epoch())
	}
	dialNull(t, a)
	dialNull(t, b)

	// Stopping one leaves the other serving.
	a.Kill()
	dialNull(t, b)
	a.Restart(t)
	if a.Epoch() <= b.Epoch() {
		t.Fatalf("restarted instance's epoch %d is not above the other's %d", a.Epoch(), b.Epoch())
	}
	dialNull(t, a)
}

// ourRPCBind returns the PID of the rpcbind this process started in ns
// and still counts users of, or 0.
func ourRPCBind(ns string) int {
	rpcbinds.mu.Lock()
	defer rpcbinds.mu.Unlock()
	if ref := rpcbinds.m[ns]; ref != nil {
		return ref.p.PID()
	}
	return 0
}

// TestNFSv3 serves NFSv3 on the host, with whatever rpcbind answers
// there: test binaries running in parallel may share one, so which one
// is used is not checked here (TestNetNS does, in a private namespace);
// only that an rpcbind this process started is gone with its server.
func TestNFSv3(t *testing.T) {
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	var started []int // rpcbinds this process started for the server

	t.Run("serve", func(t *testing.T) {
		s := Start(t, Config{NFSv3: true})
		if pid := ourRPCBind(""); pid != 0 {
			started = append(started, pid)
		}
		if s.MountPort() == 0 || s.MountPort() == s.Port() {
			t.Fatalf("MountPort() = %d, Port() = %d", s.MountPort(), s.Port())
		}
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		nullCall(t, c, 1, progNFS, 3)
		nullCall(t, c, 2, progNFS, 4)

		m, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.MountPort()))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		nullCall(t, m, 3, progMount, 3)

		s.Kill()
		s.Restart(t)
		if pid := ourRPCBind(""); pid != 0 {
			started = append(started, pid)
		}
		dialNull(t, s)
	})

	for _, pid := range started {
		processGone(t, pid)
	}
	if pid := ourRPCBind(""); pid != 0 {
		t.Fatalf("rpcbind %d still counted after its last server stopped", pid)
	}
}

// netnsSeq numbers the namespaces this process creates.
var netnsSeq atomic.Int32

// newNetNS creates a network namespace with lo up and an address that
// Ganesha accepts (see Config.NetNS), and deletes it after the test.
func newNetNS(t *testing.T) string {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(t, err)
	}
	name := fmt.Sprintf("gonfs-%d-%d", os.Getpid(), netnsSeq.Add(1))
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	ip("-n", name, "link", "set", "lo", "up")
	// Both ends of the pair stay inside the namespace.
	ip("-n", name, "link", "add", "gv0", "type", "veth", "peer", "name", "gv1")
	ip("-n", name, "addr", "add", "192.0.2.1/32", "dev", "gv0")
	ip("-n", name, "link", "set", "gv0", "up")
	ip("-n", name, "link", "set", "gv1", "up")
	return name
}

func TestNetNS(t *testing.T) {
	ns := newNetNS(t)
	var rpcbindPID int

	t.Run("own rpcbind", func(t *testing.T) {
		s := Start(t, Config{NetNS: ns, NFSv3: true})
		// The namespace is new: no rpcbind answered there before.
		if rpcbindPID = ourRPCBind(ns); rpcbindPID == 0 {
			t.Fatal("no rpcbind started in the new namespace")
		}

		// The process lives in the namespace.
		var nsStat, procStat syscall.Stat_t
		if err := syscall.Stat(netnsDir+"/"+ns, &nsStat); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", s.PID()), &procStat); err != nil {
			t.Fatal(err)
		}
		if nsStat.Dev != procStat.Dev || nsStat.Ino != procStat.Ino {
			t.Fatalf("ganesha.nfsd (pid %d) is not in network namespace %s", s.PID(), ns)
		}
		dialNull(t, s)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := dialIn(ctx, ns, fmt.Sprintf("127.0.0.1:%d", s.MountPort()))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		nullCall(t, m, 1, progMount, 3)

		pid := s.PID()
		s.Kill()
		processGone(t, pid)
		s.Restart(t)
		dialNull(t, s)
		if pid := ourRPCBind(ns); pid != rpcbindPID {
			t.Fatalf("rpcbind after Restart: pid %d, want %d", pid, rpcbindPID)
		}
	})
	// The rpcbind Start started went with the server.
	processGone(t, rpcbindPID)

	t.Run("foreign rpcbind", func(t *testing.T) {
		foreign, err := proc.Start(rpcbindCommand(ns))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := foreign.Stop(0); err != nil {
				t.Error(err)
			}
		}()
		for i := 0; ; i++ {
			ok, err := listening(foreign.PID(), []int{rpcbindPort})
			if ok {
				break
			}
			if err != nil || i == int(rpcbindReady/pollInterval) {
				t.Fatalf("rpcbind (pid %d) not listening: %v", foreign.PID(), err)
			}
			time.Sleep(pollInterval)
		}

		t.Run("server", func(t *testing.T) {
			s := Start(t, Config{NetNS: ns, NFSv3: true})
			if pid := ourRPCBind(ns); pid != 0 {
				t.Errorf("started rpcbind %d although %d was answering", pid, foreign.PID())
			}
			dialNull(t, s)
		})
		// An rpcbind Start found running is left running.
		if foreign.Exited() {
			t.Fatalf("rpcbind %d, started by someone else, exited with the server: %v", foreign.PID(), exitError(foreign))
		}
	})
}

// TestStartFailure checks that a server that cannot start, or starts
// without its export, is reported with Ganesha's own account from the
// log, and leaves no process behind.
func TestStartFailure(t *testing.T) {
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"port taken", Config{Port: taken.Addr().(*net.TCPAddr).Port}, []string{"did not start", "Error binding"}},
		{"bad export", Config{Extra: `EXPORT { Export_Id = 2; Path = "/nonexistent"; Pseudo = "/bad"; FSAL { Name = VFS; } }`},
			[]string{"configuration errors", "Could not create export"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := prepare(t, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			err = s.startLocked()
			s.mu.Unlock()
			if err == nil {
				t.Fatal("start succeeded")
			}
			for _, w := range append(tc.want, s.LogPath()) {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("start error lacks %q:\n%s", w, err)
				}
			}
			if s.Running() {
				t.Fatal("Running() = true after a failed start")
			}
			processGone(t, s.PID())
		})
	}
}

// A program (make demo, the benchmark runner) starts a server with a
// Program instead of a test; Close stops it and removes its temporary
// directories.
func TestProgram(t *testing.T) {
	var log strings.Builder
	p := NewProgram("prog", &log)
	s := Start(p, Config{})
	dialNull(t, s)
	pid, state, export := s.PID(), s.StateDir(), s.ExportDir()
	p.Close()
	processGone(t, pid)
	for _, dir := range []string{state, export} {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists after Close (stat: %v)", dir, err)
		}
	}
	if p.Failed() {
		t.Errorf("program marked failed: %s", log.String())
	}
	p.Close() // a second Close is a no-op
}
