package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// State recovery (RFC 8881 §2.10.6, §8.4, §8.6).
//
// A Client's server state is a client ID, a session on it, and the open
// state of each File. Reconnecting to a live server keeps all three (the
// rpc layer re-sends, callSession binds the connection). When more is
// lost, a call's SEQUENCE fails and the first caller to see it starts one
// recovery; every other call waits for it, then runs on the new session:
//
//   - The session is gone (NFS4ERR_BADSESSION, DEADSESSION, a slot out of
//     sequence that cannot be repaired): CREATE_SESSION on the same client
//     ID. Open state is untouched.
//   - The client ID is gone too (CREATE_SESSION answers
//     NFS4ERR_STALE_CLIENTID: the server restarted, another server took
//     over the address, or the lease expired and the server dropped us):
//     EXCHANGE_ID with the same owner and verifier, then CREATE_SESSION.
//     If the server still knows the client ID (EXCHGID4_FLAG_CONFIRMED_R),
//     open state survived. Otherwise every open File is reclaimed with an
//     OPEN of CLAIM_PREVIOUS during the server's grace period, then
//     RECLAIM_COMPLETE, then the Files the server would not let us reclaim
//     (NFS4ERR_NO_GRACE: not in grace or a server that never saw us;
//     NFS4ERR_RECLAIM_BAD) are opened again by handle (CLAIM_FH), which
//     waits out a grace period still running (NFS4ERR_GRACE is retried).
//
// Only then is the new session published, so no call can run on it with
// a stateid from before. A File whose state cannot be recovered (its file
// was removed meanwhile, say) fails every operation from then on with an
// error matching ErrStateLost rather than carry on with state it does not
// have. Uncommitted writes survive all of this: a File keeps the data of
// UNSTABLE writes until a COMMIT returns the verifier they were written
// with, and writes them again otherwise.
//
// The recovery runs on the Client's background context, not a caller's:
// a caller whose context ends stops waiting, the recovery goes on until
// it succeeds, fails with a protocol error (the next call starts another),
// or the Client is closed. With Config.Soft its calls time out like any
// other, and the calls waiting for it fail with that timeout.
//
// What cannot be recovered, as on every NFSv4.1 client: a non-idempotent
// request whose reply was lost together with the session (the server
// restarted after running it) is sent again on the new session and may
// run twice; an exclusive create is still safe (its verifier identifies
// the retry). Within one session, the reply cache makes re-sent requests
// exactly-once.

// ErrStateLost is matched (errors.Is) by the errors of a File whose open
// state the server lost and that could not be re-established. The File
// must be closed and opened again; data written through it and not yet
// committed may be lost, which is why it fails rather than carry on.
var ErrStateLost = errors.New("nfs4: open state lost and not recoverable; close and reopen the file")

// recovery is one run of state recovery; done is closed when it ends, err
// set before.
type recovery struct {
	old   *sessState
	cause error
	done  chan struct{}
	err   error
}

// maxRedrives bounds how often one call is sent again on a new session.
const maxRedrives = 4

// maxRecoveryAttempts bounds how often one recovery starts over because
// the session it was building was lost too.
const maxRecoveryAttempts = 8

// current returns the session to send on, waiting for a recovery under way
// to end first.
func (c *Client) current(ctx context.Context) (*sessState, error) {
	if r := c.rec.Load(); r != nil {
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closing:
		}
	}
	return c.st.Load(), nil
}

// recover makes sure a recovery from the loss of session old runs (unless
// old was replaced already) and waits for it to end or ctx to.
func (c *Client) recover(ctx context.Context, old *sessState, cause error) error {
	r, err := c.startRecovery(old, cause)
	if r == nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startRecovery makes sure a recovery from the loss of session old runs,
// and returns it; nil and no error if old was replaced already, nil and
// cause if the Client is closing.
func (c *Client) startRecovery(old *sessState, cause error) (*recovery, error) {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	if c.st.Load() != old {
		return nil, nil
	}
	r := c.rec.Load()
	if r == nil {
		r = &recovery{old: old, cause: cause, done: make(chan struct{})}
		if !c.spawn(func() { c.runRecovery(r) }) {
			return nil, cause // closing
		}
		c.rec.Store(r)
	}
	return r, nil
}

// runRecovery runs recovery r on the background context.
func (c *Client) runRecovery(r *recovery) {
	start := time.Now()
	c.log.Warn("nfs4: session lost, recovering", "cause", r.cause)
	s, err := c.reestablish(c.bgCtx, r.old, r.cause)
	for attempt := 1; err != nil && sessionLost(err) && attempt < maxRecoveryAttempts; attempt++ {
		// The server went away again in the middle (it restarted twice,
		// say): start over from what is published.
		c.log.Warn("nfs4: recovery interrupted, starting again", "err", err, "attempt", attempt)
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
		}
		s, err = c.reestablish(c.bgCtx, r.old, err)
	}
	c.recMu.Lock()
	r.err = err
	c.rec.Store(nil)
	c.recMu.Unlock()
	close(r.done)
	if err != nil {
		c.log.Warn("nfs4: recovery failed", "err", err, "after", time.Since(start))
		return
	}
	took := time.Since(start)
	c.rstats.recovered(took)
	c.log.Info("nfs4: recovered", "clientid", fmt.Sprintf("%#x", s.clientID),
		"epoch", s.epoch, "took", took)
}

