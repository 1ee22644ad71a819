package knfsd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

// RequireEnv is the environment variable that, set to "1", turns a
// machine that cannot run knfsd (or a server that does not start) into a
// test failure instead of a skip. It is the one packages ganesha and
// netlab read, so make test requires all of them.
const RequireEnv = "GONFS_REQUIRE_GANESHA"

const (
	// bootTimeout bounds a boot to a listening nfsd: about 2 s on an idle
	// machine, several times that on a busy one.
	bootTimeout = 90 * time.Second
	// restartTimeout bounds RestartNFSD and SetVersions.
	restartTimeout = 60 * time.Second
	// tailLines is how many lines of the console log a failure shows.
	tailLines = 40
	// ExportPath is where the exported file system is mounted in the
	// guest; Exec scripts find the export's files there.
	ExportPath = "/export"
)

// AllVersions are the NFSv4 minor versions knfsd serves by default.
var AllVersions = []string{"4.0", "4.1", "4.2"}

// Config describes a server. Its zero value is a server of NFSv4.0, 4.1
// and 4.2 with a 10 s lease and grace period and one `secure` export,
// the NFSv4 root.
type Config struct {
	// Versions are the NFSv4 minor versions served, of "4.0", "4.1",
	// "4.2"; default all three. NFSv2 and v3 are never served.
	Versions []string
	// Lease and Grace are nfsd's NFSv4 lease time and grace period;
	// default, and minimum, 10 s each.
	Lease, Grace time.Duration
	// Threads is the number of nfsd threads; default 8.
	Threads int
	// Insecure exports with `insecure`: clients may use any source
	// port. By default the export is `secure`, and a client on an
	// unreserved port gets NFS4ERR_PERM (the forwarder behind Addr keeps
	// a reserved port reserved).
	Insecure bool
	// ExportOptions are more export options, appended to
	// "rw,fsid=0,no_root_squash,sync,no_subtree_check" (later options
	// win: "async" makes writes asynchronous).
	ExportOptions []string
	// DiskSize is the size of the exported ext4 file system in bytes;
	// default 4 GiB (a sparse file: it takes what is written).
	DiskSize int64
	// MemoryMiB is the guest's memory; default 512.
	MemoryMiB int
	// TLS, if set, makes the server offer RPC-over-TLS and export
	// TLSExport, MTLSExport and AnyTLSExport (see tls.go); the guest then
	// boots the kernel built for mutual TLS (mtlskernel.go).
	TLS *TLS
	// Kerberos, if set, makes the server accept RPCSEC_GSS with
	// Kerberos V5 and export Krb5Export, Krb5iExport and Krb5pExport
	// (see kerberos.go). It cannot be combined with TLS.
	Kerberos *Kerberos
}

func (c Config) resolve() (Config, error) {
	if len(c.Versions) == 0 {
		c.Versions = AllVersions
	}
	for _, v := range c.Versions {
		if !slices.Contains(AllVersions, v) {
			return c, fmt.Errorf("knfsd: version %q: want one of %v", v, AllVersions)
		}
	}
	if c.Lease == 0 {
		c.Lease = 10 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = 10 * time.Second
	}
	if c.Lease < 10*time.Second || c.Grace < 10*time.Second || c.Lease%time.Second != 0 || c.Grace%time.Second != 0 {
		return c, fmt.Errorf("knfsd: lease %v and grace %v: want whole seconds, at least 10 s (nfsd's minimum)", c.Lease, c.Grace)
	}
	if c.Threads == 0 {
		c.Threads = 8
	}
	if c.DiskSize == 0 {
		c.DiskSize = 4 << 30
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 512
	}
	if err := c.checkKerberos(); err != nil {
		return c, err
	}
	for _, o := range c.ExportOptions {
		if o == "" || strings.ContainsAny(o, " \t\n(),'\"\\$`") {
			return c, fmt.Errorf("knfsd: export option %q", o)
		}
	}
	return c, nil
}

// exportOptions returns the export's option list.
func (c Config) exportOptions() string {
	opts := []string{"rw", "fsid=0", "no_root_squash", "sync", "no_subtree_check"}
	if c.Insecure {
		opts = append(opts, "insecure")
	}
	return strings.Join(append(opts, c.ExportOptions...), ",")
}

