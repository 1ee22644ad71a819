package nfs4

import (
	"context"
	"fmt"
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
