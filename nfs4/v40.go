package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// NFSv4.0 (RFC 7530): the same Client without a session.
//
// The client ID is made with SETCLIENTID and SETCLIENTID_CONFIRM from the
// same owner and verifier as EXCHANGE_ID's, and kept alive by RENEW on the
// lease timer (Client.renew). The callback address offered is one no
// server can reach (0.0.0.0, port 0): this client runs no callback
// service, so servers grant it no delegations; one granted anyway is
// returned at once, as in 4.1.
//
// A 4.0 call is the 4.1 call path with the SEQUENCE left out: a sessState
// with v40 set stands for the client ID, its slot table only bounds the
// calls in flight (Config.Slots), and callOnce sends the COMPOUND alone
// (callOnce40). Calls are pipelined on the connection as in 4.1.
//
// What a session gave and 4.0 has not:
//
//   - Exactly-once. Without a session reply cache, a server recognises a
//     re-sent request only in its duplicate-request cache, keyed by XID
//     and the client's address and port. The rpc layer re-sends a call
//     after a reconnect with the same XID; whether the server takes it for
//     a replay then depends on the source port the policy chose. Policies
//     that keep the port (the reserved-port ones) keep the cache's help;
//     policies that change it (Ephemeral, and the hedged redial's new
//     port) trade it for escaping stale middlebox state, and a
//     non-idempotent call (REMOVE, RENAME, CREATE) re-sent after such a
//     reconnect may run twice.
//   - Open owners carry their own sequence (RFC 7530 §9.1.7): OPEN,
//     OPEN_CONFIRM and CLOSE carry the owner's seqid, and the server runs
//     them in seqid order. Each File has its own open owner (open.go), so
//     one request per owner in flight (owner40.mu) still lets Files run in
//     parallel. A new owner's first OPEN must be confirmed (OPEN_CONFIRM)
//     when the server asks.
//   - The stateid's seqid 0 is not "the current one": READ, WRITE and
//     SETATTR carry the open stateid as it is.
//   - There is no CLAIM_FH: a File is opened, and after the loss of its
//     state opened again, by name in its directory (CLAIM_NULL); an open
//     found to name another file than before fails the File with
//     ErrStateLost. Reclaim after a server restart is CLAIM_PREVIOUS by
//     handle, as in 4.1, and there is no RECLAIM_COMPLETE.
//
// Recovery is 4.1's (recover.go) with reestablish40 in place of
// EXCHANGE_ID and CREATE_SESSION: NFS4ERR_STALE_CLIENTID (a server that
// restarted) or an expired lease leads to SETCLIENTID with the same owner
// and verifier; the same client ID back means the state survived,
// another means a new epoch whose Files are reclaimed in grace.

// cbUnreachable is the callback address offered in SETCLIENTID: tcp to
// 0.0.0.0 port 0, which no server can call.
const (
	cbNetID       = "tcp"
	cbUnreachable = "0.0.0.0.0.0"
)

// establish40 creates an NFSv4.0 client ID; tried are the minor versions
// the server already refused.
func (c *Client) establish40(ctx context.Context, tried []uint32) error {
	c.v40 = true
	s, err := c.setClientID40(ctx, 0)
	if errors.Is(err, ErrMinorVersMismatch) {
		return &VersionError{Tried: append(tried, 0)}
	}
	if err != nil {
		return err
	}
	c.st.Store(s)
	c.log.Info("nfs4: NFSv4.0 client ID established", "clientid", fmt.Sprintf("%#x", s.clientID))
	return c.readRoot(ctx)
}