// A Server is a Linux kernel NFS server in a user-mode Linux guest. Its
// methods are safe for concurrent use.
type Server struct {
	cfg      Config // resolved; Versions may change (under mu)
	stateDir string // host directory of the guest's init.sh, disks and logs
	ns       string // network namespace of the guest
	fwd      *forwarder
	guest    *proc.Process // the guest's host process (ip netns exec, then unshare, then linux)
	ctl      *control
	removeMe bool   // stateDir is ours to remove (not a t.TempDir)
	kernel   string // the UML kernel binary (the cached guest's)
	host     string // the guest's host name: nfsd's server owner and scope

	mu       sync.Mutex // serializes RestartNFSD, SetVersions and Stop
	stopped  bool       // guarded by mu
	stopErr  error      // guarded by mu
	bootTime time.Duration
}

// Available reports why this machine cannot run the servers this package
// starts, or nil if it can. A missing image is not a reason: the first
// Start builds it (which needs debootstrap and mkfs.ext4).
func Available() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("knfsd: must run as root (network namespaces, tap devices)"))
	}
	for _, tool := range [][2]string{{"ip", "iproute2"}, {"unshare", "util-linux"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			errs = append(errs, fmt.Errorf("knfsd: %s not found (Debian package %s)", tool[0], tool[1]))
		}
	}
	if !cachedGuest().built() {
		for _, tool := range [][2]string{{"debootstrap", "debootstrap"}, {"mkfs.ext4", "e2fsprogs"}, {"chroot", "coreutils"}} {
			if _, err := exec.LookPath(tool[0]); err != nil {
				errs = append(errs, fmt.Errorf("knfsd: no cached guest and %s not found to build one (Debian package %s)", tool[0], tool[1]))
			}
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		errs = append(errs, fmt.Errorf("knfsd: no tun/tap device: %w", err))
	}
	return errors.Join(errs...)
}

// unavailable skips the test, or fails it if RequireEnv says so.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%v", err)
	}
	tb.Skipf("%v\nskipped: these tests need debootstrap, e2fsprogs and root (to build the guest once) and /dev/net/tun; "+
		"scripts/install-deps.sh installs them, and `make test` sets %s=1 so that this is a failure", err, RequireEnv)
}

// Start boots a server described by cfg and returns once nfsd answers an
// NFSv4 NULL call through Addr. A cleanup registered on tb stops it; if
// the test failed it first logs the end of the guest's console. The
// first Start on a machine builds the guest image (minutes; see
// CacheDir). An invalid cfg fails the test; a machine that cannot run
// knfsd, or a server that does not start, skips it unless RequireEnv is
// "1".
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	c, err := cfg.resolve()
	if err != nil {
		tb.Fatal(err)
	}
	if err := Available(); err != nil {
		unavailable(tb, err)
	}
	s, err := start(c, tb.TempDir(), false, func(format string, args ...any) {
		tb.Logf(format, args...)
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	})
	if s != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("knfsd: server %s (%s):\n%s", s.Addr(), s.stateDir, s.tails())
			}
			t0 := time.Now()
			if err := s.Stop(); err != nil {
				tb.Error(err)
			}
			tb.Logf("knfsd: server %s stopped in %v", s.ns, time.Since(t0).Round(time.Millisecond))
		})
	}
	if err != nil {
		unavailable(tb, err)
	}
	return s
}

// Boot starts a server described by cfg for a program outside a test (the
// benchmark runner) and returns once nfsd answers an NFSv4 NULL call
// through Addr. The caller must Stop it, which kills the guest by PID and
// removes StateDir; a program killed outright takes the guest with it
// (parent-death signals), and the next Start or Boot in any process
// removes what it left. A machine that cannot run knfsd, or a server that
// does not start, is an error, which includes the end of the guest's
// console if it got that far. logf receives the progress lines Start
// logs (a guest build, which takes minutes, among them).
func Boot(cfg Config, logf func(format string, args ...any)) (*Server, error) {
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	// Named as a Shared server's StateDir, so that sweepStateDirs
	// removes it if this process is killed outright.
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", sharedDirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	s, err := start(c, dir, true, logf)
	if err != nil {
		if s == nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		err = fmt.Errorf("%w\n%s", err, s.tails())
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// hostSeq numbers the servers of this process, for their host names.
var hostSeq atomic.Uint64

// shared is the server Shared hands out.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns a server with the default Config shared by every test
// of the process that calls it, started by the first. Tests must not
// reconfigure (SetVersions) or stop it, and should use file names of
// their own. A test may restart its nfsd threads (RestartNFSD, or
// StopNFSD and StartNFSD) as a crash, if no other test uses the server
// meanwhile (tests that are not parallel): the restart costs later tests
// nothing but a grace period. TestMain should call StopShared after m.Run; a test binary that
// exits without doing so leaves the guest to its parent-death signal and
// the namespace to the next run's sweep. It skips or fails tb as Start
// does.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Boot(Config{}, func(format string, args ...any) {
			tb.Logf(format, args...)
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		})
	}
	if shared.err != nil {
		unavailable(tb, shared.err)
	}
	return shared.srv
}

