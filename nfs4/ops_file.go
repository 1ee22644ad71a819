package nfs4

import (
	"errors"
	"fmt"
	"math"
)

// Operations on a file's open state and data: OPEN, CLOSE,
// OPEN_DOWNGRADE, DELEGRETURN, READ, WRITE, COMMIT (RFC 8881 §18.2, §18.3,
// §18.6, §18.16, §18.18, §18.22, §18.32).

// openArgs are the arguments of OPEN.
type openArgs struct {
	seqid       uint32 // NFSv4.0: the open owner's sequence id; always 0 in NFSv4.1
	shareAccess uint32 // OPEN4_SHARE_ACCESS_* with optional WANT_* bits
	shareDeny   uint32 // OPEN4_SHARE_DENY_*
	clientID    uint64 // the open owner's client ID
	owner       []byte // the open owner, 1 to 1024 bytes

	create     bool     // OPEN4_CREATE; otherwise OPEN4_NOCREATE
	createMode uint32   // UNCHECKED4, GUARDED4, EXCLUSIVE4 or EXCLUSIVE4_1
	attrs      *sattr   // initial attributes (not for EXCLUSIVE4); nil for none
	verf       verifier // EXCLUSIVE4 and EXCLUSIVE4_1

	claim        uint32  // CLAIM_*
	name         string  // CLAIM_NULL, CLAIM_DELEGATE_CUR, CLAIM_DELEGATE_PREV
	delegType    uint32  // CLAIM_PREVIOUS: the delegation held before the restart
	delegStateID stateID // CLAIM_DELEGATE_CUR, CLAIM_DELEG_CUR_FH
}

// open adds OPEN.
func (c *compound) open(a *openArgs) {
	if len(a.owner) == 0 || len(a.owner) > opaqueLimit {
		c.fail(fmt.Errorf("nfs4: open owner of %d bytes; want 1 to %d", len(a.owner), opaqueLimit))
		return
	}
	if a.create {
		switch a.createMode {
		case createUnchecked, createGuarded, createExclusive41:
			if !c.checkSattr(a.attrs) {
				return
			}
		case createExclusive:
			if a.attrs != nil {
				c.fail(errors.New("nfs4: EXCLUSIVE4 create carries no attributes"))
				return
			}
		default:
			c.fail(fmt.Errorf("nfs4: unknown create mode %d", a.createMode))
			return
		}
	}
	switch a.claim {
	case claimNull, claimDelegateCur, claimDelegatePrev:
		if !c.checkNames(a.name) {
			return
		}
	case claimPrevious, claimFH, claimDelegCurFH, claimDelegPrevFH:
	default:
		c.fail(fmt.Errorf("nfs4: unknown open claim %d", a.claim))
		return
	}
	if !c.op(opOpen) {
		return
	}
	e := c.e
	e.Uint32(a.seqid)
	e.Uint32(a.shareAccess)
	e.Uint32(a.shareDeny)
	e.Uint64(a.clientID)
	e.Opaque(a.owner)
	if !a.create {
		e.Uint32(open4NoCreate)
	} else {
		e.Uint32(open4Create)
		e.Uint32(a.createMode)
		switch a.createMode {
		case createUnchecked, createGuarded:
			encodeFattr(e, a.attrs)
		case createExclusive:
			e.FixedOpaque(a.verf[:])
		case createExclusive41:
			e.FixedOpaque(a.verf[:])
			encodeFattr(e, a.attrs)
		}
	}
	e.Uint32(a.claim)
	switch a.claim {
	case claimNull, claimDelegatePrev:
		e.String(a.name)
	case claimPrevious:
		e.Uint32(a.delegType)
	case claimDelegateCur:
		encodeStateID(e, &a.delegStateID)
		e.String(a.name)
	case claimDelegCurFH:
		encodeStateID(e, &a.delegStateID)
	}
}

// delegation is the open_delegation4 of an OPEN result. The space limit
// and ACE of a granted delegation are read past, not kept.
type delegation struct {
	typ     uint32  // OPEN_DELEGATE_*
	stateID stateID // READ and WRITE
	recall  bool    // READ and WRITE: already being recalled
	whyNone uint32  // NONE_EXT: WND4_*
	// willSignal is, for NONE_EXT with WND4_CONTENTION or WND4_RESOURCE,
	// whether the server will push the delegation or signal availability.
	willSignal bool
}

// openRes is an OPEN4resok.
type openRes struct {
	stateID stateID
	cinfo   changeInfo // of the directory, when a file was created
	rflags  uint32     // OPEN4_RESULT_*
	attrset AttrMask   // attributes the create set
	deleg   delegation
}

// open reads an OPEN result into res. The delegation, if any, is decoded
// so that the caller can return it; it does not break parsing.
func (r *reply) open(res *openRes) error {
	if err := r.head(opOpen); err != nil {
		return err
	}
	d := &r.d
	decodeStateID(d, &res.stateID)
	decodeChangeInfo(d, &res.cinfo)
	res.rflags = d.Uint32()
	var extra bool
	res.attrset, extra = decodeBitmap(d)
	if extra {
		d.SetErr(errors.New("nfs4: OPEN set attributes numbered 96 or above"))
	}
	dl := &res.deleg
	*dl = delegation{typ: d.Uint32()}
	switch dl.typ {
	case delegNone:
	case delegRead:
		decodeStateID(d, &dl.stateID)
		dl.recall = d.Bool()
		skipACE(d)
	case delegWrite:
		decodeStateID(d, &dl.stateID)
		dl.recall = d.Bool()
		switch limit := d.Uint32(); limit {
		case limitSize, limitBlocks: // filesize, or num_blocks and bytes_per_block
			d.Skip(8)
		default:
			d.SetErr(fmt.Errorf("nfs4: unknown space limit %d", limit))
		}
		skipACE(d)
	case delegNoneExt:
		dl.whyNone = d.Uint32()
		if dl.whyNone == wndContention || dl.whyNone == wndResource {
			dl.willSignal = d.Bool()
		}
	default:
		d.SetErr(fmt.Errorf("nfs4: unknown delegation type %d", dl.typ))
	}
	return r.done(opOpen, OK)
}

