package rpc

import (
	"fmt"

	"github.com/gonfs/nfs/rpc/xdr"
)

// Version is the ONC RPC protocol version this package speaks (rpcvers in
// a call header).
const Version = 2

// MaxAuthBody is the largest body an opaque_auth may carry (RFC 5531).
// Decoders reject longer bodies as malformed.
const MaxAuthBody = 400

// Authentication flavors (RFC 5531 auth_flavor, IANA "RPC Authentication
// Flavor Numbers"), the values of OpaqueAuth.Flavor.
const (
	// AuthFlavorNone: no authentication (AUTH_NONE); the body is empty.
	AuthFlavorNone = 0
	// AuthFlavorSys: UNIX-style uid, gid and groups (AUTH_SYS, once AUTH_UNIX).
	AuthFlavorSys = 1
	// AuthFlavorShort: a server-issued shorthand for an AUTH_SYS credential.
	AuthFlavorShort = 2
	// AuthFlavorDH: Diffie-Hellman authentication (AUTH_DH), obsolete.
	AuthFlavorDH = 3
	// AuthFlavorGSS: RPCSEC_GSS (RFC 2203), carrying Kerberos and others.
	AuthFlavorGSS = 6
)

// Message and reply discriminants (RFC 5531 msg_type, reply_stat).
const (
	msgCall     = 0
	msgReply    = 1
	msgAccepted = 0
	msgDenied   = 1
)

// OpaqueAuth is a credential or verifier as it travels in a message: a
// flavor number and a body of at most MaxAuthBody bytes whose meaning
// depends on the flavor. The verifier given to Auth.Verify aliases the
// message.
type OpaqueAuth struct {
	Flavor uint32
	Body   []byte
}

func parseOpaqueAuth(d *xdr.Decoder) OpaqueAuth {
	return OpaqueAuth{Flavor: d.Uint32(), Body: d.Opaque(MaxAuthBody)}
}

// flavorName returns the RFC name of an authentication flavor, for messages.
func flavorName(f uint32) string {
	switch f {
	case AuthFlavorNone:
		return "AUTH_NONE"
	case AuthFlavorSys:
		return "AUTH_SYS"
	case AuthFlavorShort:
		return "AUTH_SHORT"
	case AuthFlavorDH:
		return "AUTH_DH"
	case AuthFlavorGSS:
		return "RPCSEC_GSS"
	}
	return fmt.Sprintf("flavor %d", f)
}

// malformed returns an error wrapping ErrMalformed that says which part of
// the message was bad and, when the decoder failed, why.
func malformed(d *xdr.Decoder, what string) error {
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}

// AppendCall appends a CALL message header to e: xid, CALL, rpcvers 2, prog,
// vers, proc, then the credential and verifier produced by auth (AuthNone
// when auth is nil). The procedure's arguments follow, appended by the
// caller. It does not allocate when e has room for the header.
func AppendCall(e *xdr.Encoder, xid, prog, vers, proc uint32, auth Auth) {
	start := e.Len()
	appendCallHeader(e, xid, prog, vers, proc)
	if auth == nil {
		auth = AuthNone
	}
	hdr := e.Bytes()
	auth.AppendCredVerf(e, hdr[start:len(hdr):len(hdr)])
}

// ParseReply reads a REPLY header from d, which is positioned at the start
// of the message (the xid). A nil auth means AuthNone.
//
// On an accepted SUCCESS it checks the reply verifier with auth.Verify and
// leaves d at the first byte of the procedure's results, returning the xid
// and a nil error. Any other outcome returns the xid (zero if even that was
// missing) and one of:
//
//   - *AcceptError, when the server accepted the call but did not run it;
//   - *DeniedError, when the server denied the call;
//   - the error auth.Verify returned;
//   - an error wrapping ErrMalformed, for a truncated header, an opaque_auth
//     body over MaxAuthBody bytes, bad padding, an unknown reply_stat,
//     accept_stat or reject_stat, or a CALL instead of a REPLY.
//
// After a typed error d is left just past the header. ParseReply never
// panics, whatever d holds, and does not allocate on success.
func ParseReply(d *xdr.Decoder, auth Auth) (xid uint32, err error) {
	if auth == nil {
		auth = AuthNone
	}
	return parseReply(d, auth)
}

// parseReply is ParseReply with v checking the verifier of a SUCCESS.
func parseReply(d *xdr.Decoder, v verifier) (xid uint32, err error) {
	xid = d.Uint32()
	mtype := d.Uint32()
	if d.Err() != nil {
		return xid, malformed(d, "reply header")
	}
	if mtype != msgReply {
		if mtype == msgCall {
			return xid, fmt.Errorf("%w: got a CALL where a REPLY was expected", ErrMalformed)
		}
		return xid, fmt.Errorf("%w: unknown msg_type %d", ErrMalformed, mtype)
	}
	switch rstat := d.Uint32(); {
	case d.Err() != nil:
		return xid, malformed(d, "reply header")
	case rstat == msgAccepted:
		return xid, parseAccepted(d, v)
	case rstat == msgDenied:
		return xid, parseDenied(d)
	default:
		return xid, fmt.Errorf("%w: unknown reply_stat %d", ErrMalformed, rstat)
	}
}

// parseAccepted reads the accepted_reply arm: verifier, accept_stat and,
// for PROG_MISMATCH, the supported version range.
func parseAccepted(d *xdr.Decoder, v verifier) error {
	verf := parseOpaqueAuth(d)
	stat := AcceptStat(d.Uint32())
	if d.Err() != nil {
		return malformed(d, "accepted reply")
	}
	switch stat {
	case Success:
		return v.Verify(verf)
	case ProgMismatch:
		low, high := d.Uint32(), d.Uint32()
		if d.Err() != nil {
			return malformed(d, "PROG_MISMATCH version range")
		}
		return &AcceptError{Stat: stat, Low: low, High: high}
	case ProgUnavail, ProcUnavail, GarbageArgs, SystemErr:
		return &AcceptError{Stat: stat}
	}
	return fmt.Errorf("%w: unknown accept_stat %d", ErrMalformed, uint32(stat))
}

// parseDenied reads the rejected_reply arm.
func parseDenied(d *xdr.Decoder) error {
	stat := RejectStat(d.Uint32())
	if d.Err() != nil {
		return malformed(d, "denied reply")
	}
	switch stat {
	case RPCMismatch:
		low, high := d.Uint32(), d.Uint32()
		if d.Err() != nil {
			return malformed(d, "RPC_MISMATCH version range")
		}
		return &DeniedError{Stat: stat, Low: low, High: high}
	case AuthError:
		// auth_stat is an open registry (RPCSEC_GSSv3 added values after
		// RFC 5531): an unnamed value is reported as received, not as
		// malformed.
		as := AuthStat(d.Uint32())
		if d.Err() != nil {
			return malformed(d, "AUTH_ERROR status")
		}
		return &DeniedError{Stat: stat, Auth: as}
	}
	return fmt.Errorf("%w: unknown reject_stat %d", ErrMalformed, uint32(stat))
}

// appendCallHeader appends a CALL header up to the credential.
func appendCallHeader(e *xdr.Encoder, xid, prog, vers, proc uint32) {
	e.Uint32(xid)
	e.Uint32(msgCall)
	e.Uint32(Version)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
}
