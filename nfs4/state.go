package nfs4

import (
	"context"
	"time"
)

// Open state: each File's stateid (openState), the Client's registry of
// Files with open state that recovery walks, the retry of a request whose
// stateid the server refuses (File.callState), and the check of every
// stateid after the server reports revoked state.

// openState is a File's open state on the server, replaced as a whole when
// it is reclaimed or reopened.
type openState struct {
	sid   stateID // as OPEN returned it, for CLOSE
	ioSID stateID // sid with seqid 0, "the current one" (RFC 8881 §8.2.2), for READ, WRITE, SETATTR
	epoch uint64  // the client ID epoch it belongs to
	lost  error   // set: the state is gone; every operation fails with it
}

func newOpenState(sid stateID, epoch uint64) *openState {
	st := &openState{sid: sid, ioSID: sid, epoch: epoch}
	st.ioSID.seqid = 0
	return st
}

// newState returns the open state sid of epoch for this File. NFSv4.0
// has no "current" seqid 0: its I/O carries the stateid as it is.
func (s *fileIO) newState(sid stateID, epoch uint64) *openState {
	st := newOpenState(sid, epoch)
	if s.oo != nil {
		st.ioSID = sid
	}
	return st
}

// replace installs the state sid of epoch in place of old. It reports
// false if old was replaced meanwhile; a later reopen by the same open
// owner returns the same stateid with a larger seqid, which is kept.
func (s *fileIO) replace(old *openState, sid stateID, epoch uint64) bool {
	next := s.newState(sid, epoch)
	if s.state.CompareAndSwap(old, next) {
		return true
	}
	cur := s.state.Load()
	if cur.lost == nil && cur.epoch == epoch && cur.sid.other == sid.other && sid.seqid > cur.sid.seqid {
		s.state.CompareAndSwap(cur, next)
	}
	return false
}

// staleFiles returns the registered Files whose open state belongs to an
// epoch before epoch and is not lost.
func (c *Client) staleFiles(epoch uint64) []*File {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	var out []*File
	for _, f := range c.files {
		if st := f.io.state.Load(); st.lost == nil && st.epoch < epoch {
			out = append(out, f)
		}
	}
	return out
}

// publish makes s the session every call uses.
func (c *Client) publish(s *sessState) {
	c.filesMu.Lock()
	c.st.Store(s)
	c.filesMu.Unlock()
}

// publishIfDone publishes s if no registered File is left with state of
// an older epoch, and reports whether it did. Registering a File and
// publishing are serialized, so a File registered with old state is
// either seen here or sees the new epoch itself (register).
func (c *Client) publishIfDone(s *sessState) bool {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	for _, f := range c.files {
		if st := f.io.state.Load(); st.lost == nil && st.epoch < s.epoch {
			return false
		}
	}
	c.st.Store(s)
	return true
}

// register adds an open File whose state was obtained in epoch. If a new
// client ID was published since, its state is from a server that no longer
// has it: it is opened again at once.
func (c *Client) register(ctx context.Context, f *File, epoch uint64) error {
	c.filesMu.Lock()
	c.files[f.fileCore] = f
	s := c.st.Load()
	c.filesMu.Unlock()
	if s.epoch == epoch {
		return nil
	}
	return c.recoverOpen(ctx, f, f.io.state.Load(), ErrStaleClientID)
}

// unregister removes a File being closed.
func (c *Client) unregister(f *File) {
	c.filesMu.Lock()
	delete(c.files, f.fileCore)
	c.filesMu.Unlock()
}

// stateRequest is a request that carries the File's open stateid, loaded
// when it is encoded; sentState is the state its latest encoding sent.
type stateRequest interface {
	request
	sentState() *openState
}

