package nfs4

import (
	"context"
	"fmt"
	"time"
)

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
	for f := range c.files {
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

// checkSecurity asks the server (SECINFO_NO_NAME on the root) which
// security flavors it accepts and fails clearly if the one this client uses
// is not among them.
func (c *Client) checkSecurity(ctx context.Context, flavor uint32) error {
	var res secinfoRes
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putrootfh(); cmp.secinfoNoName(secinfoStyleCurrentFH) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutRootFH); err != nil {
				return err
			}
			return r.secinfoNoName(&res)
		},
	})
	if err != nil {
		return err
	}
	var offered []uint32
	for _, s := range res.flavors[:res.n] {
		if s.flavor == flavor {
			return nil
		}
		offered = append(offered, s.flavor)
	}
	if res.n == 0 {
		return nil // a server that lists nothing leaves it to the calls
	}
	return fmt.Errorf("nfs4: the server's root accepts security flavors %v, not %d: %w", offered, flavor, ErrWrongSec)
}
