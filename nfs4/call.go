package nfs4

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/rpc/xdr"
)

// The call path. Each operation is one COMPOUND: call waits for a
// recovery under way, callSession takes a session slot and waits and
// retries where the server asks it to, and send encodes SEQUENCE and the
// request into one RPC call and decodes the reply where it lies. A reply
// that never came leaves its slot to resync. A lost session is handed to
// the recovery (Client.recover).

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

// nopRequest is a COMPOUND of SEQUENCE alone: it renews the lease.
type nopRequest struct{}

func (nopRequest) build(*compound)    {}
func (nopRequest) parse(*reply) error { return nil }

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
	client  *sessState // NFSv4.0: the client ID the request runs under; nil otherwise
	minor   uint32     // the COMPOUND's minor version
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

// Resend tells the rpc layer whether to re-send cc on a new connection
// (rpc.Resender): not once the server has said it no longer has cc's
// session (NFSv4.0: client ID), which it would only say again. The call
// then fails with what the server said, as if that had been its reply, and
// is sent again on the new session like any call of a lost session
// (callEpoch).
func (cc *compoundCall) Resend() error {
	s := cc.sess
	if s == nil {
		s = cc.client
	}
	if s == nil {
		return nil
	}
	if err := s.goneErr(); err != nil {
		return fmt.Errorf("nfs4: not re-sent: %w", err)
	}
	return nil
}

func (cc *compoundCall) MarshalXDR(e *xdr.Encoder) error {
	start := e.Len()
	cc.cmp.beginMinor(e, "", cc.minor)
	if cc.sess != nil {
		cc.cmp.sequence(&cc.sess.id, cc.seq, uint32(cc.slot), cc.highest, cached(cc.req))
	}
	cc.req.build(&cc.cmp)
	if err := cc.cmp.finish(); err != nil {
		return err
	}
	if wireTap.Load() != nil {
		// The arguments as they go on the wire: a WRITE's data, kept by
		// reference (xdr.Encoder.Payload), in its place.
		b := e.Bytes()
		p, at := e.Referenced()
		if p == nil {
			at = len(b)
		}
		cc.tapArgs = append(append(append(cc.tapArgs[:0], b[start:at]...), p...), b[at:]...)
	}
	return nil
}

func (cc *compoundCall) UnmarshalXDR(d *xdr.Decoder) error {
	start := d.Offset()
	body := d.Rest()
	d.Skip(len(body))
	lifted, at := d.Lifted()
	at -= start // in body
	if tap := wireTap.Load(); tap != nil {
		// The results as they came on the wire: a READ's data, read
		// straight into the caller's buffer (payload.go), in its place.
		wire := append([]byte(nil), body...)
		if lifted != nil {
			wire = slices.Concat(body[:at+4], lifted, body[at+4:])
		}
		(*tap)(cc.tapArgs, wire)
	}
	if err := cc.r.init(body, cc.cmp.ops()); err != nil {
		return err
	}
	if lifted != nil {
		cc.r.d.Lift(at, lifted)
	}
	if cc.sess != nil {
		// A SEQUENCE result, even a failed one, means the server saw
		// this request; a malformed reply leaves that unknown.
		err := cc.r.sequence(&cc.seqRes)
		var st Status
		cc.answered = err == nil || errors.As(err, &st)
		if errors.Is(err, ErrExpired) {
			err = errLeaseExpired
		}
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

// errLeaseExpired is NFS4ERR_EXPIRED as SEQUENCE's own status: the server
// let the client ID's lease expire (the client was cut off for longer than
// the lease) but has not yet thrown the client ID and its session away, as
// NFS-Ganesha does until its reaper's next pass (up to 10 s). Nothing after
// SEQUENCE ran. Like the client ID the server has already dropped, it is
// recovered from with a new client ID, and the call is sent again.
// NFS4ERR_EXPIRED from another operation is about that operation's
// stateid, not the lease (stateRefused).
var errLeaseExpired = fmt.Errorf("nfs4: SEQUENCE: %w", ErrExpired)

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
		if sessionGone(err) {
			s.markGone(err)
		}
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
//   - NFS4ERR_DELAY and NFS4ERR_GRACE, after a wait from Config.BackOff;
//   - NFS4ERR_CONN_NOT_BOUND_TO_SESSION, after binding the connection;
//   - NFS4ERR_RETRY_UNCACHED_REP for a request that is not cached: a
//     replay of an idempotent request after a reconnect is re-issued as a
//     new request (RFC 8881 §2.10.6.1.3). A non-idempotent one asked the
//     server to cache its reply, so this cannot happen to it by design;
//     if a server does it anyway the error is returned, not retried.
//
// The last two happen once after a reconnect. A server that repeats them
// is broken: the first retry goes at once, later ones wait as for
// NFS4ERR_DELAY, and after maxRebinds the server's error is returned
// (the request did not run, so hard and soft calls alike may fail).
func (c *Client) callSession(ctx context.Context, s *sessState, req request) error {
	var b backoff.BackOff
	rebinds := 0
	for {
		err := c.callOnce(ctx, s, req)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrConnNotBoundToSession),
			errors.Is(err, ErrRetryUncachedRep) && !cached(req):
			if rebinds++; rebinds > maxRebinds {
				return err
			}
			if errors.Is(err, ErrConnNotBoundToSession) {
				if berr := c.bindConn(ctx, &s.id); berr != nil {
					return err
				}
			}
			if rebinds == 1 {
				continue
			}
		case !retryLater(err):
			return err
		}
		if b == nil {
			b = c.newBackOff()
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return err
		}
		if errors.Is(err, ErrGrace) {
			c.rstats.graceWaits.Add(1)
		}
		c.log.Debug("nfs4: server asked to retry", "err", err, "wait", wait)
		if !c.pause(ctx, wait) {
			return err
		}
	}
}

