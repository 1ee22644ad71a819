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
// depends on the flavor. Bodies returned by ParseCall alias the message.
type OpaqueAuth struct {
	Flavor uint32
	Body   []byte
}

func appendOpaqueAuth(e *xdr.Encoder, a OpaqueAuth) {
	e.Uint32(a.Flavor)
	e.Opaque(a.Body)
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
	e.Uint32(xid)
	e.Uint32(msgCall)
	e.Uint32(Version)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
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
		return xid, parseAccepted(d, auth)
	case rstat == msgDenied:
		return xid, parseDenied(d)
	default:
		return xid, fmt.Errorf("%w: unknown reply_stat %d", ErrMalformed, rstat)
	}
}

// parseAccepted reads the accepted_reply arm: verifier, accept_stat and,
// for PROG_MISMATCH, the supported version range.
func parseAccepted(d *xdr.Decoder, auth Auth) error {
	verf := parseOpaqueAuth(d)
	stat := AcceptStat(d.Uint32())
	if d.Err() != nil {
		return malformed(d, "accepted reply")
	}
	switch stat {
	case Success:
		if auth == nil {
			auth = AuthNone
		}
		return auth.Verify(verf)
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

// CallHeader is a decoded CALL message header, as a server sees it.
// Cred.Body and Verf.Body alias the message they were parsed from.
type CallHeader struct {
	XID     uint32
	RPCVers uint32
	Prog    uint32
	Vers    uint32
	Proc    uint32
	Cred    OpaqueAuth
	Verf    OpaqueAuth
}

// ParseCall reads a CALL header from d, which is positioned at the start of
// the message, and leaves d at the first byte of the arguments. It is meant
// for servers and test peers; clients use ParseReply.
//
// When rpcvers is not 2 the rest of the header cannot be trusted, so
// ParseCall stops there and returns the header with XID and RPCVers set and
// a *DeniedError{Stat: RPCMismatch, Low: 2, High: 2}, which is what a server
// should answer (see AppendDeniedReply). Any other fault returns an error
// wrapping ErrMalformed. ParseCall never panics, and it does not allocate
// when it succeeds.
func ParseCall(d *xdr.Decoder) (CallHeader, error) {
	var h CallHeader
	h.XID = d.Uint32()
	mtype := d.Uint32()
	h.RPCVers = d.Uint32()
	if d.Err() != nil {
		return h, malformed(d, "call header")
	}
	if mtype != msgCall {
		if mtype == msgReply {
			return h, fmt.Errorf("%w: got a REPLY where a CALL was expected", ErrMalformed)
		}
		return h, fmt.Errorf("%w: unknown msg_type %d", ErrMalformed, mtype)
	}
	if h.RPCVers != Version {
		return h, &DeniedError{Stat: RPCMismatch, Low: Version, High: Version}
	}
	h.Prog = d.Uint32()
	h.Vers = d.Uint32()
	h.Proc = d.Uint32()
	h.Cred = parseOpaqueAuth(d)
	h.Verf = parseOpaqueAuth(d)
	if d.Err() != nil {
		return h, malformed(d, "call header")
	}
	return h, nil
}

// AppendAcceptedReply appends the header of an accepted reply: xid, REPLY,
// MSG_ACCEPTED, the verifier and stat. For ProgMismatch the supported
// version range low..high follows; for other statuses low and high are
// ignored. For Success the caller appends the results. verf.Body must be
// at most MaxAuthBody bytes or peers will reject the reply.
func AppendAcceptedReply(e *xdr.Encoder, xid uint32, verf OpaqueAuth, stat AcceptStat, low, high uint32) {
	e.Uint32(xid)
	e.Uint32(msgReply)
	e.Uint32(msgAccepted)
	appendOpaqueAuth(e, verf)
	e.Uint32(uint32(stat))
	if stat == ProgMismatch {
		e.Uint32(low)
		e.Uint32(high)
	}
}

// AppendDeniedReply appends a denied reply: xid, REPLY, MSG_DENIED and stat,
// followed for RPCMismatch by the supported RPC version range low..high, or
// for AuthError by auth. Arguments that stat does not use are ignored.
func AppendDeniedReply(e *xdr.Encoder, xid uint32, stat RejectStat, low, high uint32, auth AuthStat) {
	e.Uint32(xid)
	e.Uint32(msgReply)
	e.Uint32(msgDenied)
	e.Uint32(uint32(stat))
	switch stat {
	case RPCMismatch:
		e.Uint32(low)
		e.Uint32(high)
	case AuthError:
		e.Uint32(uint32(auth))
	}
}
