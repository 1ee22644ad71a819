// Command nfscp copies files to, from and between NFSv4 servers without a
// kernel mount, and rides through reconnects and server restarts while it
// does.
//
//	nfscp [flags] SRC... DST
//
// Each argument is a local path or a URL in the style of libnfs:
//
//	nfs://host[:port]/path[?version=4&policy=hedged&uid=N&gid=N&rsize=1m&wsize=1m&timeo=600&retrans=2&soft&xprtsec=tls]
//
// where path is the path in the server's NFSv4 namespace (for example
// nfs://10.0.0.5/export/data/file). xprtsec=tls or xprtsec=mtls asks for
// RPC-over-TLS, with the flags --tls-ca, --tls-cert and --tls-key; it never
// falls back to plain text. The query sets that server's options;
// the flags of the same names override them for every server. Copies go
// local → NFS, NFS → local, NFS → NFS (one server or two) and local → local.
// Run nfscp -h for the flags.
//
// Semantics follow cp and scp: with one source, DST is the copy's name, or
// the directory to put it in if DST is an existing directory; with several,
// DST must be an existing directory. Symbolic links named on the command
// line are followed; inside a tree (-r) they are copied as links. Links
// found inside the destination are never followed: a directory of the tree
// that meets one there is refused, as GNU cp refuses it. -r implies -p, as
// rsync -a does: modes and modification times are kept, except that a copy
// keeps setuid only if it has its source's owner, and setgid only if it has
// its source's group, since owners are not copied. Without -p a new file
// gets its source's permission bits (not setuid, setgid or sticky) less the
// umask, and the time of the copy. Each file is written under a temporary
// name, .NAME.nfscp-RANDOM, in the destination directory and renamed over
// NAME once complete, so a copy that fails never looks complete; the
// temporary file is removed on failure. Holes in a source are kept as
// holes, and a copy within one server is made by the server (CLONE or
// COPY, NFSv4.2) where it will; see sparse.go.
//
// Exit status: 0 on success, 1 when a copy fails, 2 for a bad command line.
// Errors are one line: "nfscp: NAME: REASON". A name holding characters
// that are not printable (escape sequences, newlines) is written quoted,
// as Go quotes a string: "evil\x1b]0;title\a\n".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cancel(errInterrupted) // remove temporary files, then exit
		<-sig
		os.Exit(130) // a second signal: at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// closeGrace is how long a run whose context has ended (--timeout, a
// signal) gives its servers to end their sessions; a server that does not
// answer lets them expire with their lease.
const closeGrace = time.Second

// run is nfscp with its command-line arguments (without the program name),
// returning the exit status. It prints a progress bar (if stdout is a
// terminal) and --stats to stdout, and messages to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseArgs(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "nfscp: "+termSafe(err.Error()))
		return 2
	}
	if cmd.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cmd.timeout, &timeoutError{cmd.timeout})
		defer cancel()
	}
	prog := newProgress(!cmd.quiet && isTerminal(stdout), stdout, stderr)
	cs := newConns(cmd.dial, prog)
	cp := &copier{opts: cmd.copy, conns: cs, prog: prog, limit: newLimiter(cmd.bwlimit)}
	cp.warn = func(s string) {
		if !cmd.quiet {
			prog.Line(s)
		}
	}
	start := time.Now()
	rs, err := cp.all(ctx, cmd.srcs, cmd.dst)
	var oe *opError
	if ctx.Err() != nil && errors.As(err, &oe) &&
		(errors.Is(oe.err, context.Canceled) || errors.Is(oe.err, context.DeadlineExceeded)) {
		oe.err = context.Cause(ctx) // the library's ctx.Err()
	}
	rs.elapsed = time.Since(start)
	prog.Done()
	if cmd.stats {
		printStats(stdout, rs, cs)
	}
	closeTimeout := nfs4.DefaultCloseTimeout
	if ctx.Err() != nil {
		closeTimeout = closeGrace
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	cs.closeAll(cctx)
	if err != nil {
		fmt.Fprintln(stderr, "nfscp: "+termSafe(err.Error()))
		return 1
	}
	return 0
}

// all plans and runs the copy of srcs to dst.
func (c *copier) all(ctx context.Context, srcs []location, dst location) (runStats, error) {
	items, err := c.plan(ctx, srcs, dst)
	if c.root != nil {
		defer c.root.Close()
	}
	if err != nil {
		return runStats{}, err
	}
	rs, err := c.run(ctx, items)
	rs.bytes, rs.holes, rs.server = c.copied.Load(), c.holes.Load(), c.offloaded.Load()
	return rs, err
}

// command is a parsed command line.
type command struct {
	srcs    []location
	dst     location
	copy    copyOptions
	dial    dialOptions
	quiet   bool
	stats   bool
	timeout time.Duration
	bwlimit int64 // bytes per second; 0: unlimited
}

