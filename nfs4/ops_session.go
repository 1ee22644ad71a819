package nfs4

import (
	"errors"
	"fmt"
	"time"

	"github.com/gonfs/nfs/rpc"
)

// Session, client ID and state recovery operations: SEQUENCE, EXCHANGE_ID,
// CREATE_SESSION, DESTROY_SESSION, DESTROY_CLIENTID, RECLAIM_COMPLETE,
// BIND_CONN_TO_SESSION, TEST_STATEID, FREE_STATEID (RFC 8881 §18.34–18.38,
// §18.46, §18.48, §18.50, §18.51).

// sequence adds SEQUENCE, which must be the first operation of every
// request on a session except those that create one.
func (c *compound) sequence(sid *sessionID, seq, slot, highestSlot uint32, cacheThis bool) {
	if !c.op(opSequence) {
		return
	}
	c.e.FixedOpaque(sid[:])
	c.e.Uint32(seq)
	c.e.Uint32(slot)
	c.e.Uint32(highestSlot)
	c.e.Bool(cacheThis)
}

// sequenceRes is a SEQUENCE4resok.
type sequenceRes struct {
	sessionID           sessionID
	sequenceID          uint32
	slotID              uint32
	highestSlotID       uint32 // highest slot the server will accept now
	targetHighestSlotID uint32 // highest slot the server wants the client to use
	statusFlags         uint32 // SEQ4_STATUS_* bits
}

// sequence reads a SEQUENCE result into res.
func (r *reply) sequence(res *sequenceRes) error {
	if err := r.head(opSequence); err != nil {
		return err
	}
	d := &r.d
	copy(res.sessionID[:], d.FixedOpaque(sessionIDSize))
	res.sequenceID = d.Uint32()
	res.slotID = d.Uint32()
	res.highestSlotID = d.Uint32()
	res.targetHighestSlotID = d.Uint32()
	res.statusFlags = d.Uint32()
	return r.done(opSequence, OK)
}

// implID is an nfs_impl_id4: who wrote the client or server, for logs.
type implID struct {
	domain string // DNS domain of the implementer
	name   string // product name and version
	date   time.Time
}

// exchangeIDArgs are the arguments of EXCHANGE_ID. State protection is
// always SP4_NONE.
type exchangeIDArgs struct {
	verifier verifier // changes when the client restarts (boot time)
	ownerID  []byte   // the client's stable identity, 1 to 1024 bytes
	flags    uint32   // EXCHGID4_FLAG_*
	impl     *implID  // optional
}

// exchangeID adds EXCHANGE_ID.
func (c *compound) exchangeID(a *exchangeIDArgs) {
	if len(a.ownerID) == 0 || len(a.ownerID) > opaqueLimit {
		c.fail(fmt.Errorf("nfs4: client owner ID of %d bytes; want 1 to %d", len(a.ownerID), opaqueLimit))
		return
	}
	if a.impl != nil && (len(a.impl.domain) > opaqueLimit || len(a.impl.name) > opaqueLimit) {
		c.fail(errors.New("nfs4: implementation domain or name longer than 1024 bytes"))
		return
	}
	if !c.op(opExchangeID) {
		return
	}
	e := c.e
	e.FixedOpaque(a.verifier[:])
	e.Opaque(a.ownerID)
	e.Uint32(a.flags)
	e.Uint32(sp4None)
	if a.impl == nil {
		e.Uint32(0)
		return
	}
	e.Uint32(1)
	e.String(a.impl.domain)
	e.String(a.impl.name)
	encodeTime(e, a.impl.date)
}

// opMask is a bitmap4 of operation numbers (state_protect_ops4).
type opMask [maskWords]uint32

// exchangeIDRes is an EXCHANGE_ID4resok. Byte slices alias the reply.
type exchangeIDRes struct {
	clientID         uint64
	sequenceID       uint32 // for the first CREATE_SESSION
	flags            uint32 // EXCHGID4_FLAG_*
	spHow            uint32 // SP4_NONE or SP4_MACH_CRED
	spMustEnforce    opMask // SP4_MACH_CRED only
	spMustAllow      opMask // SP4_MACH_CRED only
	serverOwnerMinor uint64
	serverOwnerMajor []byte
	serverScope      []byte
	hasImpl          bool
	implDomain       []byte
	implName         []byte
	implDate         time.Time
}

