// Package kdc runs a real MIT Kerberos KDC (krb5kdc) for tests: a realm
// of its own in a temporary directory, served on a free port of
// 127.0.0.1 over TCP and UDP, stopped and reaped by PID when the test
// ends. Nothing in /etc is read or changed: KRB5_CONFIG and
// KRB5_KDC_PROFILE point every tool at generated files.
//
//	k := kdc.Start(t, kdc.Config{})
//	k.AddPrincipal(t, "alice", "secret")
//	keytab := k.Keytab(t, "nfs/localhost") // a service principal, created with a random key
//	ccache := k.Kinit(t, "alice", "secret") // a credential cache written by MIT's kinit
//	// k.Krb5Conf() is the krb5.conf for clients: MIT's, Ganesha's, gokrb5's.
//
// The KDC is optional unless the environment sets GONFS_REQUIRE_GANESHA=1
// (make test and CI do), as for internal/ganesha: without it, missing
// packages or a KDC that does not start skip the test; with it, the test
// fails.
//
// What this package found out about MIT Kerberos 1.20 (Debian bookworm):
//
//   - kadmin.local exits with status 0 whatever happened; its errors are
//     only on stderr, which is what this package checks. It splits a
//     query at blanks, so names and passwords here may not hold any.
//   - kadmin.local's ktadd gives the principal new random keys unless
//     told -norandkey (the password stops working, and keytabs exported
//     before go stale); Keytab always passes -norandkey.
//   - MIT clients adopt a skewed KDC's clock (kdc_timesync, on by
//     default) and kinit then succeeds; the generated krb5.conf turns it
//     off, so that a test sees the skew as gokrb5, which never adopts it,
//     would.
//   - Without supported_enctypes MIT 1.20 creates only the SHA-1 AES
//     keys; the generated kdc.conf asks for the SHA-2 ones too.
//   - klist prints times as MM/DD/YY HH:MM:SS in the C locale, which
//     Command sets.
package kdc

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
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

// RequireEnv is the environment variable that, set to "1", turns a
// missing or failing KDC into a test failure instead of a skip. It is
// internal/ganesha's: make test sets it for both.
const RequireEnv = "GONFS_REQUIRE_GANESHA"

const (
	// pollInterval is how often readiness is polled.
	pollInterval = 20 * time.Millisecond
	// readyTimeout bounds how long krb5kdc may take to serve; it
	// usually does within 100 ms.
	readyTimeout = 10 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// startAttempts bounds the starts on a freshly picked port, should
	// another process take the port between its choice and the bind.
	startAttempts = 3
	// toolTimeout bounds one run of kdb5_util, kadmin.local or kinit.
	toolTimeout = 30 * time.Second
	// tailLines is how many lines of a log a failure report shows.
	tailLines = 30
	// masterPassword encrypts the KDC database; it is stashed, and only
	// kdb5_util create ever sees it.
	masterPassword = "gonfs-kdc-master"
)

// TB is the part of testing.TB that this package uses. *testing.T and
// *testing.B satisfy it, and so does internal/ganesha's Program, for a
// program that runs a KDC outside a test.
type TB interface {
	Helper()
	Name() string
	TempDir() string
	Cleanup(func())
	Logf(format string, args ...any)
	Error(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
}

// A KDC is a running (or stopped) krb5kdc with its realm's database. Its
// methods are safe for concurrent use.
type KDC struct {
	tb   TB
	cfg  Config // defaults applied; read-only
	dir  string // the database, configuration, logs, keytabs and ccaches
	port int    // TCP and UDP, on 127.0.0.1; fixed once started

	admin sync.Mutex   // serialises kadmin.local runs
	seq   atomic.Int64 // numbers the keytabs and ccaches handed out

	mu   sync.Mutex
	proc *proc.Process // the latest krb5kdc; guarded by mu
}

// Available reports why this machine cannot run the KDC cfg describes,
// or nil if it can: MIT's KDC, admin tools and client tools must be
// installed, and libfaketime if cfg has a ClockOffset.
func Available(cfg Config) error {
	for _, t := range []struct{ cmd, pkg string }{
		{"krb5kdc", "krb5-kdc"},
		{"kdb5_util", "krb5-kdc"},
		{"kadmin.local", "krb5-admin-server"},
		{"kinit", "krb5-user"},
		{"klist", "krb5-user"},
	} {
		if _, err := lookPath(t.cmd); err != nil {
			return fmt.Errorf("kdc: %s not found (Debian package %s): %w", t.cmd, t.pkg, err)
		}
	}
	if cfg.ClockOffset != 0 {
		if _, err := Libfaketime(); err != nil {
			return err
		}
	}
	return nil
}

// sbinDirs are searched after PATH: a non-root PATH often lacks them,
// and krb5kdc, kdb5_util and kadmin.local live there.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// lookPath finds a program in PATH or in sbinDirs.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		if q := filepath.Join(dir, name); isExecutable(q) {
			return q, nil
		}
	}
	return "", err
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Libfaketime returns the path of Debian's libfaketime (multiarch), which
// runs a program with its clock off (LD_PRELOAD, FAKETIME): ClockOffset's,
// and a test's for a server of another clock.
func Libfaketime() (string, error) {
	for _, pattern := range []string{
		"/usr/lib/*/faketime/libfaketime.so.1",
		"/usr/lib/faketime/libfaketime.so.1",
		"/usr/local/lib/faketime/libfaketime.so.1",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0], nil
		}
	}
	return "", errors.New("kdc: ClockOffset needs libfaketime.so.1 (Debian package faketime), which is not installed")
}

