// Package ganesha runs a real NFS-Ganesha server for tests: one
// ganesha.nfsd process per Server, with a configuration generated from a
// Config, stopped and reaped by PID when the test ends.
//
//	srv := ganesha.Start(t, ganesha.Config{})
//	conn, err := net.Dial("tcp", srv.Addr()) // NFSv4 at srv.Pseudo()
//
// Ganesha is optional unless the environment sets GONFS_REQUIRE_GANESHA=1
// (make test and CI do): without it, a missing Ganesha or a server that
// does not start skips the test; with it, the test fails.
//
// What this package found out about Ganesha 4.3 (Debian bookworm):
//
//   - It starts as any user, but its VFS FSAL opens files with
//     open_by_handle_at(2), which needs CAP_DAC_READ_SEARCH: in practice
//     it needs root, and Available says so.
//   - Clients may use any source port: PrivilegedPort, the export option
//     that would demand a reserved one (<1024), defaults to false. The
//     generated configuration says so explicitly.
//   - It binds with SO_REUSEADDR: a restart right after SIGKILL gets the
//     same port even with connections in TIME_WAIT. It exits at once if
//     the port is taken.
//   - It needs no system directory when given its pid file, log, recovery
//     root and Kerberos credential cache; all four live in StateDir, so it
//     never creates /run/ganesha or /var/lib/nfs/ganesha.
//   - DBUS and krb5 CRIT lines in the log are expected: there is no
//     system bus, and without Config.Kerberos it still looks for
//     /etc/krb5.keytab, which is not there. With Config.Kerberos and a
//     keytab holding nfs/localhost it logs no krb5 line at all.
//   - It keeps serving when an export cannot be created (its directory
//     is missing, say), logging CONFIG CRIT lines; Start treats those as
//     a failed start.
//   - NFSv4 alone needs no rpcbind (registration fails, harmlessly);
//     NFSv3 refuses to start without one.
//   - In a network namespace with only lo, Bind_addr 127.0.0.1 fails to
//     resolve (glibc's AI_ADDRCONFIG ignores loopback addresses); the
//     namespace needs an IPv4 address on another interface, which may be
//     a veth pair kept inside it.
package ganesha

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

// RequireEnv is the environment variable that, set to "1", turns a
// missing or failing Ganesha into a test failure instead of a skip.
const RequireEnv = "GONFS_REQUIRE_GANESHA"

const (
	// pollInterval is how often readiness is polled.
	pollInterval = 50 * time.Millisecond
	// readyTimeout bounds how long a server may take to accept
	// connections; it usually does within a second.
	readyTimeout = 20 * time.Second
	// dialTimeout bounds one readiness probe.
	dialTimeout = time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// tailLines is how many lines of the log a failure report shows.
	tailLines = 40
)

// A Server is a running (or stopped) NFS-Ganesha. Its methods are safe
// for concurrent use; Restart holds up the others until the server
// accepts connections again.
type Server struct {
	tb      TB
	cfg     Config // resolved: defaults applied, ports chosen; read-only
	binary  string // path of ganesha.nfsd
	mu      sync.Mutex
	proc    *proc.Process // the latest process; guarded by mu
	epoch   uint32        // proc's boot epoch; guarded by mu
	release func()        // gives back an NFSv3 server's rpcbind; guarded by mu
}

// Available reports why this machine cannot run the servers this package
// starts, or nil if it can: ganesha.nfsd and its VFS FSAL must be
// installed, and the test must run as root.
func Available() error {
	if _, err := exec.LookPath("ganesha.nfsd"); err != nil {
		return fmt.Errorf("ganesha: ganesha.nfsd not found (Debian package nfs-ganesha): %w", err)
	}
	if !vfsInstalled() {
		return errors.New("ganesha: the VFS FSAL libfsalvfs.so is not installed (Debian package nfs-ganesha-vfs)")
	}
	if os.Geteuid() != 0 {
		return errors.New("ganesha: must run as root (the VFS FSAL opens files by handle, which needs CAP_DAC_READ_SEARCH)")
	}
	return nil
}

