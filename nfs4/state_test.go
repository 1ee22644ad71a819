package nfs4

import (
	"context"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

func TestStateIDOperations(t *testing.T) {
	testutil.CheckLeaks(t)
	_, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	bogus := stateID{seqid: 1, other: [otherSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	codes, err := c.testStateIDs(ctx, []stateID{bogus, bogus})
	// The made-up "other" field names no server instance, so Ganesha calls
	// it stale (it would be BAD_STATEID from a server that cannot tell).
	for _, st := range codes {
		if st != ErrStaleStateID && st != ErrBadStateID {
			t.Fatalf("TEST_STATEID of made-up stateids: %v, %v; want STALE or BAD_STATEID each", codes, err)
		}
	}
	if err != nil || len(codes) != 2 {
		t.Fatalf("TEST_STATEID: %v, %v", codes, err)
	}
	if err := c.freeStateID(ctx, bogus); err == nil {
		t.Fatalf("FREE_STATEID of a made-up stateid succeeded")
	}
}