// setClientID40 sends SETCLIENTID and SETCLIENTID_CONFIRM and returns the
// confirmed client ID as a sessState of epoch epoch.
func (c *Client) setClientID40(ctx context.Context, epoch uint64) (*sessState, error) {
	args := setClientIDArgs{verifier: c.verf, id: c.ownerID, cbProgram: callbackProgram,
		cbNetID: cbNetID, cbAddr: cbUnreachable}
	var res setClientIDRes
	if _, err := c.send40(ctx, nil, funcRequest{
		b: func(cmp *compound) { cmp.setClientID(&args) },
		p: func(r *reply) error { return r.setClientID(&res) },
	}); err != nil {
		if errors.Is(err, ErrClidInUse) {
			return nil, fmt.Errorf("SETCLIENTID: the owner ID is in use by %s with another principal: %w", res.inUse, err)
		}
		return nil, fmt.Errorf("SETCLIENTID: %w", err)
	}
	if _, err := c.send40(ctx, nil, funcRequest{
		b: func(cmp *compound) { cmp.setClientIDConfirm(res.clientID, &res.confirm) },
		p: func(r *reply) error { return r.statusOnly(opSetClientIDConfirm) },
	}); err != nil {
		return nil, fmt.Errorf("SETCLIENTID_CONFIRM: %w", err)
	}
	return &sessState{clientID: res.clientID, slots: newSlotTable(c.cfg.Slots), epoch: epoch, v40: true}, nil
}

// reestablish40 replaces the NFSv4.0 client ID of old: SETCLIENTID again
// with the same owner and verifier. The same client ID back means the
// server kept our state; another one, that it was lost and is reclaimed.
func (c *Client) reestablish40(ctx context.Context, old *sessState) (*sessState, error) {
	s, err := c.setClientID40(ctx, old.epoch)
	if err != nil {
		return nil, fmt.Errorf("nfs4: recovery: %w", err)
	}
	if s.clientID == old.clientID {
		c.rstats.sessionResets.Add(1)
		c.log.Info("nfs4: the server kept our client ID", "clientid", fmt.Sprintf("%#x", s.clientID))
		c.publish(s)
		return s, nil
	}
	c.lastEpoch++
	s.epoch = c.lastEpoch
	c.rstats.clientIDResets.Add(1)
	c.log.Warn("nfs4: client ID lost; new client ID, reclaiming open files", "clientid", fmt.Sprintf("%#x", s.clientID))
	if err := c.reclaimAll(ctx, s, true); err != nil {
		return nil, err
	}
	return s, nil
}

// renewRequest is the COMPOUND that renews the lease when no call has: a
// lone SEQUENCE in 4.1, RENEW in 4.0. NFS4ERR_EXPIRED from RENEW is the
// lease's expiry, recovered from as SEQUENCE's is.
func (c *Client) renewRequest() request {
	if !c.v40 {
		return nopRequest{}
	}
	return funcRequest{
		b: func(cmp *compound) { cmp.renew(c.st.Load().clientID) },
		p: func(r *reply) error {
			err := r.statusOnly(opRenew)
			if errors.Is(err, ErrExpired) {
				return errLeaseExpired40
			}
			return err
		},
	}
}

// owner40 is the sequence of one NFSv4.0 open owner (RFC 7530 §9.1.7):
// each OPEN, OPEN_CONFIRM and CLOSE carries the next seqid, one at a time.
// It is safe for concurrent use.
type owner40 struct {
	mu ctxMutex // held while one of the owner's requests is in flight
	// Guarded by mu.
	seqid uint32
	epoch uint64 // the client ID epoch of seqid; another epoch is a new owner to the server
	// unsure: a request's reply never came, so the server is at seqid
	// (it ran the request; seqid was advanced) or at seqid-1.
	unsure bool

	// Set when the File is opened, then read-only: the directory and
	// name it was opened by, for opening it again (there is no CLAIM_FH).
	dirFH []byte
	base  string
}

// seqRequest is a request carrying an open owner's seqid, which callOnce40
// writes to *seqid before each send.
type seqRequest interface {
	request
	seqOwner() (o *owner40, seqid *uint32)
}

func (q *openReq) seqOwner() (*owner40, *uint32) { return q.oo, &q.args.seqid }

