package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// request is one COMPOUND's operations after SEQUENCE: build appends them,
// parse walks their results. parse must copy what it keeps out of the
// reply; its byte slices are reused once it returns.
type request interface {
	build(c *compound)
	parse(r *reply) error
}

// cacher is implemented by requests whose reply the server must keep in
// its session reply cache (sa_cachethis): the non-idempotent ones, whose
// replay after a reconnect must return the original result.
type cacher interface{ cacheThis() bool }

// funcRequest adapts a pair of functions to a request. Convenient off the
// hot path; it allocates its closures.
type funcRequest struct {
	b     func(c *compound)
	p     func(r *reply) error
	cache bool
}

func (f funcRequest) build(c *compound)    { f.b(c) }
func (f funcRequest) parse(r *reply) error { return f.p(r) }
func (f funcRequest) cacheThis() bool      { return f.cache }

// wireTap, when set (by tests), receives a copy of every COMPOUND4args the
// client encodes and every COMPOUND4res it decodes, so that an independent
// decoder can check our wire format.
var wireTap atomic.Pointer[func(args, res []byte)]

// compoundCall is the rpc argument and result of one COMPOUND. Recycled
// through callPool.
type compoundCall struct {
	c       *Client
	req     request
	sess    *sessState // prefix SEQUENCE on this session; nil: sessionless
	slot    int
	seq     uint32
	highest uint32

	cmp    compound
	r      reply
	seqRes sequenceRes
	// answered is set once the reply's SEQUENCE result (or, sessionless,
	// the COMPOUND header) was read: the server saw this request.
	answered bool
	seqOK    bool
	tapArgs  []byte
}

var callPool = sync.Pool{New: func() any { return new(compoundCall) }}

func (cc *compoundCall) MarshalXDR(e *xdr.Encoder) error {
	start := e.Len()
	cc.cmp.begin(e, "")
	if cc.sess != nil {
		cc.cmp.sequence(&cc.sess.id, cc.seq, uint32(cc.slot), cc.highest, cached(cc.req))
	}
	cc.req.build(&cc.cmp)
	if err := cc.cmp.finish(); err != nil {
		return err
	}
	if wireTap.Load() != nil {
		cc.tapArgs = append(cc.tapArgs[:0], e.Bytes()[start:]...)
	}
	return nil
}

func (cc *compoundCall) UnmarshalXDR(d *xdr.Decoder) error {
	body := d.Rest()
	d.Skip(len(body))
	if tap := wireTap.Load(); tap != nil {
		(*tap)(cc.tapArgs, append([]byte(nil), body...))
	}
	if err := cc.r.init(body, cc.cmp.ops()); err != nil {
		return err
	}
	if cc.sess != nil {
		// A SEQUENCE result, even a failed one, means the server saw
		// this request; a malformed reply leaves that unknown.
		err := cc.r.sequence(&cc.seqRes)
		var st Status
		cc.answered = err == nil || errors.As(err, &st)
		if err != nil {
			return err
		}
		cc.seqOK = true
	} else {
		cc.answered = true
	}
	if err := cc.req.parse(&cc.r); err != nil {
		return err
	}
	return cc.r.end()
}

// call runs req in one COMPOUND on the current session: callSession,
// after waiting for a recovery under way. If the session (or the client ID)
// turns out to be lost, it starts or joins the recovery and sends req again
// on the new session, at most maxRedrives times.
func (c *Client) call(ctx context.Context, req request) error {
	_, err := c.callEpoch(ctx, req)
	return err
}

// callEpoch is call, and also returns the client ID epoch of the session
// req last ran on.
func (c *Client) callEpoch(ctx context.Context, req request) (uint64, error) {
	for n := 0; ; n++ {
		s, err := c.current(ctx)
		if err != nil {
			return 0, err
		}
		err = c.callSession(ctx, s, req)
		if err == nil || !sessionLost(err) || n == maxRedrives {
			return s.epoch, err
		}
		if rerr := c.recover(ctx, s, err); rerr != nil {
			return s.epoch, fmt.Errorf("%w (session lost: %w)", rerr, err)
		}
		c.rstats.redriven.Add(1)
	}
}

