package rpc

import (
	"fmt"

	"github.com/gonfs/nfs/rpc/xdr"
)

// The server's side of the messages, for this package's tests: decoding a
// CALL header and an AUTH_SYS credential, encoding accepted and denied
// replies. They are exported to the tests (package rpc_test) only; a
// client has no use for them, and the test servers of internal/rpctest
// have wire code of their own.

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

func appendOpaqueAuth(e *xdr.Encoder, a OpaqueAuth) {
	e.Uint32(a.Flavor)
	e.Opaque(a.Body)
}

// ParseSysCred decodes the body of an AUTH_SYS credential, as found in
// CallHeader.Cred.Body when Cred.Flavor is AuthFlavorSys. It enforces the
// same limits as NewAuthSys and rejects trailing bytes; any fault returns an
// error wrapping ErrMalformed. It never panics, and it allocates only the
// machine name and the groups.
func ParseSysCred(body []byte) (SysCred, error) {
	var c SysCred
	var d xdr.Decoder
	d.Reset(body)
	c.Stamp = d.Uint32()
	c.Machine = d.String(MaxMachineName)
	c.UID = d.Uint32()
	c.GID = d.Uint32()
	if n := d.Count(MaxSysGIDs, 4); n > 0 {
		c.GIDs = make([]uint32, n)
		for i := range c.GIDs {
			c.GIDs[i] = d.Uint32()
		}
	}
	if d.Err() != nil {
		return SysCred{}, malformed(&d, "AUTH_SYS credential")
	}
	if d.Remaining() != 0 {
		return SysCred{}, fmt.Errorf("%w: AUTH_SYS credential: %d trailing bytes", ErrMalformed, d.Remaining())
	}
	return c, nil
}
