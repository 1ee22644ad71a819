package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// runInProcess calls run as main does and returns its exit status and
// output.
func runInProcess(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestRunLocalTree runs nfscp in-process on local files only: a tree copy
// with links, then the same into the copy (a merge), and -h.
func TestRunLocalTree(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeTree(t, src)
	os.Remove(filepath.Join(src, "a/fifo"))
	dst := filepath.Join(dir, "dst")
	mustSucceed(t, runInProcess(t, "-r", src, dst))
	sameTree(t, src, dst)
	mustSucceed(t, runInProcess(t, "-r", "-j", "1", src+"/", dst))
	sameTree(t, src, filepath.Join(dst, "src"))
	noLeftovers(t, dir)

	r := runInProcess(t, "-h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: nfscp [flags] SRC... DST") || strings.Count(r.stdout, "Usage:") != 1 || !strings.Contains(r.stdout, "-policy POLICY") || r.stderr != "" {
		t.Errorf("-h: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	mustFail(t, runInProcess(t, src, src), 1, "nfscp: "+src+": is a directory (use -r to copy directories)")
	mustFail(t, runInProcess(t, "-r", src, src), 1, "nfscp: "+src+": cannot copy a directory into itself")
	f := filepath.Join(src, "top.txt")
	mustFail(t, runInProcess(t, f, f), 1, "nfscp: "+f+": source and destination are the same file")
}

func TestReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: "/export/x", Err: nfs4.ErrNoEnt}, "no such file or directory"},
		{fmt.Errorf("nfs4: dial: %w", &fs.PathError{Op: "open", Path: "/x", Err: nfs4.ErrAccess}), "permission denied"},
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: nfs4.ErrNotEmpty}, "directory not empty"},
		{&fs.PathError{Op: "write", Path: "/x", Err: nfs4.ErrBadSession}, "server error NFS4ERR_BADSESSION"},
		{&fs.PathError{Op: "write", Path: "/x", Err: nfs4.ErrIO}, "input/output error"},
		{&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, "no space left on device"},
		{fmt.Errorf("nfs4: dial h:1: %w", fmt.Errorf("xprt: %w", xprt.ErrReservedPort)), reservedPortAdvice},
		{fmt.Errorf("wrapped: %w", &timeoutError{3 * time.Second}), "timed out after 3s (--timeout)"},
		{&rpc.TimeoutError{XID: 1, MajorTimeouts: 1, Waited: 2 * time.Second}, "server not responding (soft: gave up after 2s)"},
		{errInterrupted, "interrupted"},
		{rpc.ErrClosed, "connection closed"},
		{errors.New("nfs4: something odd"), "something odd"},
		{&fs.PathError{Op: "open", Path: "/x", Err: nfs4.ErrWrongSec}, "the export refuses this client's security (NFS4ERR_WRONGSEC): " +
			"it may need Kerberos (sec=krb5, krb5i or krb5p), RPC-over-TLS (xprtsec=tls), a client certificate (xprtsec=mtls), or no client certificate (Linux's xprtsec=tls exports)"},
		{fmt.Errorf("nfs4: dial: %w", &xprt.TLSError{Mode: xprt.TLSRequired, Step: "probe", Final: true, Err: xprt.ErrTLSNotOffered}),
			"the server does not offer RPC-over-TLS, which xprtsec=tls asks for (a Linux server needs tlshd running)"},
		{&xprt.TLSError{Mode: xprt.TLSRequired, Step: "handshake", Final: true, Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}},
			"the server's certificate does not verify: x509: certificate signed by unknown authority (give its CA with --tls-ca)"},
		{&xprt.TLSError{Mode: xprt.TLSMutual, Step: "session", Final: true, Err: fmt.Errorf("alert: %w", &net.OpError{Op: "remote error", Err: tls.AlertError(49)})},
			"the server refused the client certificate (--tls-cert): remote error: tls: access denied"},
	} {
		if got := reason(c.err); got != c.want {
			t.Errorf("reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if !errors.Is(&timeoutError{time.Second}, context.DeadlineExceeded) || !errors.Is(errInterrupted, context.Canceled) {
		t.Errorf("the run's causes do not match the context errors")
	}
}

// TestEventLines feeds the library's records, as package xprt and rpc log
// them, through the handler and checks the lines -v and the default print.
func TestEventLines(t *testing.T) {
	feed := func(ev *events) {
		log := slog.New(&eventHandler{ev: ev}).With("server", "10.0.0.1:2049")
		log.Info(msgConnected, "gen", uint64(1), "local_port", 812, "remote", "10.0.0.1:2049", "attempt", 1, "down", time.Duration(0))
		log.Debug("xprt: dialing", "attempt", 1)
		log.Info(msgDisconnected, "gen", uint64(1), "local_port", 812, "cause", "connection reset", "err", "read: connection reset by peer")
		log.Info("rpc: connection lost", "gen", uint64(1))
		log.Warn(msgDialFailed, "port", 812, "cause", "connection refused", "err", "dial: refused")
		if got := ev.lastDialFailure(); got != "connection refused" {
			t.Errorf("lastDialFailure during the outage = %q", got)
		}
		log.Warn(msgStillTrying, "xid", 7, "major_timeouts", 1)
		log.Warn(msgStillTrying, "xid", 8, "major_timeouts", 1)
		log.Info(msgConnected, "gen", uint64(2), "local_port", 845, "remote", "10.0.0.1:2049", "attempt", 3, "down", 2310*time.Millisecond)
		log.Info("nfs4: session created", "slots", 64)
		if got := ev.lastDialFailure(); got != "" {
			t.Errorf("lastDialFailure once connected = %q", got)
		}
	}
	for _, c := range []struct {
		verbose, quiet bool
		want           []string
	}{
		{verbose: true, want: []string{
			"h: connected from local port 812",
			"h: connection from local port 812 lost: connection reset",
			"h: dial from local port 812 failed: connection refused",
			"h: server not responding, still trying",
			"h: server not responding, still trying",
			"h: reconnected: local port 812 → 845 after connection reset, 2.31s without a connection",
			"h: session created slots=64",
		}},
		{want: []string{"h: server not responding, still trying", "h: server OK"}},
		{quiet: true},
	} {
		var lines []string
		feed(&events{server: "h", verbose: c.verbose, quiet: c.quiet, print: func(s string) { lines = append(lines, s) }})
		if strings.Join(lines, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("verbose %t quiet %t: got\n%s\nwant\n%s", c.verbose, c.quiet, strings.Join(lines, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 256 << 20: "256.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