// callSession runs req in one COMPOUND on session s: it takes a slot,
// sends SEQUENCE and req's operations, and releases the slot according to
// what became of the request. It retries, until ctx ends:
//   - NFS4ERR_DELAY and NFS4ERR_GRACE, after a wait from Config.Backoff;
//   - NFS4ERR_CONN_NOT_BOUND_TO_SESSION, after binding the connection;
//   - NFS4ERR_RETRY_UNCACHED_REP for a request that is not cached: a
//     replay of an idempotent request after a reconnect is re-issued as a
//     new request (RFC 8881 §2.10.6.1.3). A non-idempotent one asked the
//     server to cache its reply, so this cannot happen to it by design;
//     if a server does it anyway the error is returned, not retried.
func (c *Client) callSession(ctx context.Context, s *sessState, req request) error {
	var b backoff.BackOff
	for {
		err := c.callOnce(ctx, s, req)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrConnNotBoundToSession):
			if berr := c.bindConn(ctx, &s.id); berr != nil {
				return err
			}
			continue
		case errors.Is(err, ErrRetryUncachedRep) && !cached(req):
			continue
		case !errors.Is(err, ErrDelay) && !errors.Is(err, ErrGrace):
			return err
		}
		if b == nil {
			b = c.newBackoff()
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return err
		}
		if errors.Is(err, ErrGrace) {
			c.rstats.graceWaits.Add(1)
		}
		c.log.Debug("nfs4: server asked to retry", "err", err, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-c.closing:
			t.Stop()
			return err
		}
	}
}

// newBackoff returns the backoff for one call's NFS4ERR_DELAY and
// NFS4ERR_GRACE retries.
func (c *Client) newBackoff() backoff.BackOff {
	if c.cfg.Backoff != nil {
		if b := c.cfg.Backoff(); b != nil {
			b.Reset()
			return b
		}
	}
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second),
		backoff.WithMaxElapsedTime(0))
}

// cached reports whether req asks the server to cache its reply.
func cached(req request) bool {
	k, ok := req.(cacher)
	return ok && k.cacheThis()
}

// bindConn binds the current connection to session id
// (BIND_CONN_TO_SESSION, alone in its COMPOUND). Servers bind a connection
// implicitly at its first SEQUENCE for SP4_NONE client IDs; a COMPOUND
// without SEQUENCE (DESTROY_SESSION) on a fresh connection needs this.
func (c *Client) bindConn(ctx context.Context, id *sessionID) error {
	var res bindConnRes
	err := c.callNoSession(ctx, funcRequest{
		b: func(cmp *compound) { cmp.bindConnToSession(id, cdfcForeOrBoth, false) },
		p: func(r *reply) error { return r.bindConnToSession(&res) },
	})
	if err != nil {
		c.log.Warn("nfs4: BIND_CONN_TO_SESSION failed", "err", err)
		return err
	}
	c.rstats.rebinds.Add(1)
	c.log.Info("nfs4: connection bound to the session")
	return nil
}

func (c *Client) callOnce(ctx context.Context, s *sessState, req request) error {
	id, seq, highest, err := s.slots.get(ctx)
	if err != nil {
		return err
	}
	answered, processed, err := c.send(ctx, s, id, seq, highest, req)
	if answered && !processed && errors.Is(err, ErrRetryUncachedRep) {
		// The server processed the original of this replay: its slot is
		// at seq even though it will not repeat the reply.
		processed = true
	}
	if answered {
		s.slots.put(id, seq, processed)
	} else if !c.spawn(func() { c.resync(s, id, seq) }) {
		// No reply: the request may have run, may still be running on
		// the server, or may never have arrived. The slot stays busy until
		// resync finds out which; a closing Client needs it no more.
		s.slots.put(id, seq, true)
	}
	return err
}

