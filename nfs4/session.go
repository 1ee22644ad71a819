package nfs4

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/rpc"
)

// The session's life (RFC 8881 §2.4, §2.10): establish creates the client
// ID (EXCHANGE_ID) and the session (CREATE_SESSION), reads the root and
// checks the security flavor (SECINFO_NO_NAME); renew keeps the lease
// alive; bindConn binds a new connection to the session; destroy ends
// session and client ID at Close. A lost session is replaced by the
// recovery (Client.recover).

// sessState is one session: its client ID, its ID and slot table. Recovery
// replaces it as a whole; calls read it with c.st.Load().
type sessState struct {
	clientID uint64
	id       sessionID
	slots    *slotTable
	// epoch counts client IDs: a new one (state lost) increments it. An
	// open state of an older epoch must be reclaimed.
	epoch uint64
	// v40: an NFSv4.0 client ID, without a session; slots only bound
	// the calls in flight (v40.go).
	v40 bool
	// gone is set once the server answered that it no longer has the
	// session (sessionGone): calls of the session cut off by a lost
	// connection are then not re-sent (compoundCall.Resend).
	gone atomic.Pointer[error]
}

// markGone records that the server no longer has session s, as err said.
func (s *sessState) markGone(err error) {
	s.gone.CompareAndSwap(nil, &err)
}

// goneErr returns what said that the server no longer has s, or nil.
func (s *sessState) goneErr() error {
	if p := s.gone.Load(); p != nil {
		return *p
	}
	return nil
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
	c.ownerID = []byte(ownerID)
	copy(c.verf[:], randomID(4)) // 8 hex bytes: a new boot verifier per Client
	c.owner = []byte("open:" + ownerID)
	if len(c.owner) > opaqueLimit {
		c.owner = c.owner[:opaqueLimit]
	}

	if c.cfg.Version == Version40 {
		return c.establish40(ctx, nil)
	}
	var tried []uint32
	var eid *exchangeIDRes
	for _, minor := range c.cfg.Version.sessionMinors() {
		c.minor = minor
		var err error
		eid, err = c.exchangeID(ctx)
		if errors.Is(err, ErrMinorVersMismatch) {
			tried = append(tried, minor)
			c.log.Info("nfs4: the server refused a minor version; trying the next", "version", fmt.Sprintf("4.%d", minor))
			continue
		}
		if err != nil {
			return fmt.Errorf("EXCHANGE_ID: %w", err)
		}
		break
	}
	if eid == nil {
		if c.cfg.Version == VersionAny {
			c.log.Info("nfs4: trying NFSv4.0")
			return c.establish40(ctx, tried)
		}
		return &VersionError{Tried: tried}
	}
	owner := ownerOf(eid)
	c.srv.set(owner)
	s, err := c.createSession(ctx, eid.clientID, 0)
	if err != nil {
		return fmt.Errorf("CREATE_SESSION: %w", err)
	}
	if ts := c.tr.Stats(); ts.Connects == 1 {
		// One connection carried the client ID and the session: its
		// address reaches their server.
		c.srv.add(ts.Addr, &owner)
	}
	c.st.Store(s)

	if err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.reclaimComplete(false) },
		p: func(r *reply) error { return r.statusOnly(opReclaimComplete) },
	}); err != nil && !errors.Is(err, ErrCompleteAlready) {
		return fmt.Errorf("RECLAIM_COMPLETE: %w", err)
	}
	if err := c.readRoot(ctx); err != nil {
		return err
	}
	return c.checkSecurity(ctx, c.auth)
}

// readRoot reads the root's handle and the attributes that size the
// Client's calls: lease time, maxread and maxwrite.
func (c *Client) readRoot(ctx context.Context) error {
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
	return nil
}