// vfsInstalled looks for the VFS FSAL in Debian's multiarch plugin
// directory and in the upstream defaults.
func vfsInstalled() bool {
	for _, pattern := range []string{
		"/usr/lib/*/ganesha/libfsalvfs.so",
		"/usr/lib64/ganesha/libfsalvfs.so",
		"/usr/lib/ganesha/libfsalvfs.so",
		"/usr/local/lib*/ganesha/libfsalvfs.so",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// Start starts a Ganesha described by cfg and returns once it accepts TCP
// connections on Addr (and, with NFSv3, on MountPort). A cleanup
// registered on tb stops it and, if the test failed, logs the end of its
// log. An invalid cfg fails the test; a machine without Ganesha, or a
// server that does not start, skips it unless RequireEnv is "1".
func Start(tb TB, cfg Config) *Server {
	tb.Helper()
	if err := Available(); err != nil {
		unavailable(tb, err)
	}
	if cfg.NetNS != "" {
		if _, err := exec.LookPath("ip"); err != nil {
			unavailable(tb, fmt.Errorf("ganesha: NetNS needs ip (Debian package iproute2): %w", err))
		}
	}
	s, err := prepare(tb, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	err = s.startLocked()
	s.mu.Unlock()
	if err != nil {
		unavailable(tb, err)
	}
	return s
}

// prepare resolves cfg, writes the configuration file and registers the
// cleanup of a Server that has not started yet.
func prepare(tb TB, cfg Config) (*Server, error) {
	binary, err := exec.LookPath("ganesha.nfsd")
	if err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	c, err := cfg.resolve(tb)
	if err != nil {
		return nil, err
	}
	s := &Server{tb: tb, cfg: c, binary: binary}
	if err := os.WriteFile(s.confPath(), []byte(c.render(tb.Name())), 0o644); err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	tb.Cleanup(s.cleanup)
	return s, nil
}

// unavailable skips the test, or fails it if RequireEnv says so.
func unavailable(tb TB, err error) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%v", err)
	}
	tb.Skipf("%v\nskipped: these tests need NFS-Ganesha (Debian packages nfs-ganesha, nfs-ganesha-vfs) and root; "+
		"scripts/install-deps.sh installs it, and `make test` runs that and sets %s=1 so that this is a failure",
		err, RequireEnv)
}

// Restart starts the server again after Kill or Stop (stopping it first,
// with SIGTERM, if it still runs): same port, ExportDir and StateDir, so
// clients can reclaim state within Grace, and a new, larger boot epoch,
// so their old client IDs and stateids are stale. It fails tb if the
// server does not come back, whatever RequireEnv says.
func (s *Server) Restart(tb TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.proc.Stop(stopGrace); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.startLocked(); err != nil {
		tb.Fatal(err)
	}
}

// Kill sends SIGKILL, as a crash would, and waits until the process has
// been reaped. It does nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.proc.Stop(0); err != nil {
			s.tb.Error(err)
		}
	}
}

// Stop shuts the server down with SIGTERM, sends SIGKILL if it has not
// exited 10 s later, and waits until the process has been reaped. It does
// nothing if the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.proc.Stop(stopGrace); err != nil {
			s.tb.Error(err)
		}
	}
}

// Pause stops the server with SIGSTOP: it keeps its connections, and the
// kernel keeps accepting and acknowledging what clients send, but nothing
// is answered — a server that went silent. Resume undoes it; a cleanup
// registered on tb resumes the server before it is stopped, so that it can
// shut down cleanly. It returns once every thread of the server has
// stopped: a thread busy when the signal came could otherwise still answer
// a request sent after Pause returned.
func (s *Server) Pause(tb TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Signal(syscall.SIGSTOP)
	tb.Cleanup(s.Resume)
	if err := proc.WaitStopped(s.proc.PID(), 10*time.Second); err != nil {
		tb.Fatalf("ganesha: pause: %v", err)
	}
}

// Resume continues a server stopped by Pause (SIGCONT). It does nothing to
// a server that is not paused.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Signal(syscall.SIGCONT)
	}
}

// Running reports whether the server's process is alive. A process that
// has exited by itself (a crash) is not.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.Exited()
}