// send runs req in one COMPOUND: prefixed by SEQUENCE on slot id of
// session s with sequence id seq, or alone if s is nil. answered reports
// that a reply was read (the slot's state on the server is known);
// processed, that its SEQUENCE succeeded (the server moved the slot to seq).
func (c *Client) send(ctx context.Context, s *sessState, id int, seq, highest uint32, req request) (answered, processed bool, err error) {
	cc := callPool.Get().(*compoundCall)
	defer func() {
		cc.req, cc.c, cc.sess = nil, nil, nil
		callPool.Put(cc)
	}()
	cc.c, cc.req, cc.sess = c, req, s
	cc.slot, cc.seq, cc.highest = id, seq, highest
	cc.answered, cc.seqOK = false, false
	err = c.rpc.Call(ctx, procCompound, cc, cc)
	if cc.seqOK {
		c.sequenced(s, &cc.seqRes)
	}
	return cc.answered, cc.seqOK, err
}

// spawn runs f on a goroutine of its own that Close waits for, unless the
// Client is closing; it reports whether it did.
func (c *Client) spawn(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.stopped {
		return false
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
	return true
}

// resync finds out what became of a request sent on slot id of session s
// with sequence id seq whose reply never came (its caller gave up), then
// releases the slot. Reusing the slot blindly is unsafe: servers run
// requests on parallel threads, so the next request on the slot could
// overtake the abandoned one and be answered as its replay. Like the Linux
// client's probe, resync sends lone SEQUENCEs on the slot: seq+1 succeeds
// once the server has processed seq; after repeated NFS4ERR_SEQ_MISORDERED
// the server evidently never got seq, and a lone SEQUENCE with seq itself
// takes its place. Runs until it succeeds, the session is replaced or
// lost, or the Client closes.
func (c *Client) resync(s *sessState, id int, seq uint32) {
	wait := 10 * time.Millisecond
	try := seq + 1
	for attempt := 1; ; attempt++ {
		select {
		case <-c.closing:
			s.slots.put(id, seq, true)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(c.bgCtx, max(c.lease, time.Second))
		answered, processed, err := c.send(ctx, s, id, try, uint32(id), nopRequest{})
		cancel()
		if answered && processed {
			s.slots.put(id, try, true)
			return
		}
		if c.st.Load() != s || errors.Is(err, ErrBadSession) || errors.Is(err, ErrDeadSession) ||
			errors.Is(err, ErrStaleClientID) {
			// The session is gone, and its slots with it.
			s.slots.put(id, seq, true)
			return
		}
		if errors.Is(err, ErrSeqMisordered) && attempt >= 8 {
			try = seq
		}
		c.log.Debug("nfs4: resynchronising slot", "slot", id, "seq", try, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
		}
		wait = min(wait*2, time.Second)
	}
}

// sequenced applies a successful SEQUENCE result on session s: the lease
// was renewed, the server's slot target and status flags are taken in. A
// flag saying that some of our state was revoked starts a check of every
// open File's stateid (checkStates).
func (c *Client) sequenced(s *sessState, res *sequenceRes) {
	c.lastRenew.Store(time.Now().UnixNano())
	s.slots.setTarget(min(res.targetHighestSlotID, res.highestSlotID))
	// The callback path is always down: this client has no backchannel.
	if old := c.flags.Swap(res.statusFlags); old != res.statusFlags && res.statusFlags&^callbackFlags != 0 {
		c.log.Warn("nfs4: SEQUENCE status flags", "flags", fmt.Sprintf("%#x", res.statusFlags))
	}
	if res.statusFlags&revokedFlags != 0 {
		c.checkStatesSoon()
	}
}

// callbackFlags are the SEQ4_STATUS_* bits about the backchannel, which
// this client does not have.
const callbackFlags = seqStatusCBPathDown | seqStatusCBPathDownSession | seqStatusBackchannelFault

// revokedFlags are the SEQ4_STATUS_* bits that say the server revoked some
// or all of the client's state.
const revokedFlags = seqStatusExpiredAllStateRevoked | seqStatusExpiredSomeStateRevoked |
	seqStatusAdminStateRevoked | seqStatusRecallableStateRevoked | seqStatusRestartReclaimNeeded

// callNoSession runs a COMPOUND without SEQUENCE: EXCHANGE_ID,
// CREATE_SESSION, BIND_CONN_TO_SESSION, DESTROY_SESSION and
// DESTROY_CLIENTID stand alone.
func (c *Client) callNoSession(ctx context.Context, req request) error {
	_, _, err := c.send(ctx, nil, 0, 0, 0, req)
	return err
}

// Session parameters asked for.
const (
	// sessionOverhead is room, beyond the READ or WRITE payload, for the
	// RPC header, the credential and the other operations of a COMPOUND.
	sessionOverhead = 8 << 10
	maxCachedReply  = 16 << 10
	maxSessionOps   = maxOps
	callbackProgram = 0x40000000
	implDomain      = "gonfs.invalid"
	implName        = "gonfs NFSv4.1 client for Go"
)

// establish creates the client ID and the session, completes reclaim (a new
// client has nothing to reclaim) and reads the root's attributes.
func (c *Client) establish(ctx context.Context) error {
	ownerID := c.cfg.OwnerID
	if ownerID == "" {
		host, _ := os.Hostname()
		ownerID = "gonfs:" + host + ":" + randomID(8)
	}
	c.ownerID = []byte(ownerID)
	copy(c.verf[:], randomID(4)) // 8 hex bytes: a new boot verifier per Client
	c.owner = []byte("open:" + ownerID)
	if len(c.owner) > opaqueLimit {
		c.owner = c.owner[:opaqueLimit]
	}

	eid, err := c.exchangeID(ctx)
	if err != nil {
		return fmt.Errorf("EXCHANGE_ID: %w", err)
	}
	c.serverScope = eid.serverScope
	s, err := c.createSession(ctx, eid.clientID, 0)
	if err != nil {
		return fmt.Errorf("CREATE_SESSION: %w", err)
	}
	c.st.Store(s)

	if err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.reclaimComplete(false) },
		p: func(r *reply) error { return r.statusOnly(opReclaimComplete) },
	}); err != nil && !errors.Is(err, ErrCompleteAlready) {
		return fmt.Errorf("RECLAIM_COMPLETE: %w", err)
	}

	var root Attr
	var fh []byte
	if err := c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putrootfh()
			cmp.getfh()
			cmp.getattr(MaskOf(AttrSupportedAttrs, AttrLeaseTime, AttrMaxRead, AttrMaxWrite))
		},
		p: func(r *reply) error {
			if err := r.statusOnly(opPutRootFH); err != nil {
				return err
			}
			b, err := r.getfh()
			if err != nil {
				return err
			}
			fh = append([]byte(nil), b...)
			return r.getattr(&root)
		},
	}); err != nil {
		return fmt.Errorf("root attributes: %w", err)
	}
	c.rootFH = fh
	c.supported = root.Supported
	c.lease = root.LeaseTime
	if c.lease <= 0 {
		c.lease = 90 * time.Second
	}
	if root.Mask.Has(AttrMaxRead) && root.MaxRead > 0 {
		c.rsize = clampIO(c.rsize, int(min(root.MaxRead, 1<<30))+sessionOverhead)
	}
	if root.Mask.Has(AttrMaxWrite) && root.MaxWrite > 0 {
		c.wsize = clampIO(c.wsize, int(min(root.MaxWrite, 1<<30))+sessionOverhead)
	}
	c.lastRenew.Store(time.Now().UnixNano())

	flavor := -1
	switch c.auth.(type) {
	case *rpc.AuthSys:
		flavor = authSys
	}
	if c.auth == rpc.AuthNone {
		flavor = authNone
	}
	if flavor >= 0 {
		if err := c.checkSecurity(ctx, uint32(flavor)); err != nil {
			return err
		}
	}
	return nil
}