// sharedDirPrefix starts the name of a Shared or Boot server's StateDir in the
// temporary directory, followed by its process's PID, so that
// sweepStateDirs can remove those of processes that are gone.
const sharedDirPrefix = "gonfs-knfsd-"

// sweepStateDirs removes the state directories Shared and Boot servers of
// processes killed outright left behind (their disks can be large).
func sweepStateDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), sharedDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// StopShared stops the server Shared started, if any.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return nil
	}
	err := shared.srv.Stop()
	shared.srv = nil
	return err
}

// start boots a server with its state in dir. On error it returns the
// server as far as it got, for its logs and Stop, or nil.
func start(cfg Config, dir string, removeDir bool, logf func(string, ...any)) (*Server, error) {
	t0 := time.Now()
	s := &Server{cfg: cfg, stateDir: dir, removeMe: removeDir,
		host: fmt.Sprintf("gonfs-knfsd-%d-%d", os.Getpid(), hostSeq.Add(1))}
	g, err := ensureGuest(logf)
	if err != nil {
		return nil, err
	}
	s.kernel = g.kernel()
	if cfg.TLS != nil {
		s.kernel = g.mtlsKernel() // the only one that admits mutual TLS clients (mtlskernel.go)
	}
	if cfg.TLS != nil {
		if err := writeTLSFiles(dir, cfg.TLS); err != nil {
			return nil, err
		}
	}
	if cfg.Kerberos != nil {
		if err := writeKerberosFiles(dir, cfg.Kerberos); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "init.sh"), []byte(s.initScript()), 0o644); err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	if err := makeExportDisk(s.diskPath(), cfg.DiskSize); err != nil {
		return nil, err
	}
	s.ns, err = newNamespace()
	if err != nil {
		if s.ns != "" {
			err = errors.Join(err, deleteNamespace(s.ns))
		}
		return nil, err
	}
	// From here on Stop undoes what exists.
	if err := s.boot(g.image()); err != nil {
		return s, err
	}
	s.fwd, err = newForwarder("127.0.0.1:0", s.ns, s.GuestAddr())
	if err != nil {
		return s, err
	}
	s.bootTime = time.Since(t0)
	return s, nil
}

// makeExportDisk creates a sparse file of size bytes holding an empty
// ext4 file system.
func makeExportDisk(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	return command("mkfs.ext4", "-q", "-F", "-L", "export", "-E", "lazy_itable_init=1,lazy_journal_init=1", path)
}

func (s *Server) diskPath() string    { return filepath.Join(s.stateDir, "export.ext4") }
func (s *Server) cowPath() string     { return filepath.Join(s.stateDir, "root.cow") }
func (s *Server) consolePath() string { return filepath.Join(s.stateDir, "console.log") }