// Start creates a realm described by cfg and starts its KDC, returning
// once the KDC serves. A cleanup registered on tb stops it and, if the
// test failed, logs the end of its log. An invalid cfg fails the test;
// missing packages, or a KDC that does not start, skip it unless
// RequireEnv is "1".
func Start(tb TB, cfg Config) *KDC {
	tb.Helper()
	c, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	if err := Available(c); err != nil {
		unavailable(tb, err)
	}
	k := &KDC{tb: tb, cfg: c, dir: tb.TempDir()}
	tb.Cleanup(k.cleanup)
	if err := os.WriteFile(filepath.Join(k.dir, "kadm5.acl"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	var errs []error
	for range startAttempts {
		if err := k.setup(); err != nil {
			unavailable(tb, err)
		}
		k.mu.Lock()
		err = k.startLocked()
		k.mu.Unlock()
		if err == nil {
			return k
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	unavailable(tb, errors.Join(errs...))
	return nil
}

// unavailable skips the test, or fails it if RequireEnv says so.
func unavailable(tb TB, err error) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%v", err)
	}
	tb.Skipf("%v\nskipped: these tests need MIT Kerberos (Debian packages krb5-kdc, krb5-admin-server, krb5-user; faketime for a ClockOffset); "+
		"scripts/install-deps.sh installs them, and `make test` runs that and sets %s=1 so that this is a failure",
		err, RequireEnv)
}

// setup picks a port free for both TCP and UDP, writes the two profiles
// for it and creates the database if it does not exist yet.
func (k *KDC) setup() error {
	port, err := pickPort()
	if err != nil {
		return err
	}
	k.port = port
	if err := os.WriteFile(k.kdcConfPath(), []byte(k.cfg.kdcConf(k.dir, port)), 0o644); err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	if err := os.WriteFile(k.Krb5Conf(), []byte(k.cfg.krb5Conf(k.Addr())), 0o644); err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	if _, err := os.Stat(filepath.Join(k.dir, "principal")); err == nil {
		return nil
	}
	out, err := k.run(nil, "kdb5_util", "-r", k.cfg.Realm, "create", "-s", "-P", masterPassword)
	if err != nil {
		return fmt.Errorf("kdc: kdb5_util create: %w\n%s", err, out)
	}
	return nil
}

// pickPort returns a port of 127.0.0.1 that was free for both TCP and
// UDP when chosen. Another process may still take it before krb5kdc
// binds it; Start then tries another.
func pickPort() (int, error) {
	const tries = 20
	var lastErr error
	for range tries {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("kdc: pick a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			lastErr = err
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, fmt.Errorf("kdc: no port free for both TCP and UDP in %d tries: %w", tries, lastErr)
}

// errPortTaken marks a start that failed because the port was taken.
var errPortTaken = errors.New("kdc: port taken")

// startLocked starts krb5kdc and waits until it serves. k.mu must be
// held and no KDC running.
func (k *KDC) startLocked() error {
	logStart := int64(0)
	if fi, err := os.Stat(k.LogPath()); err == nil {
		logStart = fi.Size()
	}
	binary, err := lookPath("krb5kdc")
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	// -n: in the foreground, so that it stays our child.
	cmd := exec.Command(binary, "-n", "-r", k.cfg.Realm, "-P", filepath.Join(k.dir, "krb5kdc.pid"))
	cmd.Env = k.env()
	if k.cfg.ClockOffset != 0 {
		lib, err := Libfaketime()
		if err != nil {
			return err
		}
		cmd.Env = append(cmd.Env,
			"LD_PRELOAD="+lib,
			fmt.Sprintf("FAKETIME=%+ds", int64(k.cfg.ClockOffset.Round(time.Second)/time.Second)),
			// Only the wall clock is off; timers keep their pace.
			"FAKETIME_DONT_FAKE_MONOTONIC=1",
		)
	}
	out, err := os.OpenFile(k.outPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	fmt.Fprintf(out, "=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(cmd)
	out.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	k.proc = p
	if err := k.waitReady(p, logStart); err != nil {
		if stopErr := p.Stop(0); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return fmt.Errorf("%w\n%s", err, k.tails())
	}
	return nil
}

// waitReady waits until krb5kdc has logged that it serves (it does once
// its sockets are bound) and accepts a TCP connection, until it exits,
// or until readyTimeout passes.
func (k *KDC) waitReady(p *proc.Process, logStart int64) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for range readyTimeout / pollInterval {
		if logHas(k.LogPath(), logStart, "commencing operation") {
			c, err := net.DialTimeout("tcp", k.Addr(), time.Second)
			if err != nil {
				return fmt.Errorf("kdc: krb5kdc (pid %d) logged that it serves, but %s refuses: %w", p.PID(), k.Addr(), err)
			}
			c.Close()
			return nil
		}
		if p.Exited() {
			err := fmt.Errorf("kdc: krb5kdc on %s did not start: %v", k.Addr(), p.Wait())
			if logHas(k.LogPath(), logStart, "Address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-p.Done():
		case <-tick.C:
		}
	}
	return fmt.Errorf("kdc: krb5kdc (pid %d) not serving after %v", p.PID(), readyTimeout)
}

// logHas reports whether the file at path holds s after offset.
func logHas(path string, offset int64, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			return true
		}
	}
	return false
}

// Stop shuts the KDC down (SIGTERM, SIGKILL 5 s later) and waits until
// it has been reaped; clients then get "Cannot contact any KDC". The
// realm's database stays, for Restart. It does nothing if the KDC is
// not running.
func (k *KDC) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		if err := k.proc.Stop(stopGrace); err != nil {
			k.tb.Error(err)
		}
	}
}

// Restart starts the KDC again after Stop (stopping it first if it still
// runs), on the same port and with the same database. It fails tb if the
// KDC does not come back.
func (k *KDC) Restart(tb TB) {
	tb.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		if err := k.proc.Stop(stopGrace); err != nil {
			tb.Fatal(err)
		}
	}
	if err := k.startLocked(); err != nil {
		tb.Fatal(err)
	}
}

// Running reports whether krb5kdc is alive.
func (k *KDC) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.proc != nil && !k.proc.Exited()
}