// exchangeID sends EXCHANGE_ID with this Client's owner and verifier. For a
// new (unconfirmed) client ID it takes the sequence id the next
// CREATE_SESSION must carry; a confirmed one continues its own.
func (c *Client) exchangeID(ctx context.Context) (*exchangeIDRes, error) {
	var eid exchangeIDRes
	ea := exchangeIDArgs{
		verifier: c.verf,
		ownerID:  c.ownerID,
		flags:    exchgidFlagUseNonPNFS,
		impl:     &implID{domain: implDomain, name: implName},
	}
	if err := c.callNoSession(ctx, funcRequest{
		b: func(cmp *compound) { cmp.exchangeID(&ea) },
		p: func(r *reply) error {
			if err := r.exchangeID(&eid); err != nil {
				return err
			}
			// Kept past the reply, whose buffer is reused.
			eid.serverOwnerMajor = bytes.Clone(eid.serverOwnerMajor)
			eid.serverScope = bytes.Clone(eid.serverScope)
			eid.implDomain, eid.implName = nil, nil
			return nil
		},
	}); err != nil {
		return nil, err
	}
	if eid.flags&exchgidFlagConfirmedR == 0 {
		c.csSeq = eid.sequenceID
	}
	return &eid, nil
}

// createSession creates a session on clientID (CREATE_SESSION with the
// client ID's next sequence id) sized for the Client's rsize and wsize, and
// returns it as a session of the client ID epoch epoch. The first one also
// sets rsize and wsize from what the server grants; later ones keep them
// and log a server that grants less.
func (c *Client) createSession(ctx context.Context, clientID uint64, epoch uint64) (*sessState, error) {
	slots := defaultInt(c.cfg.Slots, 64)
	csa := createSessionArgs{
		clientID: clientID,
		sequence: c.csSeq,
		fore: channelAttrs{
			maxRequestSize:        uint32(c.wsize + sessionOverhead),
			maxResponseSize:       uint32(c.rsize + sessionOverhead),
			maxResponseSizeCached: maxCachedReply,
			maxOperations:         maxSessionOps,
			maxRequests:           uint32(slots),
		},
		back: channelAttrs{
			maxRequestSize: 4096, maxResponseSize: 4096, maxResponseSizeCached: 0,
			maxOperations: 2, maxRequests: 1,
		},
		cbProgram: callbackProgram,
		sec:       []cbSecParms{{flavor: authNone}},
	}
	var cs createSessionRes
	if err := c.callNoSession(ctx, funcRequest{
		b: func(cmp *compound) { cmp.createSession(&csa) },
		p: func(r *reply) error { return r.createSession(&cs) },
	}); err != nil {
		return nil, err
	}
	c.csSeq++
	n := int(max(1, min(cs.fore.maxRequests, uint32(slots))))
	s := &sessState{clientID: clientID, id: cs.sessionID, slots: newSlotTable(n), epoch: epoch}
	if h := c.history[clientID]; len(h) < maxHistory {
		c.history[clientID] = append(h, s.id)
	}
	if c.st.Load() == nil {
		c.rsize = clampIO(c.rsize, int(cs.fore.maxResponseSize))
		c.wsize = clampIO(c.wsize, int(cs.fore.maxRequestSize))
	} else if clampIO(c.rsize, int(cs.fore.maxResponseSize)) < c.rsize || clampIO(c.wsize, int(cs.fore.maxRequestSize)) < c.wsize {
		c.log.Warn("nfs4: the new session allows smaller requests than the first; large reads or writes may fail",
			"max_request", cs.fore.maxRequestSize, "max_response", cs.fore.maxResponseSize)
	}
	c.log.Info("nfs4: session created", "clientid", fmt.Sprintf("%#x", clientID),
		"slots", n, "max_request", cs.fore.maxRequestSize, "max_response", cs.fore.maxResponseSize)
	return s, nil
}

