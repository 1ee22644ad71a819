package rpc

import (
	"fmt"
	"os"
	"time"
)

// TimeoutError is the error of a soft call that went unanswered for its
// budget: Config.SoftTimeouts major timeouts from its start, re-sends on new
// connections included. The call may or may not have run on the server.
type TimeoutError struct {
	XID           uint32
	MajorTimeouts int           // the budget, in major timeouts (Config.SoftTimeouts)
	Waited        time.Duration // from the call's start until it gave up
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("rpc: server not responding: call xid %#08x timed out after %v (%d major timeout(s))", e.XID, e.Waited.Round(time.Millisecond), e.MajorTimeouts)
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