// PID returns the process ID of the latest ganesha.nfsd, running or not.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// Epoch returns the boot epoch (ganesha.nfsd -E) of the latest start.
func (s *Server) Epoch() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Addr returns the NFS address, "BindAddr:Port". With NetNS it is
// reachable only from inside that namespace (see Dial).
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.BindAddr, strconv.Itoa(s.cfg.Port))
}

// Port returns the NFS TCP port.
func (s *Server) Port() int { return s.cfg.Port }

// MountPort returns the MOUNT TCP port of an NFSv3 server, 0 otherwise.
func (s *Server) MountPort() int { return s.cfg.MountPort }

// Pseudo returns the export's NFSv4 pseudo path (also its NFSv3 mount path).
func (s *Server) Pseudo() string { return s.cfg.Pseudo }

// ExportDir returns the exported directory. Tests may create files in it
// directly; the server does not cache their attributes.
func (s *Server) ExportDir() string { return s.cfg.ExportDir }

// StateDir returns the directory holding the server's configuration,
// log, pid file and recovery records.
func (s *Server) StateDir() string { return s.cfg.StateDir }

// LogPath returns the path of Ganesha's log. Every start appends to it.
func (s *Server) LogPath() string { return filepath.Join(s.cfg.StateDir, "ganesha.log") }

// Dial opens a TCP connection to Addr, from inside NetNS if it is set.
func (s *Server) Dial(ctx context.Context) (net.Conn, error) {
	return dialIn(ctx, s.cfg.NetNS, s.Addr())
}

func (s *Server) confPath() string { return filepath.Join(s.cfg.StateDir, "ganesha.conf") }
func (s *Server) pidPath() string  { return filepath.Join(s.cfg.StateDir, "ganesha.pid") }

// outPath is where the process's stdout and stderr go (ip, sh and
// ganesha.nfsd write there before the log is open), after a header line
// with the command of each start.
func (s *Server) outPath() string { return filepath.Join(s.cfg.StateDir, "ganesha.out") }

// startLocked starts a new process and waits until it accepts
// connections. s.mu must be held and no process running.
func (s *Server) startLocked() error {
	if s.cfg.NFSv3 {
		// No rpcbind may vanish while this server registers with it.
		unlock, err := lockRPCBind()
		if err != nil {
			return err
		}
		// Acquire before releasing the previous hold, so that an
		// rpcbind this process started is kept, and one that has
		// vanished since is replaced. Release after unlocking (the
		// defers run in reverse), since it may take the lock itself.
		release, err := acquireRPCBind(s.cfg.NetNS)
		if err != nil {
			unlock()
			return err
		}
		if old := s.release; old != nil {
			defer old()
		}
		s.release = release
		defer unlock()
	}

	logStart := int64(0) // where this start's lines begin in the log
	if fi, err := os.Stat(s.LogPath()); err == nil {
		logStart = fi.Size()
	}
	epoch := nextEpoch()
	cmd := s.command(epoch)
	out, err := os.OpenFile(s.outPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("ganesha: %w", err)
	}
	fmt.Fprintf(out, "=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(cmd)
	out.Close() // the child has its own descriptor
	if err != nil {
		return err
	}
	s.proc, s.epoch = p, epoch

	err = s.waitReady(p)
	if err == nil {
		err = configErrors(s.LogPath(), logStart)
	}
	if err != nil {
		if stopErr := p.Stop(0); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return fmt.Errorf("%w\n%s", err, s.tails())
	}
	return nil
}

// command returns the command line of one start.
func (s *Server) command(epoch uint32) *exec.Cmd {
	args := []string{
		"-F", // foreground: it stays our child
		"-f", s.confPath(),
		"-L", s.LogPath(),
		"-p", s.pidPath(),
		"-N", "NIV_EVENT",
		"-E", strconv.FormatUint(uint64(epoch), 10),
	}
	var cmd *exec.Cmd
	if s.cfg.NetNS == "" {
		cmd = exec.Command(s.binary, args...)
	} else {
		// ip and sh exec in turn, so the PID is ganesha.nfsd's. The private
		// /run keeps instances in different namespaces apart.
		script := `mount -t tmpfs ganesha-run /run && exec "$0" "$@"`
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.cfg.NetNS, "sh", "-c", script, s.binary}, args...)...)
	}
	if k := s.cfg.Kerberos; k != nil {
		// The realm's krb5.conf, never /etc/krb5.conf; the keytab also for
		// code that ignores KeytabPath; the replay cache in StateDir, not
		// the machine's shared /var/tmp.
		cmd.Env = append(os.Environ(),
			"KRB5_CONFIG="+k.Krb5Conf,
			"KRB5_KTNAME=FILE:"+k.Keytab,
			"KRB5RCACHEDIR="+s.cfg.StateDir,
		)
	}
	return cmd
}