// clampIO shrinks an I/O size so that it plus the COMPOUND overhead fits in
// limit, in multiples of 4 KiB (at least 4 KiB).
func clampIO(size, limit int) int {
	if size+sessionOverhead > limit {
		size = limit - sessionOverhead
	}
	return max(size&^4095, 4096)
}

// destroy ends the session and the client ID. Failures are harmless: the
// server reclaims both when the lease expires; those the server explains
// are logged and left to it rather than reported as a failure of Close.
func (c *Client) destroy(ctx context.Context) error {
	s := c.st.Load()
	if err := c.destroySession(ctx, &s.id); err != nil {
		if errors.Is(err, errLeftToLease) {
			return nil
		}
		return fmt.Errorf("nfs4: DESTROY_SESSION: %w", err)
	}
	err := c.destroyClientID(ctx, s.clientID)
	if errors.Is(err, ErrClientIDBusy) {
		// The server still has another session of ours on this client ID:
		// one from before a failover and back, which it kept.
		for _, id := range c.history[s.clientID] {
			if id != s.id {
				c.destroySession(ctx, &id)
			}
		}
		err = c.destroyClientID(ctx, s.clientID)
	}
	switch {
	case err == nil, errors.Is(err, ErrStaleClientID), errors.Is(err, ErrExpired):
		return nil
	case errors.Is(err, ErrClientIDBusy):
		c.log.Warn("nfs4: the server keeps state of this client ID; it will expire with the lease",
			"lease", c.lease)
		return nil
	}
	return fmt.Errorf("nfs4: DESTROY_CLIENTID: %w", err)
}

