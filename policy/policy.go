package policy

import (
	"fmt"
	"net/netip"
	"time"
)

// Cause says why a dial is about to happen.
type Cause int

const (
	// CauseInitial: the first connection of a transport.
	CauseInitial Cause = iota
	// CauseClosed: the server closed the connection (FIN).
	CauseClosed
	// CauseReset: the connection was reset (RST) or another I/O error hit it.
	CauseReset
	// CauseDeadPeer: keepalive probes or TCP_USER_TIMEOUT declared the path dead.
	CauseDeadPeer
	// CauseMajorTimeout: an RPC went unanswered for timeo × retrans and the
	// client dropped the connection to retry on a new one.
	CauseMajorTimeout
	// CauseRefused: the previous dial was refused (RST to our SYN).
	CauseRefused
	// CauseDialTimeout: the previous dial got no answer in time.
	CauseDialTimeout
	// CauseAddrInUse: the local port asked for was in use (EADDRINUSE or
	// EADDRNOTAVAIL for the 4-tuple). Policies should pick another port and
	// not take a backoff step.
	CauseAddrInUse
	// CausePermission: binding a reserved port was not permitted (EACCES).
	CausePermission
	// CauseUnreachable: no route, network or host unreachable.
	CauseUnreachable
	// CauseOther: any other failure.
	CauseOther
	// CauseProbeTimeout: replies were overdue, the server had gone silent,
	// and the transport's probe of the path went unacknowledged.
	CauseProbeTimeout
	// CauseSuspect: no connection was lost. Replies are overdue on the
	// current one, the server has gone silent, and a probe of its path is
	// out; the dial is for a spare connection, which replaces the current
	// one at once if the probe goes unacknowledged (CauseProbeTimeout) and
	// is closed unused if the path proves alive. The transport dials no
	// leg from the current connection's own port to its own address (that
	// 4-tuple is taken), and opens no spare for a Decision with a Wait or
	// GiveUp (which here does not end the transport). A policy that
	// wants no spare answers with the current port (Attempt.PrevPort) and
	// address (Attempt.PrevAddr, DefaultAddr's choice when it is still
	// among Attempt.Addrs).
	CauseSuspect
	numCauses
)

var causeNames = [...]string{
	CauseInitial:      "initial",
	CauseClosed:       "closed by server",
	CauseReset:        "connection reset",
	CauseDeadPeer:     "dead peer",
	CauseMajorTimeout: "major timeout",
	CauseRefused:      "connection refused",
	CauseDialTimeout:  "dial timeout",
	CauseAddrInUse:    "address in use",
	CausePermission:   "permission denied",
	CauseUnreachable:  "unreachable",
	CauseOther:        "other",
	CauseProbeTimeout: "probe unacknowledged",
	CauseSuspect:      "path suspect",
}

// String returns a short description of c, such as "connection refused".
func (c Cause) String() string {
	if c >= 0 && c < numCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// NumCauses is the number of defined causes, for tables indexed by Cause.
const NumCauses = int(numCauses)

// Attempt describes the dial about to be made.
type Attempt struct {
	// N counts dial attempts since the last connection that answered a call
	// (1 for the first).
	N int
	// PrevPort is the local port of the last established connection, 0 if
	// there has been none.
	PrevPort int
	// Cause is why the transport is dialing: what ended the last connection
	// (for the first attempt after it) or what failed the last attempt.
	Cause Cause
	// Err is the error behind Cause, if any.
	Err error
	// Down is how long the transport has been without a connection.
	Down time.Duration
	// ReservedDenied is true once binding a reserved port has failed with
	// EACCES on this transport; a policy should then choose port 0.
	ReservedDenied bool
	// Addrs are the server's addresses for this dial, never empty: those
	// the transport was given, names resolved again for every attempt
	// (floating IPs and cloud mount targets move), in the order given.
	Addrs []netip.AddrPort
	// PrevAddr is the server address of the last established connection,
	// LastAddr the one the previous attempt dialed; each is the zero
	// AddrPort if there was none.
	PrevAddr, LastAddr netip.AddrPort
}

// Decision is a policy's answer for one attempt.
type Decision struct {
	// Wait is how long to wait before dialing.
	Wait time.Duration
	// Port is the local port to dial from; 0 lets the kernel choose an
	// ephemeral port.
	Port int
	// HedgeAfter, when positive, asks for a second, parallel dial from
	// HedgePort if the first has not connected within HedgeAfter. The
	// first to connect wins; the other is closed.
	HedgeAfter time.Duration
	// HedgePort is the local port of the hedged dial (0 = ephemeral).
	HedgePort int
	// Addr is the server address to dial, one of Attempt.Addrs; HedgeAddr
	// that of the hedged dial. Zero: DefaultAddr(a) for Addr, Addr for
	// HedgeAddr. An address not among Attempt.Addrs is dialed all the
	// same.
	Addr, HedgeAddr netip.AddrPort
	// GiveUp stops redialing; the transport fails with the last error.
	GiveUp bool
}

// Policy chooses the server address, the local port and the wait before
// each dial.
//
// A transport consults its policy only when it dials, never per call.
// A Policy value belongs to one transport: implementations need not be safe
// for concurrent use, and the stock ones are not.
type Policy interface {
	// Next decides the next dial.
	Next(a Attempt) Decision
	// Reset is called when a connection has answered a call (a whole
	// reply, not merely bytes), so the next failure starts a fresh backoff
	// sequence.
	Reset()
}

// Func adapts a function to a Policy whose Reset does nothing.
type Func func(Attempt) Decision

// Next calls f(a).
func (f Func) Next(a Attempt) Decision { return f(a) }

// Reset does nothing.
func (Func) Reset() {}
