package rpc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
)

const (
	nfsProgram = 100003
	nfsV4      = 4
)

// TestNFSNullAgainstGanesha: a real NFS-Ganesha, started by the test on a
// free loopback port, answers the NULL procedure of NFSv4 — from a reserved
// port with AUTH_SYS (root only) and from an ephemeral one — and answers a
// wrong version and a wrong program with the typed errors.
func TestNFSNullAgainstGanesha(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := ganesha.Start(t, ganesha.Config{})
	ctx := ctxT(t, time.Minute)

	auth, err := rpc.NewAuthSys(rpc.SysCred{Machine: "gonfs-test", UID: 0, GID: 0})
	if err != nil {
		t.Fatal(err)
	}
	policies := map[string]policy.Policy{"Ephemeral": policy.Ephemeral(policy.Options{})}
	if isRoot() {
		policies["NewReservedPort"] = policy.NewReservedPort(policy.Options{})
	}
	for name, p := range policies {
		c := dial(t, srv.Addr(), p, rpc.Config{Prog: nfsProgram, Vers: nfsV4, Auth: auth})
		if err := c.Call(ctx, 0, nil, nil); err != nil {
			t.Fatalf("%s: NFSv4 NULL: %v", name, err)
		}
	}

	c := dial(t, srv.Addr(), nil, rpc.Config{Prog: nfsProgram, Vers: 5, Auth: auth})
	err = c.Call(ctx, 0, nil, nil)
	var ae *rpc.AcceptError
	if !errors.Is(err, rpc.ProgMismatch) || !errors.As(err, &ae) || ae.Low > nfsV4 || ae.High < nfsV4 {
		t.Errorf("NFS version 5: got %v, want PROG_MISMATCH with a range including 4", err)
	}
	c = dial(t, srv.Addr(), nil, rpc.Config{Prog: 100099, Vers: 1, Auth: auth})
	if err := c.Call(ctx, 0, nil, nil); !errors.Is(err, rpc.ProgUnavail) {
		t.Errorf("program 100099: got %v, want PROG_UNAVAIL", err)
	}
}
