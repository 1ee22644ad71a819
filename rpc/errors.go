package rpc

import (
	"errors"
	"strconv"
)

// ErrMalformed is wrapped by every error that reports a message which does
// not follow the RFC 5531 layout: truncated, badly padded, an unknown
// discriminant, an opaque_auth body over MaxAuthBody bytes, or a CALL where a
// REPLY was expected. When the fault was found by package xdr, its error
// (xdr.ErrShort, xdr.ErrTooLong, ...) is wrapped too.
var ErrMalformed = errors.New("rpc: malformed message")

// ErrVerifier is wrapped by the error an Auth returns when the verifier of
// an accepted reply does not fit the credential the call was sent with.
var ErrVerifier = errors.New("rpc: reply verifier rejected")

// ErrSysCred is wrapped by the error NewAuthSys returns for a credential
// that does not fit the AUTH_SYS limits (see MaxSysGIDs, MaxMachineName).
var ErrSysCred = errors.New("rpc: invalid AUTH_SYS credential")

// statInfo is the RFC name of a status value and a short description of it.
type statInfo struct{ name, desc string }

// AcceptStat is the status of a call the server accepted (RFC 5531 accept_stat).
// Like syscall.Errno, the type implements error, so errors.Is(err,
// ProgUnavail) matches an *AcceptError carrying that status.
type AcceptStat uint32

// Accept statuses.
const (
	// Success: the call ran; its results follow the reply header.
	Success AcceptStat = 0
	// ProgUnavail: the server does not export the program.
	ProgUnavail AcceptStat = 1
	// ProgMismatch: the server does not support the program version; the
	// reply carries the lowest and highest versions it does support.
	ProgMismatch AcceptStat = 2
	// ProcUnavail: the program has no such procedure.
	ProcUnavail AcceptStat = 3
	// GarbageArgs: the server could not decode the arguments.
	GarbageArgs AcceptStat = 4
	// SystemErr: the server failed for reasons of its own, such as memory
	// allocation.
	SystemErr AcceptStat = 5
)

var acceptStats = [...]statInfo{
	Success:      {"SUCCESS", "success"},
	ProgUnavail:  {"PROG_UNAVAIL", "program unavailable"},
	ProgMismatch: {"PROG_MISMATCH", "program version mismatch"},
	ProcUnavail:  {"PROC_UNAVAIL", "procedure unavailable"},
	GarbageArgs:  {"GARBAGE_ARGS", "server could not decode the arguments"},
	SystemErr:    {"SYSTEM_ERR", "server system error"},
}

func (s AcceptStat) valid() bool { return uint64(s) < uint64(len(acceptStats)) }