// seqidOps are the operations that carry an open owner's seqid.
func isSeqidOp(op uint32) bool {
	return op == opOpen || op == opOpenConfirm || op == opClose || op == opOpenDowngrade
}

// seqidAdvances reports whether an operation that carried a seqid and
// failed with st moved the owner's sequence on: every result does except
// these (RFC 7530 §9.1.7).
func seqidAdvances(st Status) bool {
	switch st {
	case ErrStaleClientID, ErrStaleStateID, ErrBadStateID, ErrBadSeqID, ErrBadXDR, ErrResource, ErrNoFileHandle, ErrMoved:
		return false
	}
	return true
}

// callOnce40 sends req once as an NFSv4.0 COMPOUND: with a slot of s for
// the bound on calls in flight and, if it carries a seqid, with its open
// owner held and its seqid advanced as the result says. A BAD_SEQID after
// a lost reply is retried once with the other seqid the server can be at.
func (c *Client) callOnce40(ctx context.Context, s *sessState, req request) error {
	sr, ok := req.(seqRequest)
	var o *owner40
	var seqp *uint32
	if ok {
		o, seqp = sr.seqOwner()
	}
	if o != nil {
		if err := o.mu.lock(ctx); err != nil {
			return err
		}
		defer o.mu.unlock()
		if o.epoch != s.epoch {
			o.seqid, o.epoch, o.unsure = 0, s.epoch, false
		}
	}
	id, seq, _, err := s.slots.get(ctx)
	if err != nil {
		return err
	}
	defer s.slots.put(id, seq, false)
	if o == nil {
		_, err := c.send40(ctx, s, req)
		return err
	}
	for try := 0; ; try++ {
		*seqp = o.seqid
		res, err := c.send40(ctx, s, req)
		switch {
		case !res.answered:
			o.seqid++
			o.unsure = true
		case res.seqReached && (res.seqStatus == OK || seqidAdvances(res.seqStatus)):
			o.seqid++
			o.unsure = false
		case res.seqStatus == ErrBadSeqID && o.unsure && try == 0:
			o.seqid--
			o.unsure = false
			c.log.Info("nfs4: open owner sequence resynchronised after a lost reply")
			continue
		}
		return err
	}
}

// sent40 is what became of one NFSv4.0 COMPOUND.
type sent40 struct {
	answered   bool   // a reply was read
	seqReached bool   // the server evaluated the operation carrying a seqid
	seqStatus  Status // its status, if it was reached
}

// send40 sends req as one NFSv4.0 COMPOUND (minor version 0, no SEQUENCE).
func (c *Client) send40(ctx context.Context, s *sessState, req request) (res sent40, err error) {
	cc := callPool.Get().(*compoundCall)
	defer func() {
		cc.req, cc.c, cc.client = nil, nil, nil
		callPool.Put(cc)
	}()
	cc.c, cc.req, cc.sess, cc.client, cc.minor = c, req, nil, s, 0
	cc.answered, cc.seqOK = false, false
	err = c.rpc.Call(ctx, procCompound, cc, cc)
	if !cc.answered {
		return res, err
	}
	res.answered = true
	list := cc.cmp.ops()
	for i := 0; i < list.n; i++ {
		if isSeqidOp(list.ops[i]) {
			if i < cc.r.count {
				res.seqReached = true
				if i == cc.r.count-1 {
					res.seqStatus = cc.r.status
				}
			}
			break
		}
	}
	switch {
	case err == nil:
	case refusesPort(cc.r.failed, err):
		err = c.portRefused(err)
	case cc.r.failed == opOpen && errors.Is(err, ErrExpired):
		// OPEN names the client ID, not a stateid: its lease expired.
		err = errLeaseExpired40
	}
	return res, err
}

// errLeaseExpired40 is NFS4ERR_EXPIRED from RENEW or OPEN, the operations
// that name the client ID itself: its lease expired (the client was cut
// off for longer than the lease). Like SEQUENCE's (errLeaseExpired), it
// is recovered from with SETCLIENTID, and the call is sent again.
var errLeaseExpired40 = fmt.Errorf("nfs4: lease of the NFSv4.0 client ID: %w", ErrExpired)

