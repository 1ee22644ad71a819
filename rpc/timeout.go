package rpc

import (
	"fmt"
	"os"
	"time"
)

// TimeoutError is the error of a soft call that went unanswered through
// its allowed number of major timeouts. The call may or may not have run
// on the server.
type TimeoutError struct {
	XID           uint32
	MajorTimeouts int           // major timeouts the call went through
	Waited        time.Duration // MajorTimeouts × Timeo × Retrans
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("rpc: server not responding: call xid %#08x timed out after %d major timeout(s) (%v)", e.XID, e.MajorTimeouts, e.Waited)
}

// Timeout reports true, like net.Error.
func (e *TimeoutError) Timeout() bool { return true }

// Is matches ErrTimeout and os.ErrDeadlineExceeded, the standard library's
// "an I/O deadline passed" sentinel.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == os.ErrDeadlineExceeded
}

// majorTimeoutError is the cause a Client reports to its Transport when it
// drops a connection after a major timeout. Transports recognise it by its
// MajorTimeout method without importing this package.
type majorTimeoutError struct{}

func (majorTimeoutError) Error() string      { return "rpc: major timeout: server not responding" }
func (majorTimeoutError) Timeout() bool      { return true }
func (majorTimeoutError) MajorTimeout() bool { return true }

var errMajorTimeout error = majorTimeoutError{}
