package nfs4

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// dialGanesha starts a Ganesha and returns a Client connected to it from an
// ephemeral port, closed at cleanup.
func dialGanesha(t testing.TB, gcfg ganesha.Config, cfg Config) (*ganesha.Server, *Client) {
	t.Helper()
	srv := ganesha.Start(t, gcfg)
	if cfg.Policy == nil {
		cfg.Policy = policy.Ephemeral(policy.Options{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.Addr(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, c
}

func TestSessionEstablishedAndLeaseRenewed(t *testing.T) {
	testutil.CheckLeaks(t)
	_, c := dialGanesha(t, ganesha.Config{Lease: 3 * time.Second}, Config{Slots: 16})
	st := c.Stats()
	if st.Slots < 1 || st.Slots > 16 || st.RSize < 4096 || st.WSize < 4096 || st.Lease != 3*time.Second {
		t.Fatalf("negotiated %+v", st)
	}
	if len(c.rootFH) == 0 || c.supported.IsEmpty() {
		t.Fatalf("no root file handle or supported attributes")
	}
	// Idle for longer than the lease: the renewer keeps it alive, so a
	// call afterwards needs no recovery.
	time.Sleep(4 * time.Second)
	if err := c.call(context.Background(), nopRequest{}); err != nil {
		t.Fatalf("SEQUENCE after an idle lease period: %v", err)
	}
	if n := c.Stats().RPC.Calls; n < 6 {
		t.Errorf("only %d calls: the lease renewer did not run", n)
	}
}

// TestSessionSurvivesReconnect: after the connection is dropped, the next
// calls redial and carry on in the same session (SEQUENCE binds the new
// connection to it, as RFC 8881 allows for SP4_NONE client IDs).
func TestSessionSurvivesReconnect(t *testing.T) {
	testutil.CheckLeaks(t)
	// NoAC: each Stat must reach the server to redial.
	srv, c := dialGanesha(t, ganesha.Config{}, Config{NoAC: true})
	ctx := context.Background()
	session := c.st.Load()
	for i := 0; i < 3; i++ {
		c.tr.Fail(c.tr.Stats().Gen, io.ErrUnexpectedEOF) // drop the connection
		if _, err := c.Stat(ctx, srv.Pseudo()); err != nil {
			t.Fatalf("Stat after reconnect %d: %v", i+1, err)
		}
	}
	st := c.Stats()
	if st.Transport.Reconnects != 3 || c.st.Load() != session {
		t.Fatalf("reconnects %d (want 3), session changed: %v", st.Transport.Reconnects, c.st.Load() != session)
	}
	if st.Recovery.SessionResets != 0 || st.Recovery.ClientIDResets != 0 {
		t.Errorf("recovery stats after plain reconnects: %+v", st.Recovery)
	}
}