// callState runs q, and if the server refuses the stateid it carried
// (revoked, expired, unknown), re-establishes the File's open state and
// runs q again, at most maxStateRetries times.
func (f *File) callState(ctx context.Context, q stateRequest) error {
	for refused := 0; ; refused++ {
		err := f.c.call(ctx, q)
		if err == nil || refused == maxStateRetries || !stateRefused(err) {
			return err
		}
		if err := f.c.recoverOpen(ctx, f, q.sentState(), err); err != nil {
			return err
		}
	}
}

// maxStateRetries bounds how often one READ, WRITE or SETATTR is sent
// again after the server refused the File's stateid and it was recovered.
const maxStateRetries = 2

// State operations used to check and release server state: TEST_STATEID
// tells which of the client's stateids the server still honours (after a
// SEQ4_STATUS_*_REVOKED flag, RFC 8881 §8.2.3 and §18.48), FREE_STATEID
// releases one the server has revoked.

// testStateIDs asks the server which of ids are still valid. It returns one
// Status per stateid: OK, or why it is not (NFS4ERR_BAD_STATEID,
// NFS4ERR_EXPIRED, NFS4ERR_ADMIN_REVOKED, ...).
func (c *Client) testStateIDs(ctx context.Context, ids []stateID) ([]Status, error) {
	codes := make([]Status, len(ids))
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.testStateID(ids) },
		p: func(r *reply) error { return r.testStateID(codes) },
	})
	return codes, err
}

// freeStateID releases a stateid the server has revoked or that is no
// longer needed.
func (c *Client) freeStateID(ctx context.Context, id stateID) error {
	return c.call(ctx, funcRequest{
		b:     func(cmp *compound) { cmp.freeStateID(&id) },
		p:     func(r *reply) error { return r.statusOnly(opFreeStateID) },
		cache: true,
	})
}

// checkStatesSoon starts checkStates in the background unless one is under
// way or one ended less than checkStatesEvery ago: a revoked-state flag
// stays set on every SEQUENCE until the client has freed what was revoked.
func (c *Client) checkStatesSoon() {
	if !c.checkOn.CompareAndSwap(false, true) {
		return
	}
	if !c.spawn(func() {
		c.checkStates(c.bgCtx)
		t := time.NewTimer(checkStatesEvery)
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
		}
		c.checkOn.Store(false)
	}) {
		c.checkOn.Store(false)
	}
}

// checkStatesEvery is the shortest time between two checkStates.
const checkStatesEvery = time.Second

// testStateBatch is how many stateids one TEST_STATEID carries.
const testStateBatch = 32

// checkStates asks the server which open Files' stateids it still honours
// (TEST_STATEID), releases those it revoked (FREE_STATEID) and opens their
// files again, as RFC 8881 §8.2.3 asks of a client that sees a
// SEQ4_STATUS_*_REVOKED flag.
func (c *Client) checkStates(ctx context.Context) {
	c.filesMu.Lock()
	var files []*File
	var states []*openState
	for _, f := range c.files {
		if st := f.io.state.Load(); st.lost == nil {
			files, states = append(files, f), append(states, st)
		}
	}
	c.filesMu.Unlock()
	for start := 0; start < len(files); start += testStateBatch {
		end := min(start+testStateBatch, len(files))
		ids := make([]stateID, 0, end-start)
		for _, st := range states[start:end] {
			ids = append(ids, st.sid)
		}
		codes, err := c.testStateIDs(ctx, ids)
		if err != nil {
			c.log.Warn("nfs4: TEST_STATEID failed", "err", err)
			return
		}
		for i, code := range codes {
			if code == OK {
				continue
			}
			f, st := files[start+i], states[start+i]
			if err := c.freeStateID(ctx, ids[i]); err != nil {
				c.log.Debug("nfs4: FREE_STATEID", "file", f.name, "err", err)
			}
			if err := c.recoverOpen(ctx, f, st, code); err != nil {
				c.log.Warn("nfs4: reopening a file whose state was revoked failed", "file", f.name, "err", err)
			}
		}
	}
}