// pause waits d, and reports false if ctx ended or the Client closed
// first.
func (c *Client) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.closing:
		return false
	}
}

// maxRebinds bounds the retries of one call that the server answers with
// NFS4ERR_CONN_NOT_BOUND_TO_SESSION or NFS4ERR_RETRY_UNCACHED_REP.
const maxRebinds = 8

// newBackOff returns the backoff for one call's NFS4ERR_DELAY and
// NFS4ERR_GRACE retries.
func (c *Client) newBackOff() backoff.BackOff {
	b := c.cfg.BackOff()
	if b == nil {
		b = defaultBackOff()
	}
	b.Reset()
	return b
}

// unsettler is implemented by requests whose sender must know when the
// server can no longer carry out one whose caller gave up: a WRITE that
// lands late could overwrite newer data. unsettled counts such requests
// from when their caller gives up until their slot is resynchronised.
type unsettler interface{ unsettled() *opGroup }

// cached reports whether req asks the server to cache its reply.
func cached(req request) bool {
	k, ok := req.(cacher)
	return ok && k.cacheThis()
}

func (c *Client) callOnce(ctx context.Context, s *sessState, req request) error {
	if err := ctx.Err(); err != nil {
		return err // not worth a slot's resync
	}
	if s.v40 {
		return c.callOnce40(ctx, s, req)
	}
	id, seq, highest, err := s.slots.get(ctx)
	if err != nil {
		return err
	}
	answered, processed, err := c.send(ctx, s, id, seq, highest, req)
	var b backoff.BackOff
	for answered && !processed && errors.Is(err, ErrDelay) {
		// SEQUENCE itself answered NFS4ERR_DELAY: the server may still be
		// running the original of this request, which a retransmission
		// after a reconnect met in progress (RFC 8881 §2.10.6.2). Only the
		// same slot and sequence ID can learn its outcome; sent on another
		// slot, the request would run a second time. A server that had not
		// run it runs it now.
		if b == nil {
			b = c.newBackOff()
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop || !c.pause(ctx, wait) {
			answered = false // the slot's state is unknown: resync finds it
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			break
		}
		answered, processed, err = c.send(ctx, s, id, seq, highest, req)
	}
	if answered && !processed && errors.Is(err, ErrRetryUncachedRep) {
		// The server processed the original of this replay: its slot is
		// at seq even though it will not repeat the reply.
		processed = true
	}
	if answered {
		s.slots.put(id, seq, processed)
		return err
	}
	// No reply: the request may have run, may still be running on the
	// server, or may never have arrived. The slot stays busy until resync
	// finds out which; a closing Client needs it no more.
	var unsettled *opGroup
	if u, ok := req.(unsettler); ok {
		unsettled = u.unsettled()
		unsettled.add()
	}
	if !c.spawn(func() {
		c.resync(s, id, seq)
		if unsettled != nil {
			unsettled.done()
		}
	}) {
		s.slots.put(id, seq, true)
		if unsettled != nil {
			unsettled.done()
		}
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
	cc.c, cc.req, cc.sess, cc.client, cc.minor = c, req, s, nil, c.minor
	cc.slot, cc.seq, cc.highest = id, seq, highest
	cc.answered, cc.seqOK = false, false
	err = c.rpc.Call(ctx, procCompound, cc, cc)
	if cc.seqOK {
		c.sequenced(s, &cc.seqRes)
	}
	if err != nil && cc.answered && refusesPort(cc.r.failed, err) {
		err = c.portRefused(err)
	}
	return cc.answered, cc.seqOK, err
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
		if s.goneErr() != nil {
			s.slots.put(id, seq, true) // gone with the session
			return
		}
		ctx, cancel := context.WithTimeout(c.bgCtx, max(c.lease, time.Second))
		answered, processed, err := c.send(ctx, s, id, try, uint32(id), nopRequest{})
		cancel()
		if answered && (processed || errors.Is(err, ErrRetryUncachedRep)) {
			// Processed now, or by an earlier probe whose reply was lost
			// (the server takes this one for its replay): the slot is at
			// try either way.
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
//
// NFS4ERR_DELAY means the server did nothing and asks to be asked again;
// the Linux server answers DESTROY_SESSION so while a call of the session
// is running. The request is sent again after the backoff's wait, until
// ctx ends or maxNoSessionDelays waits have passed. Close calls this after
// the Client has begun closing, so only ctx bounds the wait.
func (c *Client) callNoSession(ctx context.Context, req request) error {
	var b backoff.BackOff
	for delays := 0; ; delays++ {
		_, _, err := c.send(ctx, nil, 0, 0, 0, req)
		if !errors.Is(err, ErrDelay) || delays == maxNoSessionDelays {
			return err
		}
		if b == nil {
			b = c.newBackOff()
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop || !sleep(ctx, wait) {
			return err
		}
	}
}

// maxNoSessionDelays bounds callNoSession's retries after NFS4ERR_DELAY.
const maxNoSessionDelays = 16

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