// reestablish creates a session to replace old — on the same client ID if
// the server still has it, else on a new one, reclaiming the Files' open
// state — and publishes it.
func (c *Client) reestablish(ctx context.Context, old *sessState, cause error) (*sessState, error) {
	if old.v40 {
		return c.reestablish40(ctx, old)
	}
	// After a move to another server (serverowner.go) the old client ID
	// means nothing there, or another client's.
	if !errors.Is(cause, ErrStaleClientID) && !errors.Is(cause, errLeaseExpired) && !c.srv.moving() {
		s, err := c.createSession(ctx, old.clientID, old.epoch)
		if err == nil {
			c.rstats.sessionResets.Add(1)
			c.log.Info("nfs4: new session on the same client ID", "clientid", fmt.Sprintf("%#x", s.clientID))
			c.publish(s)
			return s, nil
		}
		if !errors.Is(err, ErrStaleClientID) && !errors.Is(err, ErrExpired) {
			return nil, fmt.Errorf("nfs4: recovery: CREATE_SESSION: %w", err)
		}
	}
	eid, err := c.exchangeID(ctx)
	if err != nil {
		return nil, fmt.Errorf("nfs4: recovery: EXCHANGE_ID: %w", err)
	}
	kept := eid.flags&exchgidFlagConfirmedR != 0 && eid.clientID == old.clientID
	epoch := old.epoch
	if !kept {
		// A new epoch, also past those of attempts that failed half-way:
		// state reclaimed then belongs to a client ID that may be gone.
		c.lastEpoch++
		epoch = c.lastEpoch
	}
	s, err := c.createSession(ctx, eid.clientID, epoch)
	if err != nil {
		return nil, fmt.Errorf("nfs4: recovery: CREATE_SESSION: %w", err)
	}
	// The server of the new client ID, from now on; prev granted the
	// state to reclaim.
	prev := c.srv.set(ownerOf(eid))
	if kept {
		c.rstats.sessionResets.Add(1)
		c.log.Info("nfs4: the server kept our client ID; new session", "clientid", fmt.Sprintf("%#x", s.clientID))
		c.publish(s)
		return s, nil
	}
	c.rstats.clientIDResets.Add(1)
	c.cache.clear()
	// State may be reclaimed from a server of the same scope (RFC 8881
	// §2.10.4); another scope has nothing of ours to give back.
	sameScope := bytes.Equal(eid.serverScope, prev.scope)
	c.log.Warn("nfs4: client ID lost; new client ID, reclaiming open files",
		"clientid", fmt.Sprintf("%#x", s.clientID), "same_scope", sameScope,
		"server_owner", string(eid.serverOwnerMajor), "scope", string(eid.serverScope))
	if err := c.reclaimAll(ctx, s, sameScope); err != nil {
		return nil, err
	}
	return s, nil
}

// reclaimAll re-establishes the open state of every File of an older epoch
// on the new client ID of s, completes reclaim, and publishes s.
func (c *Client) reclaimAll(ctx context.Context, s *sessState, tryReclaim bool) error {
	if tryReclaim {
	reclaim:
		for _, f := range c.staleFiles(s.epoch) {
			err := c.reclaimFile(ctx, s, f)
			switch {
			case err == nil:
			case errors.Is(err, ErrNoGrace):
				// Not in grace for us (a server that never saw us, or its
				// grace ended): nothing more can be reclaimed.
				break reclaim
			case errors.Is(err, ErrReclaimBad), errors.Is(err, ErrReclaimConflict):
				// Reopened below.
			case permanentOpenErr(err):
				c.loseFile(f, err)
			default:
				return fmt.Errorf("nfs4: recovery: reclaim %s: %w", f.name, err)
			}
		}
	}
	// Reclaim is complete: the server may now grant other clients'
	// conflicting opens, and our own non-reclaim ones once grace ends.
	// (NFSv4.0 has no RECLAIM_COMPLETE.)
	if !s.v40 {
		if err := c.callSession(ctx, s, funcRequest{
			b: func(cmp *compound) { cmp.reclaimComplete(false) },
			p: func(r *reply) error { return r.statusOnly(opReclaimComplete) },
		}); err != nil && !errors.Is(err, ErrCompleteAlready) {
			return fmt.Errorf("nfs4: recovery: RECLAIM_COMPLETE: %w", err)
		}
	}
	// What was not reclaimed is opened again by handle; so is a File
	// registered meanwhile with state from the old client ID.
	for pass := 0; ; pass++ {
		if c.publishIfDone(s) {
			return nil
		}
		if pass == maxReopenPasses {
			return errors.New("nfs4: recovery: files kept registering with old state")
		}
		for _, f := range c.staleFiles(s.epoch) {
			err := c.reopenFile(ctx, s, f, f.io.state.Load())
			if err != nil && !errors.Is(err, ErrStateLost) {
				return fmt.Errorf("nfs4: recovery: reopen %s: %w", f.name, err)
			}
		}
	}
}