// exchangeID reads an EXCHANGE_ID result into res.
func (r *reply) exchangeID(res *exchangeIDRes) error {
	if err := r.head(opExchangeID); err != nil {
		return err
	}
	d := &r.d
	res.clientID = d.Uint64()
	res.sequenceID = d.Uint32()
	res.flags = d.Uint32()
	res.spHow = d.Uint32()
	res.spMustEnforce, res.spMustAllow = opMask{}, opMask{}
	switch res.spHow {
	case sp4None:
	case sp4MachCred:
		m, _ := decodeBitmap(d)
		res.spMustEnforce = opMask(m)
		m, _ = decodeBitmap(d)
		res.spMustAllow = opMask(m)
	default:
		// We ask for SP4_NONE; SSV protection was not offered.
		d.SetErr(fmt.Errorf("nfs4: unexpected state protection %d", res.spHow))
	}
	res.serverOwnerMinor = d.Uint64()
	res.serverOwnerMajor = d.Opaque(opaqueLimit)
	res.serverScope = d.Opaque(opaqueLimit)
	res.hasImpl = d.Count(1, 20) == 1
	res.implDomain, res.implName, res.implDate = nil, nil, time.Time{}
	if res.hasImpl {
		res.implDomain = d.Opaque(opaqueLimit)
		res.implName = d.Opaque(opaqueLimit)
		res.implDate = decodeTime(d)
	}
	return r.done(opExchangeID, OK)
}

// channelAttrs is a channel_attrs4: the limits of one session channel.
type channelAttrs struct {
	headerPadSize         uint32
	maxRequestSize        uint32
	maxResponseSize       uint32
	maxResponseSizeCached uint32
	maxOperations         uint32
	maxRequests           uint32 // the number of slots
	rdmaIRD               uint32 // with hasRDMAIRD only
	hasRDMAIRD            bool
}

func encodeChannelAttrs(c *compound, a *channelAttrs) {
	e := c.e
	e.Uint32(a.headerPadSize)
	e.Uint32(a.maxRequestSize)
	e.Uint32(a.maxResponseSize)
	e.Uint32(a.maxResponseSizeCached)
	e.Uint32(a.maxOperations)
	e.Uint32(a.maxRequests)
	if a.hasRDMAIRD {
		e.Uint32(1)
		e.Uint32(a.rdmaIRD)
	} else {
		e.Uint32(0)
	}
}

func (r *reply) decodeChannelAttrs(a *channelAttrs) {
	d := &r.d
	a.headerPadSize = d.Uint32()
	a.maxRequestSize = d.Uint32()
	a.maxResponseSize = d.Uint32()
	a.maxResponseSizeCached = d.Uint32()
	a.maxOperations = d.Uint32()
	a.maxRequests = d.Uint32()
	a.hasRDMAIRD = d.Count(1, 4) == 1
	a.rdmaIRD = 0
	if a.hasRDMAIRD {
		a.rdmaIRD = d.Uint32()
	}
}

// cbSecParms is a callback_sec_parms4 with flavor AUTH_NONE or AUTH_SYS;
// sys is the authsys_parms the server uses on the backchannel.
type cbSecParms struct {
	flavor uint32 // rpc.AuthFlavorNone or rpc.AuthFlavorSys
	sys    rpc.SysCred
}

// createSessionArgs are the arguments of CREATE_SESSION.
type createSessionArgs struct {
	clientID   uint64
	sequence   uint32 // the sequenceID EXCHANGE_ID returned
	flags      uint32 // CREATE_SESSION4_FLAG_*
	fore, back channelAttrs
	cbProgram  uint32
	sec        []cbSecParms
}

// maxCBSec bounds the callback security parameters sent.
const maxCBSec = 4

// createSession adds CREATE_SESSION.
func (c *compound) createSession(a *createSessionArgs) {
	if len(a.sec) > maxCBSec {
		c.fail(fmt.Errorf("nfs4: more than %d callback security parameters", maxCBSec))
		return
	}
	for i := range a.sec {
		s := &a.sec[i]
		switch {
		case s.flavor == rpc.AuthFlavorNone:
		case s.flavor != rpc.AuthFlavorSys:
			c.fail(fmt.Errorf("nfs4: callback security flavor %d not supported", s.flavor))
			return
		case len(s.sys.Machine) > rpc.MaxMachineName || len(s.sys.GIDs) > rpc.MaxSysGIDs:
			c.fail(errors.New("nfs4: AUTH_SYS machine name over 255 bytes or more than 16 groups"))
			return
		}
	}
	if !c.op(opCreateSession) {
		return
	}
	e := c.e
	e.Uint64(a.clientID)
	e.Uint32(a.sequence)
	e.Uint32(a.flags)
	encodeChannelAttrs(c, &a.fore)
	encodeChannelAttrs(c, &a.back)
	e.Uint32(a.cbProgram)
	e.Uint32(uint32(len(a.sec)))
	for i := range a.sec {
		s := &a.sec[i]
		e.Uint32(s.flavor)
		if s.flavor == rpc.AuthFlavorSys {
			e.Uint32(s.sys.Stamp)
			e.String(s.sys.Machine)
			e.Uint32(s.sys.UID)
			e.Uint32(s.sys.GID)
			e.Uint32(uint32(len(s.sys.GIDs)))
			for _, g := range s.sys.GIDs {
				e.Uint32(g)
			}
		}
	}
}