// closeReq is CLOSE of a File's open state: the stateid is loaded when it
// is encoded, so a CLOSE sent again after a recovery carries the new one.
type closeReq struct {
	fh    []byte
	sid   func() *stateID
	oo    *owner40 // NFSv4.0; nil in 4.1
	seqid uint32
	final stateID
}

func (q *closeReq) build(c *compound) { c.putfh(q.fh); c.closeSeq(q.sid(), q.seqid) }
func (q *closeReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.close(&q.final)
}
func (q *closeReq) cacheThis() bool               { return true }
func (q *closeReq) seqOwner() (*owner40, *uint32) { return q.oo, &q.seqid }

// openConfirmReq is OPEN_CONFIRM of a new open owner's first open state.
type openConfirmReq struct {
	fh    []byte
	sid   stateID // in: as OPEN returned it; out: as confirmed
	oo    *owner40
	seqid uint32
}

func (q *openConfirmReq) build(c *compound) { c.putfh(q.fh); c.openConfirm(&q.sid, q.seqid) }
func (q *openConfirmReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.openConfirm(&q.sid)
}
func (q *openConfirmReq) cacheThis() bool               { return true }
func (q *openConfirmReq) seqOwner() (*owner40, *uint32) { return q.oo, &q.seqid }

// confirmOpen confirms the open state an OPEN of q returned if the server
// asks for it (OPEN4_RESULT_CONFIRM), on session s (nil: the current one),
// and stores the confirmed stateid in q.res.stateID.
func (c *Client) confirmOpen(ctx context.Context, s *sessState, q *openReq) error {
	if q.oo == nil || q.res.rflags&openResultConfirm == 0 {
		return nil
	}
	cq := &openConfirmReq{fh: q.fh, sid: q.res.stateID, oo: q.oo}
	if err := c.callOn(ctx, s, cq); err != nil {
		return fmt.Errorf("OPEN_CONFIRM: %w", err)
	}
	q.res.stateID = cq.sid
	return nil
}

// shareAccess returns the OPEN share_access for access: in 4.1 with
// OPEN4_SHARE_ACCESS_WANT_NO_DELEG (this client has no callback channel
// to honour a recall); 4.0 has no WANT bits.
func (c *Client) shareAccess(access uint32) uint32 {
	if c.v40 {
		return access
	}
	return access | shareAccessWantNoDeleg
}

// adapt40 turns the OPEN q, made by createReq for mode m, into its NFSv4.0
// form: without O_CREATE an OPEN4_NOCREATE by name (4.0 has no CLAIM_FH),
// and EXCLUSIVE4 in place of 4.1's EXCLUSIVE4_1 (the mode is set by the
// SETATTR that follows in the same COMPOUND either way).
func (c *Client) adapt40(q *openReq, m openMode) *openReq {
	if !m.create {
		q.args.create, q.args.createMode, q.args.attrs, q.setMode = false, 0, nil, nil
		return q
	}
	if q.args.createMode == createExclusive41 {
		q.args.createMode = createExclusive
	}
	return q
}

// reopened40 finishes an NFSv4.0 OPEN q that re-established f's state on
// session s: it confirms the state if the server asks, and checks that an
// open by name found the same file (another may have taken the name).
func (c *Client) reopened40(ctx context.Context, s *sessState, f *File, q *openReq) error {
	if q.oo == nil {
		return nil
	}
	if err := c.confirmOpen(ctx, s, q); err != nil {
		return err
	}
	if q.args.claim == claimNull && !bytes.Equal(q.fh, f.fh) {
		sid := q.res.stateID
		c.callOn(ctx, s, &closeReq{fh: q.fh, oo: q.oo, sid: func() *stateID { return &sid }})
		return fmt.Errorf("nfs4: %s now names another file: %w", f.name, ErrStale)
	}
	return nil
}