// maxHistory bounds the sessions remembered per client ID, for destroy.
const maxHistory = 8

// errLeftToLease means a session could not be destroyed for a reason that
// the lease's expiry takes care of.
var errLeftToLease = errors.New("nfs4: left to lease expiry")

// destroySession ends session id. A session the server no longer has is
// no error.
//
// DESTROY_SESSION without SEQUENCE must arrive on a connection bound to the
// session; a fresh connection is bound with BIND_CONN_TO_SESSION first.
// NFS-Ganesha remembers at most 16 client address+port pairs per session
// and never forgets one, so after more than 16 reconnects from different
// ports (Ephemeral, NewReservedPort) it refuses DESTROY_SESSION on any new
// connection even after a successful bind; that is errLeftToLease.
func (c *Client) destroySession(ctx context.Context, id *sessionID) error {
	destroy := funcRequest{
		b: func(cmp *compound) { cmp.destroySession(id) },
		p: func(r *reply) error { return r.statusOnly(opDestroySession) },
	}
	err := c.callNoSession(ctx, destroy)
	if errors.Is(err, ErrConnNotBoundToSession) && c.bindConn(ctx, id) == nil {
		err = c.callNoSession(ctx, destroy)
		if errors.Is(err, ErrConnNotBoundToSession) {
			c.log.Warn("nfs4: server refuses DESTROY_SESSION on this connection although it was bound; "+
				"the session and client ID will expire with the lease", "lease", c.lease)
			return errLeftToLease
		}
	}
	if errors.Is(err, ErrBadSession) || errors.Is(err, ErrDeadSession) {
		return nil // gone already (a server restart, say)
	}
	return err
}

// destroyClientID sends DESTROY_CLIENTID.
func (c *Client) destroyClientID(ctx context.Context, id uint64) error {
	return c.callNoSession(ctx, funcRequest{
		b: func(cmp *compound) { cmp.destroyClientID(id) },
		p: func(r *reply) error { return r.statusOnly(opDestroyClientID) },
	})
}