// createSessionRes is a CREATE_SESSION4resok.
type createSessionRes struct {
	sessionID  sessionID
	sequence   uint32
	flags      uint32 // CREATE_SESSION4_FLAG_* the server granted
	fore, back channelAttrs
}

// createSession reads a CREATE_SESSION result into res.
func (r *reply) createSession(res *createSessionRes) error {
	if err := r.head(opCreateSession); err != nil {
		return err
	}
	d := &r.d
	copy(res.sessionID[:], d.FixedOpaque(sessionIDSize))
	res.sequence = d.Uint32()
	res.flags = d.Uint32()
	r.decodeChannelAttrs(&res.fore)
	r.decodeChannelAttrs(&res.back)
	return r.done(opCreateSession, OK)
}

// destroySession adds DESTROY_SESSION; its result is statusOnly.
func (c *compound) destroySession(sid *sessionID) {
	if c.op(opDestroySession) {
		c.e.FixedOpaque(sid[:])
	}
}

// destroyClientID adds DESTROY_CLIENTID; its result is statusOnly.
func (c *compound) destroyClientID(id uint64) {
	if c.op(opDestroyClientID) {
		c.e.Uint64(id)
	}
}

// reclaimComplete adds RECLAIM_COMPLETE; its result is statusOnly. oneFS
// limits it to the current file handle's file system.
func (c *compound) reclaimComplete(oneFS bool) {
	if c.op(opReclaimComplete) {
		c.e.Bool(oneFS)
	}
}

// bindConnToSession adds BIND_CONN_TO_SESSION, which must be alone in its
// COMPOUND. dir is a CDFC4_* value.
func (c *compound) bindConnToSession(sid *sessionID, dir uint32, rdma bool) {
	if c.op(opBindConnToSession) {
		c.e.FixedOpaque(sid[:])
		c.e.Uint32(dir)
		c.e.Bool(rdma)
	}
}

// bindConnRes is a BIND_CONN_TO_SESSION4resok.
type bindConnRes struct {
	sessionID sessionID
	dir       uint32 // CDFS4_*: the channels the connection is now bound to
	rdma      bool
}

// bindConnToSession reads a BIND_CONN_TO_SESSION result into res.
func (r *reply) bindConnToSession(res *bindConnRes) error {
	if err := r.head(opBindConnToSession); err != nil {
		return err
	}
	d := &r.d
	copy(res.sessionID[:], d.FixedOpaque(sessionIDSize))
	res.dir = d.Uint32()
	res.rdma = d.Bool()
	return r.done(opBindConnToSession, OK)
}

// freeStateID adds FREE_STATEID; its result is statusOnly.
func (c *compound) freeStateID(sid *stateID) {
	if c.op(opFreeStateID) {
		encodeStateID(c.e, sid)
	}
}

// maxTestStateIDs bounds the stateids of one TEST_STATEID.
const maxTestStateIDs = 256

// testStateID adds TEST_STATEID of ids (1 to 256 of them).
func (c *compound) testStateID(ids []stateID) {
	if len(ids) == 0 || len(ids) > maxTestStateIDs {
		c.fail(fmt.Errorf("nfs4: TEST_STATEID of %d stateids; want 1 to %d", len(ids), maxTestStateIDs))
		return
	}
	if !c.op(opTestStateID) {
		return
	}
	c.e.Uint32(uint32(len(ids)))
	for i := range ids {
		encodeStateID(c.e, &ids[i])
	}
}

// testStateID reads a TEST_STATEID result: one status per stateid sent,
// into codes, whose length must be the number sent.
func (r *reply) testStateID(codes []Status) error {
	if err := r.head(opTestStateID); err != nil {
		return err
	}
	d := &r.d
	n := d.Count(maxTestStateIDs, 4)
	if d.Err() == nil && n != len(codes) {
		d.SetErr(fmt.Errorf("nfs4: %d statuses for %d stateids", n, len(codes)))
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		codes[i] = Status(d.Uint32())
	}
	return r.done(opTestStateID, OK)
}
