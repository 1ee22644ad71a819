package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// opError is a failure that ends the run: nfscp prints
// "nfscp: NAME: REASON" and exits with status 1.
type opError struct {
	name string // the argument, local path or nfs:// URL at fault; "" if none
	err  error
}

func (e *opError) Error() string {
	if e.name == "" {
		return reason(e.err)
	}
	return e.name + ": " + reason(e.err)
}

func (e *opError) Unwrap() error { return e.err }

// reservedPortAdvice is the reason given when a reserved source port
// cannot be bound.
const reservedPortAdvice = "binding a reserved source port (below 1024) needs root or CAP_NET_BIND_SERVICE; " +
	"--policy ephemeral works with exports that accept non-reserved ports"

// timeoutError is the cause of a run's context ending at --timeout.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("timed out after %s (--timeout)", e.d) }

// Is makes the cause match context.DeadlineExceeded, as the context's own
// error does.
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// errInterrupted is the cause of a run's context ending at SIGINT or
// SIGTERM.
var errInterrupted = fmt.Errorf("interrupted: %w", context.Canceled)

// plainError is a reason already worded for the user.
type plainError string

func (e plainError) Error() string { return string(e) }

// reason words err as the part of a message after the file name, the way
// package os and the shell word errno values: "no such file or directory".
func reason(err error) string {
	var te *timeoutError
	var se nfs4.Status
	var errno syscall.Errno
	var pe plainError
	var rt *rpc.TimeoutError
	var refused *nfs4.PortRefusedError
	var ve *nfs4.VersionError
	if msg := tlsReason(err); msg != "" {
		return msg
	}
	switch {
	case errors.As(err, &pe):
		return string(pe)
	case errors.Is(err, xprt.ErrReservedPort):
		return reservedPortAdvice
	case errors.As(err, &refused):
		return fmt.Sprintf("the server refused source port %d: its export accepts only reserved ports (below 1024); "+
			"export it with \"insecure\", or run nfscp as root or with CAP_NET_BIND_SERVICE (and not with --policy ephemeral)", refused.Port)
	case errors.As(err, &ve):
		return versionAdvice(ve)
	case errors.As(err, &te):
		return te.Error()
	case errors.Is(err, errInterrupted):
		return "interrupted"
	case errors.As(err, &rt):
		return fmt.Sprintf("server not responding (soft: gave up after %s)", roundDuration(rt.Waited))
	case errors.As(err, &se):
		return statusReason(se)
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, rpc.ErrClosed):
		return "connection closed"
	}
	// An error of another kind: drop the operation and path that
	// *fs.PathError and *os.LinkError put first, and the package prefixes
	// of wrapped errors, keeping the innermost message.
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	switch {
	case errors.As(err, &pathErr):
		return reason(pathErr.Err)
	case errors.As(err, &linkErr):
		return reason(linkErr.Err)
	}
	msg := err.Error()
	for _, p := range []string{"nfs4: ", "rpc: ", "xprt: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// statusReason words an NFS status: as the errno a POSIX client reports
// when there is an exact one, by its RFC name otherwise.
func statusReason(s nfs4.Status) string {
	if e := s.Errno(); e != syscall.EIO || s == nfs4.ErrIO {
		return e.Error()
	}
	return "server error " + s.String()
}

// versionAdvice words a server's refusal of the NFS versions tried, with
// what to try instead.
func versionAdvice(ve *nfs4.VersionError) string {
	if len(ve.Tried) > 1 {
		return "the server speaks none of NFSv4.2, NFSv4.1 and NFSv4.0, the versions nfscp speaks (NFS4ERR_MINOR_VERS_MISMATCH)"
	}
	refused, other := "4.0", "4.1"
	if len(ve.Tried) == 1 && ve.Tried[0] > 0 {
		refused = fmt.Sprintf("4.%d", ve.Tried[0])
		other = fmt.Sprintf("4.%d", ve.Tried[0]-1)
	}
	return "the server refused NFSv" + refused + " (NFS4ERR_MINOR_VERS_MISMATCH); try --nfs-version " + other +
		" (or ?version=" + other + "), or leave the version to nfscp"
}