const usageText = `Usage: nfscp [flags] SRC... DST

Copies files to, from and between NFSv4 servers (4.2, 4.1 or 4.0), riding through reconnects.
SRC and DST are local paths or URLs:

  nfs://host[:port]/path[?key=value&...]

where path is in the server's NFSv4 namespace (e.g. /export/dir/file) and the
keys are version, policy, uid, gid, rsize, wsize, timeo, retrans, soft, hard,
xprtsec, sec (as the flags below; "soft" and "hard" need no value). Flags
override them. xprtsec=tls or mtls (RPC-over-TLS) never falls back to plain
text; sec=krb5, krb5i or krb5p (Kerberos) never falls back to AUTH_SYS.

Examples:
  nfscp big.iso nfs://filer/export/isos/
  nfscp -r -j 8 nfs://filer/export/home/alice ./backup
  nfscp --policy ephemeral 'nfs://filer:2050/export/f?uid=1000&gid=1000' .
  nfscp --tls-ca ca.pem --tls-cert me.pem --tls-key me.key f 'nfs://filer/sec/?xprtsec=mtls'
  kinit alice && nfscp f 'nfs://filer.example.com/export/?sec=krb5p'

Flags (before SRC and DST; -x and --x are the same):
`

// parseArgs parses the command line. Usage goes to stdout for -h.
func parseArgs(args []string, stdout io.Writer) (*command, error) {
	cmd := &command{copy: copyOptions{jobs: 4, umask: processUmask()}}
	fset := flag.NewFlagSet("nfscp", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	var overrides []func(*settings)
	setting := func(key, help string) {
		fset.Func(key, help, func(v string) error {
			var probe settings
			if err := applySetting(&probe, key, v); err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), key+" "))
			}
			overrides = append(overrides, func(s *settings) { applySetting(s, key, v) })
			return nil
		})
	}
	fset.BoolVar(&cmd.copy.recursive, "r", false, "copy directories recursively, with modes, times and symlinks (implies -p)")
	fset.BoolVar(&cmd.copy.preserve, "p", false, "keep modes and modification times")
	fset.IntVar(&cmd.copy.jobs, "j", 4, "copy `N` files at once")
	fset.BoolVar(&cmd.quiet, "q", false, "no progress bar and no warnings")
	fset.BoolVar(&cmd.dial.verbose, "v", false, "print every connect, disconnect and failed dial as it happens")
	fset.BoolVar(&cmd.copy.verify, "verify", false, "read each copy back and compare its sha256 with the source's")
	fset.BoolVar(&cmd.stats, "stats", false, "print transfer, transport and recovery statistics at the end")
	fset.DurationVar(&cmd.timeout, "timeout", 0, "give up after `DURATION` (0: never; hard mounts wait through outages until then)")
	fset.Func("bwlimit", "limit the transfer rate to `SIZE` bytes per second (k, m, g suffixes)", func(v string) error {
		n, err := parseSize(v)
		if err != nil || n < 1024 {
			return errors.New("not a rate of at least 1k bytes per second")
		}
		cmd.bwlimit = n
		return nil
	})
	setting("policy", "reconnect `POLICY`: same-reserved, new-reserved, ephemeral or hedged (default hedged)")
	fset.DurationVar(&cmd.dial.backoffInitial, "backoff-initial", 0, "first wait between the starts of failed dials (default: the policy's, 250ms)")
	fset.DurationVar(&cmd.dial.backoffMax, "backoff-max", 0, "longest wait between the starts of dials (default: the policy's, 1s)")
	fset.DurationVar(&cmd.dial.hedgeAfter, "hedge-after", 0, "hedged: start a dial from a fresh port after this long (default 300ms, 50ms after a path went silent)")
	setting("xprtsec", "RPC-over-TLS: `MODE` none (the default), tls (the server's certificate verified) or mtls (and a client certificate)")
	fset.StringVar(&cmd.dial.tlsCA, "tls-ca", "", "trust the CAs in PEM `FILE` for servers' certificates (default: the system's roots)")
	fset.StringVar(&cmd.dial.tlsCert, "tls-cert", "", "xprtsec=mtls: the client certificate (chain), PEM `FILE`")
	fset.StringVar(&cmd.dial.tlsKey, "tls-key", "", "xprtsec=mtls: the client certificate's private key, PEM `FILE`")
	setting("sec", "security `FLAVOR`: sys (AUTH_SYS, the default), krb5, krb5i (and checksums) or krb5p (and encryption)")
	fset.StringVar(&cmd.dial.krb5.conf, "krb5-conf", "", "sec=krb5*: the krb5.conf naming the realm's KDCs `FILE` (default $KRB5_CONFIG, then /etc/krb5.conf)")
	fset.StringVar(&cmd.dial.krb5.keytab, "keytab", "", "sec=krb5*: get tickets with the keys in keytab `FILE` (with --krb5-principal) instead of the credential cache ($KRB5CCNAME, from kinit)")
	fset.StringVar(&cmd.dial.krb5.principal, "krb5-principal", "", "sec=krb5* with --keytab: the client's `PRINCIPAL` in the keytab, e.g. nfs-client/host.example.com")
	fset.StringVar(&cmd.dial.krb5.service, "krb5-service", "", "sec=krb5*: the server's `PRINCIPAL` (default nfs/HOST, HOST as in the URL)")
	setting("nfs-version", "NFS `VERSION`: 4 (4.2, or the highest of 4.1 and 4.0 the server has; the default), 4.0, 4.1 or 4.2 (URL key: version)")
	setting("vers", "the same as --nfs-version")
	setting("uid", "AUTH_SYS `UID` (default: this process's; a uid or gid given sends no supplementary groups)")
	setting("gid", "AUTH_SYS `GID` (default: this process's)")
	setting("rsize", "largest READ, `SIZE` in bytes (k, m suffixes; default 1m)")
	setting("wsize", "largest WRITE, `SIZE` in bytes (k, m suffixes; default 1m)")
	setting("timeo", "RPC timeout, a `DURATION` or tenths of a second as in mount(8) (default 60s)")
	setting("retrans", "`N` timeouts of timeo that make a major timeout (default 2)")
	fset.BoolFunc("soft", "fail a call once a major timeout (timeo × retrans) has passed since it started, reconnects included, instead of retrying", func(v string) error {
		return boolSetting(&overrides, "soft", v)
	})
	fset.BoolFunc("hard", "retry calls until --timeout (the default)", func(v string) error {
		return boolSetting(&overrides, "hard", v)
	})
	fset.Usage = func() {
		fmt.Fprint(stdout, usageText)
		fset.SetOutput(stdout)
		fset.PrintDefaults()
		fset.SetOutput(io.Discard)
	}

	takesValue := func(name string) bool {
		f := fset.Lookup(name)
		if f == nil {
			return false
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return !ok || !b.IsBoolFlag()
	}
	if err := fset.Parse(expandShortFlags(args, takesValue)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err // Parse has printed the usage
		}
		return nil, &argError{msg: err.Error() + " (see nfscp -h)"}
	}
	rest := fset.Args()
	dashdash := len(args) > len(rest) && args[len(args)-len(rest)-1] == "--"
	if !dashdash {
		for _, a := range rest {
			if len(a) > 1 && a[0] == '-' {
				return nil, &argError{msg: fmt.Sprintf("flag %s after the file arguments: flags go first (a file named so can be given as ./%s)", a, a)}
			}
		}
	}
	if len(rest) < 2 {
		return nil, &argError{msg: "need a source and a destination: nfscp [flags] SRC... DST (see nfscp -h)"}
	}
	if cmd.copy.jobs < 1 || cmd.copy.jobs > 256 {
		return nil, &argError{msg: "-j must be from 1 to 256"}
	}
	if cmd.timeout < 0 {
		return nil, &argError{msg: "--timeout must not be negative"}
	}
	if cmd.copy.recursive {
		cmd.copy.preserve = true
	}
	cmd.dial.quiet = cmd.quiet
	override := func(s *settings) {
		for _, o := range overrides {
			o(s)
		}
	}
	for i, a := range rest {
		l, err := parseLocation(a, defaultSettings(), override)
		if err != nil {
			return nil, err
		}
		if i < len(rest)-1 {
			cmd.srcs = append(cmd.srcs, l)
		} else {
			cmd.dst = l
		}
	}
	if err := cmd.dial.loadTLS(append(cmd.srcs, cmd.dst)); err != nil {
		return nil, err
	}
	if err := cmd.dial.krb5.check(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// boolSetting records --soft or --hard, which take an optional value.
func boolSetting(overrides *[]func(*settings), key, v string) error {
	var probe settings
	if err := applySetting(&probe, key, v); err != nil {
		return err
	}
	*overrides = append(*overrides, func(s *settings) { applySetting(s, key, v) })
	return nil
}

// shortBools are the one-letter boolean flags that may be grouped, as in
// -rpv.
const shortBools = "rpqv"

// expandShortFlags splits grouped one-letter flags ("-rv" → "-r", "-v")
// among the flags, which end at the first argument that is neither a flag
// nor a flag's value. takesValue says whether a flag name needs a value.
func expandShortFlags(args []string, takesValue func(name string) bool) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[1] != '-' && strings.Trim(a[1:], shortBools) == "" {
			for _, c := range a[1:] {
				out = append(out, "-"+string(c))
			}
			continue
		}
		out = append(out, a)
		if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && takesValue(name) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// processUmask reads the process's umask from /proc without changing it
// (umask(2) can only be read by setting it). It assumes 022 where /proc
// does not say.
func processUmask() fs.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(n) & fs.ModePerm
				}
			}
		}
	}
	return 0o022
}
