package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

// Prefix starts the name of every namespace this package creates; Sweep
// deletes abandoned ones by it.
const Prefix = "gonfslab-"

// CommandTimeout bounds each external command whose context has no
// earlier deadline.
const CommandTimeout = 15 * time.Second

// netnsDir is where `ip netns add` keeps its namespace handles, and
// etcNetnsDir where `ip netns exec` finds files to mount over /etc's.
const (
	netnsDir    = "/run/netns"
	etcNetnsDir = "/etc/netns"
)

// tools are the commands the package runs, with the Debian package of each.
var tools = [][2]string{{"ip", "iproute2"}, {"tc", "iproute2"}, {"nft", "nftables"}, {"conntrack", "conntrack"}}

// Available reports why this machine cannot run a lab, or nil if it can.
func Available() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("netlab: must run as root (network namespaces, reserved ports)"))
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			errs = append(errs, fmt.Errorf("netlab: %s not found (Debian package %s)", tool[0], tool[1]))
		}
	}
	return errors.Join(errs...)
}

// A Lab is the set of namespaces and processes one test creates. Its
// methods are safe for concurrent use.
type Lab struct {
	t testing.TB

	mu  sync.Mutex
	nss []*NS // guarded by mu
}

// seq numbers the namespaces of this process.
var seq atomic.Int64

// live holds the namespaces of this process that still exist, for the
// interrupt handler. Guarded by liveMu.
var (
	liveMu sync.Mutex
	live   = map[string]*NS{}
)

// RequireEnv is the environment variable that, set to "1", turns a
// machine that cannot run a lab into a test failure instead of a skip.
// It is the one package ganesha reads; make test sets it.
const RequireEnv = "GONFS_REQUIRE_GANESHA"

// New returns an empty Lab whose namespaces and processes are removed by
// a cleanup registered on t. If the machine cannot run a lab (see
// Available) it skips t, or fails it when RequireEnv is "1".
func New(t testing.TB) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v\nskipped: the lab needs root and the tools of scripts/install-deps.sh; make test sets %s=1, which makes this a failure", err, RequireEnv)
	}
	l := &Lab{t: t}
	t.Cleanup(l.close)
	return l
}

// NS creates a namespace for role (lower-case letters and digits, at
// most 10 of them, unique within the Lab) with lo up, and IPv4 forwarding
// off. It fails the test if it cannot.
func (l *Lab) NS(role string) *NS {
	l.t.Helper()
	if !validRole(role) {
		l.t.Fatalf("netlab: role %q: want 1 to 10 lower-case letters or digits", role)
	}
	n := &NS{lab: l, Role: role, Name: fmt.Sprintf("%s%d-%d-%s", Prefix, os.Getpid(), seq.Add(1), role)}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if _, err := command(ctx, nil, "ip", "netns", "add", n.Name); err != nil {
		l.t.Fatal(err)
	}
	liveMu.Lock()
	live[n.Name] = n
	liveMu.Unlock()
	l.mu.Lock()
	l.nss = append(l.nss, n)
	l.mu.Unlock()
	n.IP("link", "set", "lo", "up")
	return n
}

func validRole(role string) bool {
	if role == "" || len(role) > 10 {
		return false
	}
	for _, r := range role {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// close removes every namespace of the Lab, newest first, after killing
// the processes still inside it.
func (l *Lab) close() {
	l.mu.Lock()
	nss := l.nss
	l.nss = nil
	l.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		if err := nss[i].remove(); err != nil {
			l.t.Error(err)
		}
	}
}

// remove stops the processes this package started in n, kills any other
// process still inside it, and deletes it.
func (n *NS) remove() error {
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Stop(0))
	}
	errs = append(errs, deleteNS(n.Name))
	liveMu.Lock()
	delete(live, n.Name)
	liveMu.Unlock()
	return errors.Join(errs...)
}

// deleteNS kills the processes inside the namespace called name, by PID,
// and deletes it.
func deleteNS(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	out, err := command(ctx, nil, "ip", "netns", "pids", name)
	if err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = proc.Kill(pid) // best effort: ip netns del follows
			}
		}
	}
	if err := os.RemoveAll(etcNetnsDir + "/" + name); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	if _, err := command(ctx, nil, "ip", "netns", "del", name); err != nil {
		if _, statErr := os.Stat(netnsDir + "/" + name); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// Sweep deletes the namespaces left behind by lab runs whose process no
// longer exists (one killed by a test timeout, say), with the processes
// inside them. It returns the names it deleted. Namespaces of runs still
// alive are left alone.
func Sweep() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	var deleted []string
	var errs []error
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || proc.Alive(pid) {
			continue
		}
		if err := deleteNS(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, e.Name())
	}
	return deleted, errors.Join(errs...)
}

// ownerPID returns the PID in a namespace name this package made.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	return pid, err == nil && pid > 0
}

var trapOnce sync.Once

// TrapInterrupts makes SIGINT and SIGTERM remove every namespace (and the
// processes in it) that this process's Labs still hold, and then exit
// with status 130. Call it once from TestMain, before the tests run: the
// goroutine it starts lives as long as the process.
func TrapInterrupts() {
	trapOnce.Do(func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-sigs
			liveMu.Lock()
			nss := make([]*NS, 0, len(live))
			for _, n := range live {
				nss = append(nss, n)
			}
			liveMu.Unlock()
			for _, n := range nss {
				if err := n.remove(); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
			fmt.Fprintf(os.Stderr, "netlab: %v: removed %d namespaces\n", sig, len(nss))
			os.Exit(130)
		}()
	})
}

// command runs name with args and stdin, bounded by ctx and by
// CommandTimeout, and returns its standard output. The error quotes the
// command and its standard error.
func command(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("netlab: %s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