// exchangeID sends EXCHANGE_ID with this Client's owner and verifier. For a
// new (unconfirmed) client ID it takes the sequence id the next
// CREATE_SESSION must carry; a confirmed one continues its own.
func (c *Client) exchangeID(ctx context.Context) (*exchangeIDRes, error) {
	var eid exchangeIDRes
	ea := c.exchangeIDArgs()
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
	slots := c.cfg.Slots
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
		sec:       []cbSecParms{{flavor: rpc.AuthFlavorNone}},
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

// randomID returns n random bytes as hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
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

// bindNew binds a new connection to remote, with call sending on it alone,
// to the current session (rpc.Config.Bind): BIND_CONN_TO_SESSION for the
// fore channel before any call of the session goes on it (RFC 8881
// §2.10.3.1), on every further connection (Config.Connections) and every
// reconnect. First, a connection to an address not known to reach the
// session's server is checked (checkServer, serverowner.go); one that
// reaches another server is not bound. Before the first session, and
// over NFSv4.0, there is nothing to bind to. A refusal by the server is
// logged and the connection used anyway: its first SEQUENCE binds it
// implicitly (SP4_NONE) or tells the call that the session is gone, which
// the recovery handles.
func (c *Client) bindNew(ctx context.Context, remote net.Addr, call rpc.CallFunc) error {
	s := c.st.Load()
	if s == nil {
		return nil
	}
	if s.v40 {
		return c.renewOn(ctx, s, call)
	}
	if same, err := c.checkServer(ctx, s, remote, call); !same {
		return err
	}
	var res bindConnRes
	cc := &compoundCall{c: c, minor: c.minor, req: funcRequest{
		b: func(cmp *compound) { cmp.bindConnToSession(&s.id, cdfcForeOrBoth, false) },
		p: func(r *reply) error { return r.bindConnToSession(&res) },
	}}
	err := call(ctx, procCompound, cc, cc)
	var st Status
	if errors.As(err, &st) {
		if sessionGone(err) {
			s.markGone(err)
		}
		c.log.Warn("nfs4: BIND_CONN_TO_SESSION refused; the connection is used unbound", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	c.rstats.rebinds.Add(1)
	c.log.Debug("nfs4: connection bound to the session")
	return nil
}

// renewOn sends RENEW of NFSv4.0 client ID s on a new connection, by
// call, before the calls cut off by the lost one are re-sent there: if the
// server no longer has the client ID (a restarted server, or another one
// behind the address), they are not re-sent with their data only to be
// refused, but go to the new client ID as soon as the recovery has made
// it (compoundCall.Resend). A server that answers otherwise, or not at
// all, leaves the connection as it is; only a failed call refuses it.
func (c *Client) renewOn(ctx context.Context, s *sessState, call rpc.CallFunc) error {
	cc := &compoundCall{c: c, client: s, req: c.renewRequest()}
	err := call(ctx, procCompound, cc, cc)
	var st Status
	switch {
	case sessionGone(err):
		s.markGone(err)
		c.log.Info("nfs4: the server no longer has the client ID; calls cut off are not re-sent", "err", err)
	case err != nil && !errors.As(err, &st):
		return err
	}
	return nil
}

// renew keeps the lease alive: when no SEQUENCE has succeeded for a third
// of the lease, it sends one on its own. Calls in progress renew it anyway.
func (c *Client) renew() {
	every := max(c.lease/3, 100*time.Millisecond)
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastRenew.Load())) < every {
			continue
		}
		ctx, cancel := context.WithTimeout(c.bgCtx, c.lease)
		err := c.call(ctx, c.renewRequest())
		cancel()
		if err == nil && c.v40 {
			// 4.1's SEQUENCE records renewals itself (sequenced).
			c.lastRenew.Store(time.Now().UnixNano())
		}
		if err != nil && !errors.Is(err, rpc.ErrClosed) {
			c.log.Warn("nfs4: lease renewal failed", "err", err)
		}
	}
}

// checkSecurity asks the server (SECINFO_NO_NAME on the root) which
// security flavors it accepts and fails clearly if the one this client uses
// (for RPCSEC_GSS: its mechanism and service as well) is not among them.
func (c *Client) checkSecurity(ctx context.Context, auth rpc.Auth) error {
	var res secinfoRes
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putrootfh(); cmp.secinfoNoName(secinfoStyleCurrentFH) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutRootFH); err != nil {
				return err
			}
			if err := r.secinfoNoName(&res); err != nil {
				return err
			}
			for i := range res.flavors[:res.n] {
				// Kept past the reply, whose buffer is reused.
				res.flavors[i].oid = bytes.Clone(res.flavors[i].oid)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	if res.n == 0 {
		return nil // a server that lists nothing leaves it to the calls
	}
	offered := make([]string, 0, res.n)
	for _, s := range res.flavors[:res.n] {
		if s.accepts(auth) {
			return nil
		}
		offered = append(offered, s.String())
	}
	return fmt.Errorf("nfs4: the server's root accepts %s, not %s: %w",
		strings.Join(offered, ", "), secName(auth), ErrWrongSec)
}

// destroy ends the session and the client ID. Failures are harmless: the
// server reclaims both when the lease expires; those the server explains
// are logged and left to it rather than reported as a failure of Close.
func (c *Client) destroy(ctx context.Context) error {
	s := c.st.Load()
	if s.v40 {
		return nil // NFSv4.0 has no DESTROY_CLIENTID: the lease expires
	}
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