// String returns the RFC 5531 name, such as "PROG_MISMATCH".
func (s AcceptStat) String() string {
	if s.valid() {
		return acceptStats[s].name
	}
	return "ACCEPT_STAT(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error returns a description, such as "rpc: program version mismatch".
func (s AcceptStat) Error() string { return "rpc: " + s.desc() }

func (s AcceptStat) desc() string {
	if s.valid() {
		return acceptStats[s].desc
	}
	return "accept status " + strconv.FormatUint(uint64(s), 10)
}

// RejectStat is the reason a server denied a call (RFC 5531 reject_stat).
// Like AcceptStat, each value is an error matched through *DeniedError.
type RejectStat uint32

// Reject statuses.
const (
	// RPCMismatch: the server does not speak RPC version 2; the reply
	// carries the lowest and highest versions it does speak.
	RPCMismatch RejectStat = 0
	// AuthError: the server refused the credential or verifier; the reply
	// carries an AuthStat saying why.
	AuthError RejectStat = 1
)

var rejectStats = [...]statInfo{
	RPCMismatch: {"RPC_MISMATCH", "RPC version mismatch"},
	AuthError:   {"AUTH_ERROR", "authentication error"},
}

func (s RejectStat) valid() bool { return uint64(s) < uint64(len(rejectStats)) }

// String returns the RFC 5531 name, such as "AUTH_ERROR".
func (s RejectStat) String() string {
	if s.valid() {
		return rejectStats[s].name
	}
	return "REJECT_STAT(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error returns a description, such as "rpc: authentication error".
func (s RejectStat) Error() string { return "rpc: " + s.desc() }

func (s RejectStat) desc() string {
	if s.valid() {
		return rejectStats[s].desc
	}
	return "reject status " + strconv.FormatUint(uint64(s), 10)
}

// AuthStat says why a server refused a call's authentication (RFC 5531
// auth_stat, including the RPCSEC_GSS values of RFC 2203). Each value is an
// error matched through *DeniedError: errors.Is(err, AuthTooWeak).
type AuthStat uint32

// Authentication statuses.
const (
	// AuthOK: no failure; servers do not send it in a denied reply.
	AuthOK AuthStat = 0
	// AuthBadCred: the credential is malformed or its seal is broken.
	AuthBadCred AuthStat = 1
	// AuthRejectedCred: the server no longer accepts the credential; the
	// client must establish a new session or context.
	AuthRejectedCred AuthStat = 2
	// AuthBadVerf: the verifier is malformed or its seal is broken.
	AuthBadVerf AuthStat = 3
	// AuthRejectedVerf: the verifier has expired or was replayed.
	AuthRejectedVerf AuthStat = 4
	// AuthTooWeak: the server's security policy requires a stronger flavor
	// than the one used (for example AUTH_SYS on a sec=krb5 export).
	AuthTooWeak AuthStat = 5
	// AuthInvalidResp: the response verifier is invalid.
	AuthInvalidResp AuthStat = 6
	// AuthFailed: authentication failed for an unspecified reason.
	AuthFailed AuthStat = 7
	// AuthKerbGeneric: a Kerberos error.
	AuthKerbGeneric AuthStat = 8
	// AuthTimeExpire: the Kerberos credential has expired.
	AuthTimeExpire AuthStat = 9
	// AuthTktFile: the server could not read its Kerberos ticket file.
	AuthTktFile AuthStat = 10
	// AuthDecode: the server could not decode the authenticator.
	AuthDecode AuthStat = 11
	// AuthNetAddr: the Kerberos ticket names a different network address.
	AuthNetAddr AuthStat = 12
	// RPCSECGSSCredProblem: the server holds no credential for the user
	// (RPCSEC_GSS).
	RPCSECGSSCredProblem AuthStat = 13
	// RPCSECGSSCtxProblem: the RPCSEC_GSS context is unknown or has expired.
	RPCSECGSSCtxProblem AuthStat = 14
)

var authStats = [...]statInfo{
	AuthOK:               {"AUTH_OK", "authentication succeeded"},
	AuthBadCred:          {"AUTH_BADCRED", "bad credential"},
	AuthRejectedCred:     {"AUTH_REJECTEDCRED", "credential rejected, a new session is required"},
	AuthBadVerf:          {"AUTH_BADVERF", "bad verifier"},
	AuthRejectedVerf:     {"AUTH_REJECTEDVERF", "verifier expired or replayed"},
	AuthTooWeak:          {"AUTH_TOOWEAK", "authentication flavor too weak for the server"},
	AuthInvalidResp:      {"AUTH_INVALIDRESP", "invalid response verifier"},
	AuthFailed:           {"AUTH_FAILED", "authentication failed"},
	AuthKerbGeneric:      {"AUTH_KERB_GENERIC", "kerberos error"},
	AuthTimeExpire:       {"AUTH_TIMEEXPIRE", "kerberos credential expired"},
	AuthTktFile:          {"AUTH_TKT_FILE", "kerberos ticket file problem"},
	AuthDecode:           {"AUTH_DECODE", "server could not decode the authenticator"},
	AuthNetAddr:          {"AUTH_NET_ADDR", "wrong network address in kerberos ticket"},
	RPCSECGSSCredProblem: {"RPCSEC_GSS_CREDPROBLEM", "server has no credential for the user"},
	RPCSECGSSCtxProblem:  {"RPCSEC_GSS_CTXPROBLEM", "RPCSEC_GSS context problem"},
}

func (s AuthStat) valid() bool { return uint64(s) < uint64(len(authStats)) }

// String returns the RFC name, such as "AUTH_TOOWEAK".
func (s AuthStat) String() string {
	if s.valid() {
		return authStats[s].name
	}
	return "AUTH_STAT(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error returns a description, such as
// "rpc: authentication flavor too weak for the server".
func (s AuthStat) Error() string { return "rpc: " + s.desc() }

func (s AuthStat) desc() string {
	if s.valid() {
		return authStats[s].desc
	}
	return "authentication status " + strconv.FormatUint(uint64(s), 10)
}

// AcceptError reports a reply whose call the server accepted but did not
// run (MSG_ACCEPTED with a status other than SUCCESS). It unwraps to its
// Stat, so errors.Is(err, ProgMismatch) and errors.As(err, &stat) both work.
// An AcceptError is a plain value: safe for concurrent reads.
type AcceptError struct {
	// Stat is the accept status; never Success.
	Stat AcceptStat
	// Low and High are the lowest and highest program versions the server
	// supports. Set only when Stat is ProgMismatch, zero otherwise.
	Low, High uint32
}

// Error returns a message naming the status, such as
// "rpc: PROG_MISMATCH: server supports versions 2–3".
func (e *AcceptError) Error() string {
	if e.Stat == ProgMismatch {
		return "rpc: PROG_MISMATCH: server supports versions " + versionRange(e.Low, e.High)
	}
	return "rpc: " + e.Stat.String() + ": " + e.Stat.desc()
}

// Unwrap returns e.Stat.
func (e *AcceptError) Unwrap() error { return e.Stat }

// DeniedError reports a reply in which the server denied the call
// (MSG_DENIED). It unwraps to its Stat and, when Stat is AuthError, to its
// Auth as well, so both errors.Is(err, AuthError) and
// errors.Is(err, AuthTooWeak) hold for a refused AUTH_SYS call.
// A DeniedError is a plain value: safe for concurrent reads.
type DeniedError struct {
	// Stat is the reason the call was denied.
	Stat RejectStat
	// Low and High are the lowest and highest RPC versions the server
	// speaks. Set only when Stat is RPCMismatch, zero otherwise.
	Low, High uint32
	// Auth says why authentication failed. Meaningful only when Stat is
	// AuthError. Values this package does not name are kept as received.
	Auth AuthStat
}

// Error returns a message naming the status, such as
// "rpc: AUTH_ERROR: AUTH_TOOWEAK: authentication flavor too weak for the server".
func (e *DeniedError) Error() string {
	switch e.Stat {
	case RPCMismatch:
		return "rpc: RPC_MISMATCH: server supports RPC versions " + versionRange(e.Low, e.High)
	case AuthError:
		return "rpc: AUTH_ERROR: " + e.Auth.String() + ": " + e.Auth.desc()
	}
	return "rpc: " + e.Stat.String() + ": " + e.Stat.desc()
}

// Unwrap returns e.Stat, and e.Auth too when Stat is AuthError.
func (e *DeniedError) Unwrap() []error {
	if e.Stat == AuthError {
		return []error{e.Stat, e.Auth}
	}
	return []error{e.Stat}
}

func versionRange(low, high uint32) string {
	return strconv.FormatUint(uint64(low), 10) + "–" + strconv.FormatUint(uint64(high), 10)
}