// boot starts the guest and waits until nfsd answers.
func (s *Server) boot(img string) error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return fmt.Errorf("knfsd: %w", err)
	}
	console, err := os.OpenFile(s.consolePath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return fmt.Errorf("knfsd: %w", err)
	}
	args := []string{
		"netns", "exec", s.ns,
		// A PID namespace of its own: when unshare dies (SIGKILL, or
		// its parent-death signal), its child, the UML kernel, gets
		// SIGKILL (--kill-child) and the kernel kills every other UML
		// process with it. UML's helper processes would survive the
		// kernel process alone, and UML calls setsid, so a process
		// group kill would miss them.
		"unshare", "--pid", "--fork", "--kill-child",
	}
	args = append(args, s.kernel,
		"hostfs="+s.stateDir,
		"ubd0="+s.cowPath()+","+img,
		"ubd1="+s.diskPath(),
		"root=/dev/ubda", "rw",
		"mem="+strconv.Itoa(s.cfg.MemoryMiB)+"M",
		"vec0:transport=tap,ifname="+tapName+",gro=1",
		"con=null", "ssl=null", "con0=null,fd:1", "ssl0=fd:3,fd:4",
		"init=/sbin/gonfs-init",
		"quiet",
	)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.ExtraFiles = []*os.File{inR, outW} // fds 3 and 4
	cmd.Env = append(os.Environ(), "TMPDIR="+s.stateDir)
	fmt.Fprintf(console, "=== %s ip %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	p, err := proc.Start(cmd)
	// The children have their own copies.
	inR.Close()
	outW.Close()
	console.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return err
	}
	s.guest = p
	s.ctl = newControl(inW, outR)

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	select {
	case <-s.ctl.ready:
	case <-s.ctl.gone:
		return fmt.Errorf("knfsd: the guest ended during boot")
	case <-p.Done():
		return fmt.Errorf("knfsd: the guest exited during boot: %v", p.Wait())
	case <-ctx.Done():
		return fmt.Errorf("knfsd: the guest did not finish booting within %v", bootTimeout)
	}
	return s.waitNFS(ctx)
}