// waitReady polls until the process listens on every port it serves and
// accepts a TCP connection on each, until it exits, or until
// readyTimeout passes.
func (s *Server) waitReady(p *proc.Process) error {
	ports := []int{s.cfg.Port}
	if s.cfg.NFSv3 {
		ports = append(ports, s.cfg.MountPort)
	}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastErr error
	for range readyTimeout / pollInterval {
		if lastErr = s.probe(p, ports); lastErr == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("ganesha: server on %s did not start: %w", s.Addr(), exitError(p))
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-p.Done():
		case <-tick.C:
		}
	}
	return fmt.Errorf("ganesha: server (pid %d) not ready after %v: %w", p.PID(), readyTimeout, lastErr)
}

// probe returns nil if p listens on ports and accepts connections there.
func (s *Server) probe(p *proc.Process, ports []int) error {
	ok, err := listening(p.PID(), ports)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("ganesha: not listening on ports %v", ports)
	}
	for _, port := range ports {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		c, err := dialIn(ctx, s.cfg.NetNS, net.JoinHostPort(s.cfg.BindAddr, strconv.Itoa(port)))
		cancel()
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// configErrors returns an error quoting the configuration errors Ganesha
// logged after offset, nil if it logged none. Ganesha serves on despite
// some errors (an export whose directory it cannot use is left out),
// which would otherwise only show as puzzling NFS errors in the test.
func configErrors(logPath string, offset int64) error {
	const maxQuoted = 10
	f, err := os.Open(logPath)
	if err != nil {
		return fmt.Errorf("ganesha: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("ganesha: %w", err)
	}
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && len(bad) < maxQuoted {
		if line := sc.Text(); strings.Contains(line, ":CONFIG :CRIT :") || strings.Contains(line, ":CONFIG :MAJ :") {
			bad = append(bad, line)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ganesha: read %s: %w", logPath, err)
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("ganesha: configuration errors in %s:\n%s", logPath, strings.Join(bad, "\n"))
}

// cleanup stops the server at the end of the test and gives back its
// rpcbind. If the test failed it first logs the end of Ganesha's log,
// before shutdown adds its own lines.
func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tb.Failed() {
		s.tb.Logf("ganesha: server on %s (%s):\n%s", s.Addr(), s.cfg.StateDir, s.tails())
	}
	if s.proc != nil {
		if err := s.proc.Stop(stopGrace); err != nil {
			s.tb.Error(err)
		}
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// tails returns the last lines of the process output and of the log.
func (s *Server) tails() string {
	var b strings.Builder
	for _, path := range []string{s.outPath(), s.LogPath()} {
		fmt.Fprintf(&b, "--- last lines of %s:\n%s", path, proc.Tail(path, tailLines))
	}
	return b.String()
}

// exitError describes how the process p ended, which it should not have.
func exitError(p *proc.Process) error {
	if err := p.Wait(); err != nil {
		return fmt.Errorf("ganesha: process %d: %w", p.PID(), err)
	}
	return fmt.Errorf("ganesha: process %d exited with status 0", p.PID())
}

// epochs hands out Ganesha boot epochs (ganesha.nfsd -E). Ganesha puts its
// epoch in every client ID and stateid, and by default uses its start time
// in seconds, so two servers started in the same second could mistake one
// another's state. Each start in this process gets a distinct epoch, at
// least the current Unix time and larger than any handed out before.
var epochs struct {
	mu   sync.Mutex
	last uint32
}

func nextEpoch() uint32 {
	epochs.mu.Lock()
	defer epochs.mu.Unlock()
	e := max(uint32(time.Now().Unix()), epochs.last+1)
	epochs.last = e
	return e
}
