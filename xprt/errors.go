package xprt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/gonfs/nfs/policy"
)

// ErrClosed is returned by Conn once Close has been called.
var ErrClosed = errors.New("xprt: transport closed")

// ErrReservedPort matches, through errors.Is, a DialError whose bind of a
// chosen local port failed with EACCES.
var ErrReservedPort = errors.New("xprt: " + reservedAdvice)

// reservedAdvice says what to do when a reserved port cannot be bound.
const reservedAdvice = "binding a reserved port needs root or CAP_NET_BIND_SERVICE; " +
	`an ephemeral-port policy works instead with exports that accept non-reserved ports ("insecure")`

// errNoDial is the error of a transport whose policy gave up before any
// dial and before any connection had failed.
var errNoDial = errors.New("xprt: policy gave up before dialing")

// DialError is a failed attempt to connect, and the final error of a
// transport whose policy gave up.
type DialError struct {
	// Addr is the server dialed.
	Addr string
	// Port is the local port dialed from; 0 for a port chosen by the kernel
	// or when the policy gave up without dialing.
	Port int
	// Cause classifies Err (see Classify).
	Cause policy.Cause
	// Err is what failed, usually a *net.OpError.
	Err error
}

// Error says which dial failed and why. A refused reserved port adds what
// to do about it (see ErrReservedPort).
func (e *DialError) Error() string {
	if e.Err == errNoDial {
		return "xprt: " + e.Addr + ": the policy gave up before dialing"
	}
	msg := "xprt: dial " + e.Addr
	if e.Port != 0 {
		msg += " from port " + strconv.Itoa(e.Port)
	}
	msg += ": " + e.Cause.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.reservedDenied() {
		msg += " (" + reservedAdvice + ")"
	}
	return msg
}

// Unwrap returns Err.
func (e *DialError) Unwrap() error { return e.Err }

// Is reports whether target is ErrReservedPort and binding Port failed with
// EACCES.
func (e *DialError) Is(target error) bool {
	return target == ErrReservedPort && e.reservedDenied()
}

// reservedDenied reports whether binding the chosen port was not permitted.
func (e *DialError) reservedDenied() bool {
	if e.Port == 0 {
		return false
	}
	var se *os.SyscallError
	return errors.As(e.Err, &se) && se.Syscall == "bind" && errors.Is(se.Err, syscall.EACCES)
}

// Classify says what kind of failure err is, for dial errors and for I/O
// errors on established connections alike:
//
//   - an error with a MajorTimeout() bool method reporting true (package
//     rpc's timeouts): CauseMajorTimeout
//   - ErrDeadPath (the path watch): CauseProbeTimeout
//   - a *DialError: its Cause
//   - io.EOF, io.ErrUnexpectedEOF: CauseClosed
//   - ECONNRESET, EPIPE, ECONNABORTED: CauseReset
//   - ECONNREFUSED: CauseRefused
//   - EADDRINUSE, EADDRNOTAVAIL: CauseAddrInUse
//   - EACCES, EPERM: CausePermission
//   - ETIMEDOUT: CauseDialTimeout while dialing; CauseDeadPeer on an
//     established connection (TCP_USER_TIMEOUT or keepalive gave up)
//   - ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN: CauseUnreachable
//     while dialing; CauseDeadPeer on an established connection
//   - a dial that timed out (net.Error Timeout, context.DeadlineExceeded):
//     CauseDialTimeout
//   - anything else, including nil: CauseOther
//
// An error counts as a dial error when it is, or wraps, a *net.OpError
// whose Op is "dial".
func Classify(err error) policy.Cause {
	if err == nil {
		return policy.CauseOther
	}
	var mt interface{ MajorTimeout() bool }
	if errors.As(err, &mt) && mt.MajorTimeout() {
		return policy.CauseMajorTimeout
	}
	if errors.Is(err, ErrDeadPath) {
		return policy.CauseProbeTimeout
	}
	var de *DialError
	if errors.As(err, &de) {
		return de.Cause
	}
	var oe *net.OpError
	dialing := errors.As(err, &oe) && oe.Op == "dial"
	return classify(err, dialing)
}

// classify is Classify once it is known whether err came from a dial.
func classify(err error, dialing bool) policy.Cause {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return policy.CauseClosed
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED:
			return policy.CauseReset
		case syscall.ECONNREFUSED:
			return policy.CauseRefused
		case syscall.EADDRINUSE, syscall.EADDRNOTAVAIL:
			return policy.CauseAddrInUse
		case syscall.EACCES, syscall.EPERM:
			return policy.CausePermission
		case syscall.ETIMEDOUT:
			if dialing {
				return policy.CauseDialTimeout
			}
			return policy.CauseDeadPeer
		case syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN:
			if dialing {
				return policy.CauseUnreachable
			}
			return policy.CauseDeadPeer
		}
	}
	if dialing {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return policy.CauseDialTimeout
		}
	}
	return policy.CauseOther
}