// waitNFS polls until nfsd answers an NFSv4 NULL call from inside the
// namespace.
func (s *Server) waitNFS(ctx context.Context) error {
	var lastErr error
	for xid := uint32(1); ; xid++ {
		c, err := dialIn(ctx, s.ns, 0, s.GuestAddr())
		if err == nil {
			err = nullCall(c, xid)
			c.Close()
			if err == nil {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("knfsd: nfsd does not answer: %w (last: %v)", ctx.Err(), lastErr)
		case <-s.guest.Done():
			return fmt.Errorf("knfsd: the guest exited: %v", s.guest.Wait())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initScript returns the guest's init.sh: mounts, network, exports,
// the daemons, nfsd, then the control loop.
func (s *Server) initScript() string {
	var b strings.Builder
	b.WriteString("# Written by internal/knfsd; run by /sbin/gonfs-init as PID 1.\n")
	b.WriteString("set -ex\n")
	// The host name is the server owner and scope nfsd reports in
	// EXCHANGE_ID: one of its own per server, so that two guests are two
	// servers to a client, as two real hosts are. Set before nfsd loads.
	fmt.Fprintf(&b, "hostname %s\n", s.host)
	fmt.Fprintf(&b, `mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p %[1]s
mount -t ext4 /dev/ubdb %[1]s
ip link set lo up
ip addr add %[2]s%[3]s dev vec0
ip link set vec0 up
modprobe nfsd
mount -t nfsd nfsd /proc/fs/nfsd
mkdir -p /run/rpc_pipefs /var/lib/nfs/nfsdcld
mount -t rpc_pipefs sunrpc /run/rpc_pipefs
%[6]s%[8]secho '%[1]s %[4]s(%[5]s%[10]s)' >/etc/exports
%[7]s%[9]sexportfs -ra
rpc.mountd -N 2 -N 3
nfsdcld -p /run/rpc_pipefs
`, ExportPath, guestIP, prefixLen, guestNet, s.cfg.exportOptions(), s.tlsInit(), s.tlsExports(), s.krb5Init(), s.krb5Exports(), s.rootSec())
	b.WriteString(startNFSD(s.cfg))
	b.WriteString(ctlLoop)
	return b.String()
}

// startNFSD returns the script that sets nfsd's parameters and starts
// its threads; they must be stopped (rpc.nfsd 0) before.
func startNFSD(c Config) string {
	flags := []string{"-N", "3"}
	for _, v := range AllVersions {
		if slices.Contains(c.Versions, v) {
			flags = append(flags, "-V", v)
		} else {
			flags = append(flags, "-N", v)
		}
	}
	// nfsd picks its client tracking when it starts: nfsdcld if it has
	// the pipe open by then, else the usermode helper, whose records
	// nfsdcld does not see. Right after boot nfsdcld may be too slow to
	// open the pipe, which appears only as nfsd starts: the clients of
	// that start could not reclaim after a restart. So start until the
	// kernel says it uses nfsdcld.
	return fmt.Sprintf(`tracking() { dmesg | grep -c 'client tracking operations' || true; }
n=0
while :; do
	echo %d >/proc/fs/nfsd/nfsv4gracetime
	echo %d >/proc/fs/nfsd/nfsv4leasetime
	echo 1048576 >/proc/fs/nfsd/max_block_size
	before=$(tracking)
	rpc.nfsd %s %d
	if dmesg | grep 'client tracking operations' | tail -n 1 | grep -q nfsdcld && [ "$(tracking)" -gt "$before" ]; then
		break
	fi
	n=$((n + 1))
	if [ $n -ge 10 ]; then
		echo "gonfs: nfsd does not use nfsdcld for client tracking" >&2
		dmesg | tail -n 20 >&2
		exit 1
	fi
	rpc.nfsd 0
	sleep 0.5
done
`, int(c.Grace/time.Second), int(c.Lease/time.Second), strings.Join(flags, " "), c.Threads)
}

// Addr returns the address a test dials: a forwarder on 127.0.0.1 that
// relays each connection into the guest's namespace (see the package
// documentation for what it does with source ports).
func (s *Server) Addr() string {
	if s.fwd == nil { // a guest that failed to boot, logged by Start's cleanup
		return ""
	}
	return s.fwd.addr()
}

// AddrOn returns another address of the same nfsd, for tb alone: a
// forwarder like Addr's listening on ip (a loopback address such as
// 127.0.0.2), closed at tb's cleanup. It gives one server two addresses.
func (s *Server) AddrOn(tb testing.TB, ip string) string {
	tb.Helper()
	f, err := newForwarder(net.JoinHostPort(ip, "0"), s.ns, s.GuestAddr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.close)
	return f.addr()
}

// GuestAddr returns nfsd's own address, reachable only from inside
// NetNS (DialNS).
func (s *Server) GuestAddr() string { return net.JoinHostPort(guestIP, nfsPort) }

// NetNS returns the name of the guest's network namespace.
func (s *Server) NetNS() string { return s.ns }

// DialNS connects to GuestAddr from inside NetNS, from local port port
// (0: an ephemeral one): no forwarder in between, the server sees the
// port the test chose.
func (s *Server) DialNS(ctx context.Context, port int) (net.Conn, error) {
	return dialIn(ctx, s.ns, port, s.GuestAddr())
}

// Root returns the export's path in the NFSv4 namespace: with fsid=0 it
// is the root, "/".
func (s *Server) Root() string { return "/" }

// Versions returns the minor versions served now.
func (s *Server) Versions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfg.Versions)
}

// StateDir returns the host directory holding the guest's init script,
// its copy-on-write root layer, the exported disk image and the console
// log.
func (s *Server) StateDir() string { return s.stateDir }

// BootTime returns how long Start took, from the cached image to an
// nfsd that answers.
func (s *Server) BootTime() time.Duration { return s.bootTime }

// PID returns the process ID of the process that holds the guest
// (unshare; the UML processes are in a PID namespace below it).
func (s *Server) PID() int { return s.guest.PID() }

// Exec runs a shell script in the guest (as root, in /, with the export
// mounted at ExportPath) and returns its standard output and error. A
// non-zero exit status is an error. Scripts run one at a time; each
// takes at least tens of milliseconds. When ctx ends Exec returns, but
// the script runs on in the guest, and later scripts wait for it.
func (s *Server) Exec(ctx context.Context, script string) (string, error) {
	return s.ctl.exec(ctx, script)
}

// exportPath returns the guest path of name, a slash-separated path
// relative to the export (or absolute in it).
func exportPath(name string) (string, error) {
	p := path.Join(ExportPath, path.Clean("/"+name))
	if strings.ContainsAny(p, "'\n") {
		return "", fmt.Errorf("knfsd: file name %q", name)
	}
	return p, nil
}

// WriteFile creates (or truncates) the file name in the export, seen
// from the guest's side (not through NFS), with data and mode perm. It
// goes through a file in StateDir that the guest copies.
func (s *Server) WriteFile(ctx context.Context, name string, data []byte, perm os.FileMode) error {
	p, err := exportPath(name)
	if err != nil {
		return err
	}
	xfer, err := os.CreateTemp(s.stateDir, "xfer-")
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	defer os.Remove(xfer.Name())
	_, err = xfer.Write(data)
	if cerr := xfer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	_, err = s.Exec(ctx, fmt.Sprintf("cp /gonfs/%s '%s' && chmod %o '%s' && sync '%s'",
		filepath.Base(xfer.Name()), p, perm.Perm(), p, p))
	return err
}

// ReadFile returns the contents of the file name in the export, read in
// the guest (not through NFS).
func (s *Server) ReadFile(ctx context.Context, name string) ([]byte, error) {
	p, err := exportPath(name)
	if err != nil {
		return nil, err
	}
	xfer, err := os.CreateTemp(s.stateDir, "xfer-")
	if err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	xfer.Close()
	defer os.Remove(xfer.Name())
	if _, err := s.Exec(ctx, fmt.Sprintf("cat '%s' >/gonfs/%s", p, filepath.Base(xfer.Name()))); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(xfer.Name())
	if err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	return data, nil
}

// RestartNFSD stops every nfsd thread and starts them again, as a
// server reboot does to NFS clients, without rebooting the guest: the
// in-memory state (client IDs, sessions, opens, locks) is gone, the
// write verifier changes, and the client records nfsdcld keeps survive,
// so clients reclaim their state during the grace period.
func (s *Server) RestartNFSD(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restartLocked(ctx, s.cfg)
}

// StopNFSD stops every nfsd thread, as the first half of RestartNFSD:
// connections to it are closed and new ones refused until StartNFSD. A
// test that must know the server is down before it lets a client go on
// uses the two halves instead of RestartNFSD.
func (s *Server) StopNFSD(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("knfsd: server stopped")
	}
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	_, err := s.Exec(ctx, "rpc.nfsd 0")
	return err
}

// StartNFSD starts nfsd's threads after StopNFSD, with the state a
// RestartNFSD leaves, and returns once nfsd answers.
func (s *Server) StartNFSD(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("knfsd: server stopped")
	}
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	if _, err := s.Exec(ctx, "set -e\n"+startNFSD(s.cfg)); err != nil {
		return err
	}
	return s.waitNFS(ctx)
}