// close adds CLOSE of the open stateid sid.
func (c *compound) close(sid *stateID) { c.closeSeq(sid, 0) }

// closeSeq adds CLOSE with the open owner's sequence id seqid (NFSv4.0;
// always 0 in NFSv4.1).
func (c *compound) closeSeq(sid *stateID, seqid uint32) {
	if c.op(opClose) {
		c.e.Uint32(seqid)
		encodeStateID(c.e, sid)
	}
}

// close reads a CLOSE result: the final open stateid.
func (r *reply) close(sid *stateID) error {
	if err := r.head(opClose); err != nil {
		return err
	}
	decodeStateID(&r.d, sid)
	return r.done(opClose, OK)
}

// openDowngrade adds OPEN_DOWNGRADE of sid to the given share bits.
func (c *compound) openDowngrade(sid *stateID, shareAccess, shareDeny uint32) {
	if c.op(opOpenDowngrade) {
		encodeStateID(c.e, sid)
		c.e.Uint32(0) // seqid
		c.e.Uint32(shareAccess)
		c.e.Uint32(shareDeny)
	}
}

// openDowngrade reads an OPEN_DOWNGRADE result: the new open stateid.
func (r *reply) openDowngrade(sid *stateID) error {
	if err := r.head(opOpenDowngrade); err != nil {
		return err
	}
	decodeStateID(&r.d, sid)
	return r.done(opOpenDowngrade, OK)
}

// delegReturn adds DELEGRETURN; its result is statusOnly.
func (c *compound) delegReturn(sid *stateID) {
	if c.op(opDelegReturn) {
		encodeStateID(c.e, sid)
	}
}

// read adds READ of count bytes at off.
func (c *compound) read(sid *stateID, off uint64, count uint32) {
	if c.op(opRead) {
		encodeStateID(c.e, sid)
		c.e.Uint64(off)
		c.e.Uint32(count)
	}
}

// read reads a READ result of at most count bytes (the count asked for;
// more is a malformed reply). The data aliases the reply body, so a
// caller that reads into its own buffer copies once, from the record the
// transport received into it.
func (r *reply) read(count uint32) (data []byte, eof bool, err error) {
	if err := r.head(opRead); err != nil {
		return nil, false, err
	}
	eof = r.d.Bool()
	data = r.d.Payload(int(min(count, math.MaxInt32))) // perhaps read into the caller's buffer (payload.go)
	if err := r.done(opRead, OK); err != nil {
		return nil, false, err
	}
	return data, eof, nil
}

// write adds WRITE of data at off with the given stable_how4.
func (c *compound) write(sid *stateID, off uint64, stable uint32, data []byte) {
	if uint64(len(data)) > math.MaxUint32 {
		c.fail(errors.New("nfs4: WRITE of 4 GiB or more"))
		return
	}
	if stable > fileSync4 {
		c.fail(fmt.Errorf("nfs4: unknown stable_how4 %d", stable))
		return
	}
	if c.op(opWrite) {
		encodeStateID(c.e, sid)
		c.e.Uint64(off)
		c.e.Uint32(stable)
		c.e.Uint32(uint32(len(data)))
		c.e.Payload(data) // by reference where package rpc allows it
	}
}

// writeRes is a WRITE4resok.
type writeRes struct {
	count     uint32   // bytes written, from the start of the data sent
	committed uint32   // how stable: UNSTABLE4, DATA_SYNC4 or FILE_SYNC4
	verf      verifier // changes when the server restarts; compare at COMMIT
}

// write reads a WRITE result into res. sent is the number of bytes
// written; a server claiming more is a malformed reply.
func (r *reply) write(sent uint32, res *writeRes) error {
	if err := r.head(opWrite); err != nil {
		return err
	}
	d := &r.d
	res.count = d.Uint32()
	res.committed = d.Uint32()
	copy(res.verf[:], d.FixedOpaque(verifierSize))
	if d.Err() == nil {
		switch {
		case res.count > sent:
			d.SetErr(fmt.Errorf("nfs4: server wrote %d of %d bytes", res.count, sent))
		case res.committed > fileSync4:
			d.SetErr(fmt.Errorf("nfs4: unknown stable_how4 %d", res.committed))
		}
	}
	return r.done(opWrite, OK)
}

// commit adds COMMIT of count bytes at off; count 0 means to the end of
// the file.
func (c *compound) commit(off uint64, count uint32) {
	if c.op(opCommit) {
		c.e.Uint64(off)
		c.e.Uint32(count)
	}
}

// commit reads a COMMIT result: the write verifier.
func (r *reply) commit(verf *verifier) error {
	if err := r.head(opCommit); err != nil {
		return err
	}
	copy(verf[:], r.d.FixedOpaque(verifierSize))
	return r.done(opCommit, OK)
}