// maxReopenPasses bounds reclaimAll's passes over Files registered while it
// runs; each pass sees only Files whose OPEN completed before the loss.
const maxReopenPasses = 8

// reclaimFile reclaims f's open state with CLAIM_PREVIOUS on session s.
func (c *Client) reclaimFile(ctx context.Context, s *sessState, f *File) error {
	old := f.io.state.Load()
	if old.lost != nil || old.epoch >= s.epoch {
		return nil
	}
	replaced, err := c.openAgain(ctx, s, f, old, claimPrevious)
	if replaced {
		c.rstats.reclaims.Add(1)
		c.log.Info("nfs4: reclaimed open file", "file", f.name)
	}
	return err
}

// reopenFile opens f again by its handle (CLAIM_FH) on session s, replacing
// its open state old. A refusal that no retry can change loses the File:
// it then fails with ErrStateLost, which reopenFile returns.
func (c *Client) reopenFile(ctx context.Context, s *sessState, f *File, old *openState) error {
	if old.lost != nil {
		return old.lost
	}
	replaced, err := c.openAgain(ctx, s, f, old, claimFH)
	if permanentOpenErr(err) {
		return c.loseFile(f, err)
	}
	if replaced {
		c.rstats.reopens.Add(1)
		c.log.Info("nfs4: reopened file", "file", f.name)
	}
	return err
}

// openAgain sends an OPEN of f's file by its open owner and share access
// on session s, with claim (CLAIM_PREVIOUS or CLAIM_FH, both on f's
// handle), and installs the state it returns in place of old. It reports
// whether it did; false with no error means old was replaced meanwhile.
func (c *Client) openAgain(ctx context.Context, s *sessState, f *File, old *openState, claim uint32) (bool, error) {
	q := &openReq{putFH: f.fh, args: openArgs{
		claim:       claim,
		delegType:   delegNone,
		shareAccess: c.shareAccess(f.io.mode.access),
		shareDeny:   shareDenyNone,
		clientID:    s.clientID,
		owner:       f.io.owner,
	}}
	q.mask = c.mask(MaskOf(AttrSize, AttrChange))
	if q.oo = f.io.oo; q.oo != nil && claim == claimFH {
		q.putFH, q.args.claim, q.args.name = q.oo.dirFH, claimNull, q.oo.base
	}
	if err := c.callSession(ctx, s, q); err != nil {
		return false, err
	}
	if err := c.reopened40(ctx, s, f, q); err != nil {
		return false, err
	}
	if d := &q.res.deleg; d.typ == delegRead || d.typ == delegWrite {
		c.returnDelegation(ctx, s, f.fh, &d.stateID)
	}
	f.io.writes.Add(1) // the file may have changed meanwhile: no read-ahead from before
	return f.io.replace(old, q.res.stateID, s.epoch), nil
}

// loseFile marks f's state lost because of cause and returns the error its
// operations fail with from now on.
func (c *Client) loseFile(f *File, cause error) error {
	lost := fmt.Errorf("%w (%w)", ErrStateLost, cause)
	for {
		old := f.io.state.Load()
		if old.lost != nil {
			return old.lost
		}
		if f.io.state.CompareAndSwap(old, &openState{sid: old.sid, ioSID: old.ioSID, epoch: old.epoch, lost: lost}) {
			break
		}
	}
	c.rstats.lostFiles.Add(1)
	c.log.Error("nfs4: open state of a file lost", "file", f.name, "err", cause)
	return lost
}

// recoverOpen re-establishes f's open state after the server refused the
// stateid of used: it revoked it, or the lease expired while the session
// survived, or f registered with state of a client ID lost since.
// Concurrent callers for one File send one OPEN.
func (c *Client) recoverOpen(ctx context.Context, f *File, used *openState, cause error) error {
	if err := f.io.reopenMu.lock(ctx); err != nil {
		return err
	}
	defer f.io.reopenMu.unlock()
	if cur := f.io.state.Load(); cur != used {
		return cur.lost // replaced meanwhile
	}
	c.log.Warn("nfs4: server refused a file's stateid; opening it again", "file", f.name, "err", cause)
	for try := 0; ; try++ {
		s, err := c.current(ctx)
		if err != nil {
			return err
		}
		if cur := f.io.state.Load(); cur != used {
			return cur.lost // a recovery that ran meanwhile took care of it
		}
		err = c.reopenFile(ctx, s, f, used)
		if err == nil || !sessionLost(err) || try == maxRedrives {
			return err
		}
		if err := c.recover(ctx, s, err); err != nil {
			return err
		}
	}
}