// SetVersions restarts nfsd (as RestartNFSD does) serving only the given
// minor versions ("4.0", "4.1", "4.2"); none means all.
func (s *Server) SetVersions(ctx context.Context, versions ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	c.Versions = versions
	c, err := c.resolve()
	if err != nil {
		return err
	}
	if err := s.restartLocked(ctx, c); err != nil {
		return err
	}
	s.cfg = c
	return nil
}

func (s *Server) restartLocked(ctx context.Context, c Config) error {
	if s.stopped {
		return errors.New("knfsd: server stopped")
	}
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	if _, err := s.Exec(ctx, "set -e\nrpc.nfsd 0\n"+startNFSD(c)); err != nil {
		return err
	}
	return s.waitNFS(ctx)
}

// Stop kills the guest (every UML process), closes the forwarder's
// connections, deletes the namespace with its tap, and, for a Shared
// server, removes StateDir. It verifies that no process is left in the
// namespace. Calling it again returns the first call's result.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	var errs []error
	if s.fwd != nil {
		s.fwd.close()
	}
	if s.guest != nil {
		errs = append(errs, s.guest.Stop(0))
	}
	if s.ctl != nil {
		s.ctl.close()
	}
	if s.ns != "" {
		errs = append(errs, s.killLeftovers(), deleteNamespace(s.ns))
	}
	if s.removeMe {
		errs = append(errs, os.RemoveAll(s.stateDir))
	}
	s.stopErr = errors.Join(errs...)
	return s.stopErr
}

// killLeftovers waits until no process is left in the namespace. Killing
// unshare takes the guest's PID namespace down; anything still there
// after proc.KillWait is killed by PID (it can only be ours) and reported.
func (s *Server) killLeftovers() error {
	deadline := time.Now().Add(proc.KillWait)
	for {
		pids, err := nsPIDs(s.ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return fmt.Errorf("knfsd: processes %v were left in namespace %s %v after the guest was killed", pids, s.ns, proc.KillWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ResetConnections closes every connection the forwarder behind Addr
// relays, at both ends, as a network failure would; clients reconnect.
func (s *Server) ResetConnections() { s.fwd.resetAll() }

// ConsoleLog returns the guest's console output (kernel messages and
// init.sh's trace up to the control loop).
func (s *Server) ConsoleLog() string {
	data, err := os.ReadFile(s.consolePath())
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// tails returns the end of the console log.
func (s *Server) tails() string {
	return fmt.Sprintf("--- last lines of %s:\n%s", s.consolePath(), proc.Tail(s.consolePath(), tailLines))
}
