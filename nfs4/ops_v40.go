package nfs4

import (
	"errors"
	"fmt"
)

// Operations of NFSv4.0 alone: SETCLIENTID, SETCLIENTID_CONFIRM, RENEW and
// OPEN_CONFIRM (RFC 7530 §16.33, §16.34, §16.24, §16.18). NFSv4.1 replaced
// them with EXCHANGE_ID, CREATE_SESSION and SEQUENCE.

// maxNetIDLen and maxUAddrLen bound the netid and universal address of a
// netaddr4 in a reply (CLID_INUSE); "tcp6" and a full IPv6 uaddr fit.
const (
	maxNetIDLen = 16
	maxUAddrLen = 128
)

// setClientIDArgs are the arguments of SETCLIENTID. The callback is one
// the server cannot use: this client runs no callback service (see
// v40.go).
type setClientIDArgs struct {
	verifier   verifier // the client's boot verifier
	id         []byte   // the client's long-lived identity, 1 to 1024 bytes
	cbProgram  uint32
	cbNetID    string // r_netid of the callback address
	cbAddr     string // r_addr, a universal address
	callbackID uint32
}

// setClientID adds SETCLIENTID.
func (c *compound) setClientID(a *setClientIDArgs) {
	if len(a.id) == 0 || len(a.id) > opaqueLimit {
		c.fail(fmt.Errorf("nfs4: client identity of %d bytes; want 1 to %d", len(a.id), opaqueLimit))
		return
	}
	if len(a.cbNetID) > maxNetIDLen || len(a.cbAddr) > maxUAddrLen {
		c.fail(errors.New("nfs4: callback address too long"))
		return
	}
	if !c.op(opSetClientID) {
		return
	}
	c.e.FixedOpaque(a.verifier[:])
	c.e.Opaque(a.id)
	c.e.Uint32(a.cbProgram)
	c.e.String(a.cbNetID)
	c.e.String(a.cbAddr)
	c.e.Uint32(a.callbackID)
}

// setClientIDRes is a SETCLIENTID4resok; inUse, for NFS4ERR_CLID_INUSE,
// is the address of the client that holds the identity (for the log).
type setClientIDRes struct {
	clientID uint64
	confirm  verifier
	inUse    string
}

// setClientID reads a SETCLIENTID result into res.
func (r *reply) setClientID(res *setClientIDRes) error {
	st, err := r.begin(opSetClientID)
	if err != nil {
		return err
	}
	d := &r.d
	switch st {
	case OK:
		res.clientID = d.Uint64()
		copy(res.confirm[:], d.FixedOpaque(verifierSize))
	case ErrClidInUse:
		netid := d.Opaque(maxNetIDLen)
		addr := d.Opaque(maxUAddrLen)
		res.inUse = string(netid) + " " + string(addr)
	}
	return r.done(opSetClientID, st)
}

// setClientIDConfirm adds SETCLIENTID_CONFIRM.
func (c *compound) setClientIDConfirm(clientID uint64, confirm *verifier) {
	if c.op(opSetClientIDConfirm) {
		c.e.Uint64(clientID)
		c.e.FixedOpaque(confirm[:])
	}
}

// renew adds RENEW.
func (c *compound) renew(clientID uint64) {
	if c.op(opRenew) {
		c.e.Uint64(clientID)
	}
}

// openConfirm adds OPEN_CONFIRM of the open stateid sid with the open
// owner's sequence id seqid.
func (c *compound) openConfirm(sid *stateID, seqid uint32) {
	if c.op(opOpenConfirm) {
		encodeStateID(c.e, sid)
		c.e.Uint32(seqid)
	}
}

// openConfirm reads an OPEN_CONFIRM result: the confirmed open stateid.
func (r *reply) openConfirm(sid *stateID) error {
	if err := r.head(opOpenConfirm); err != nil {
		return err
	}
	decodeStateID(&r.d, sid)
	return r.done(opOpenConfirm, OK)
}