// PID returns the process ID of the latest krb5kdc, running or not.
func (k *KDC) PID() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return 0
	}
	return k.proc.PID()
}

// Realm returns the realm, e.g. "GONFS.TEST".
func (k *KDC) Realm() string { return k.cfg.Realm }

// Addr returns the KDC's address, "127.0.0.1:port", for TCP and UDP.
func (k *KDC) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// Krb5Conf returns the path of the krb5.conf for clients of this KDC
// (KRB5_CONFIG for MIT's tools and Ganesha; gokrb5's config.Load reads
// it too): the realm as default_realm, its KDC by address, no DNS, no
// kdc_timesync, and Config.Enctypes as the permitted and default
// encryption types.
func (k *KDC) Krb5Conf() string { return filepath.Join(k.dir, "krb5.conf") }

// Dir returns the directory holding the realm's database, its two
// profiles, the logs, and the keytabs and credential caches handed out.
func (k *KDC) Dir() string { return k.dir }

// LogPath returns the path of the KDC's log: one line per request, with
// the principals, encryption types and the reason for a refusal.
func (k *KDC) LogPath() string { return filepath.Join(k.dir, "kdc.log") }

func (k *KDC) kdcConfPath() string { return filepath.Join(k.dir, "kdc.conf") }

// outPath is where krb5kdc's stdout and stderr go, after a header line
// with the command of each start.
func (k *KDC) outPath() string { return filepath.Join(k.dir, "krb5kdc.out") }

// cleanup stops the KDC at the end of the test, first logging the end of
// its logs if the test failed.
func (k *KDC) cleanup() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tb.Failed() {
		k.tb.Logf("kdc: realm %s on %s (%s):\n%s", k.cfg.Realm, k.Addr(), k.dir, k.tails())
	}
	if k.proc != nil {
		if err := k.proc.Stop(stopGrace); err != nil {
			k.tb.Error(err)
		}
	}
}

// tails returns the last lines of the process output and of the log.
func (k *KDC) tails() string {
	var b strings.Builder
	for _, path := range []string{k.outPath(), k.LogPath()} {
		fmt.Fprintf(&b, "--- last lines of %s:\n%s", path, proc.Tail(path, tailLines))
	}
	return b.String()
}

// env returns the environment of every command run for this realm: this
// process's, less any Kerberos variable that would lead a tool elsewhere,
// plus the realm's profiles, a credential cache and replay cache of its
// own (never /tmp/krb5cc_UID or /var/tmp), and the C locale.
func (k *KDC) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5CCNAME", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME",
			"KRB5RCACHEDIR", "KRB5RCACHETYPE", "KRB5RCACHENAME", "LC_ALL", "LD_PRELOAD",
			"FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"KRB5_CONFIG="+k.Krb5Conf(),
		"KRB5_KDC_PROFILE="+k.kdcConfPath(),
		"KRB5CCNAME=FILE:"+filepath.Join(k.dir, "ccache"),
		"KRB5RCACHEDIR="+k.dir,
		"LC_ALL=C",
	)
}

// run runs one of MIT's tools with the realm's environment and stdin,
// and returns its stdout and stderr together.
func (k *KDC) run(stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := k.Command(ctx, name, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", name, toolTimeout, err)
	}
	return string(out), err
}
