package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"sync"
	"sync/atomic"
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

func TestStatFollowsSymlinksAcrossTheServer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	dir := srv.ExportDir()
	// A tree made behind the server's back; Attr_Expiration_Time = 0 makes
	// Ganesha see it at once.
	mustRun(t, "mkdir", "-p", dir+"/a/b/c/d/e/f/g/h/i/j/k/l/m")
	mustRun(t, "sh", "-c", "echo hello > "+dir+"/a/b/c/d/e/f/g/h/i/j/k/l/m/file")
	mustRun(t, "ln", "-s", "b/c/d", dir+"/a/link")
	mustRun(t, "ln", "-s", "/export/a/link/e", dir+"/abs")
	ctx := context.Background()
	p := srv.Pseudo()

	fi, err := c.Stat(ctx, p+"/a/b/c/d/e/f/g/h/i/j/k/l/m/file") // more components than one COMPOUND holds
	if err != nil || fi.Size() != 6 || fi.Name() != "file" || !fi.Mode().IsRegular() {
		t.Fatalf("Stat deep file: %v, %v", fi, err)
	}
	fi, err = c.Stat(ctx, p+"/a/link/e/f/g/h/i/j/k/l/m/file") // a relative link in the middle
	if err != nil || fi.Size() != 6 {
		t.Fatalf("Stat through a relative symlink: %v", err)
	}
	fi, err = c.Stat(ctx, p+"/abs") // an absolute link, last component
	if err != nil || !fi.IsDir() || fi.Name() != "abs" {
		t.Fatalf("Stat of an absolute symlink to a directory: %v, %v", fi, err)
	}
	fi, err = c.Lstat(ctx, p+"/abs")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("Lstat of a symlink: %v, %v", fi, err)
	}
	_, err = c.Stat(ctx, p+"/a/missing")
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "stat" || pe.Path != p+"/a/missing" {
		t.Fatalf("Stat of a missing file: %v", err)
	}
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

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

// TestLookuppAndAccess: LOOKUPP from a directory lands on its parent, and
// ACCESS reports what AUTH_SYS root may do on the export.
func TestLookuppAndAccess(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	mustRun(t, "mkdir", srv.ExportDir()+"/child")
	parentFH, _, err := c.lookup(ctx, srv.Pseudo(), true)
	if err != nil {
		t.Fatal(err)
	}
	childFH, _, err := c.lookup(ctx, srv.Pseudo()+"/child", true)
	if err != nil {
		t.Fatal(err)
	}
	var upFH []byte
	var acc accessRes
	want := uint32(accessRead | accessLookup | accessModify | accessExtend | accessDelete)
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(childFH)
			cmp.lookupp()
			cmp.getfh()
			cmp.access(want)
		},
		p: func(r *reply) error {
			for _, op := range []uint32{opPutFH, opLookupP} {
				if err := r.statusOnly(op); err != nil {
					return err
				}
			}
			fh, err := r.getfh()
			upFH = append([]byte(nil), fh...)
			if err != nil {
				return err
			}
			return r.access(&acc)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(upFH) != string(parentFH) {
		t.Errorf("LOOKUPP of /export/child gave %x, want the handle of /export %x", upFH, parentFH)
	}
	if acc.supported != want || acc.access != want {
		t.Errorf("ACCESS for root on the export: supported %#x access %#x, want %#x", acc.supported, acc.access, want)
	}
}

// TestSessionSurvivesReconnect: after the connection is dropped, the next
// calls redial and carry on in the same session (SEQUENCE binds the new
// connection to it, as RFC 8881 allows for SP4_NONE client IDs).
func TestSessionSurvivesReconnect(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
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

// TestAbandonedCallsLeaveSlotsUsable: calls whose context ends while their
// request is on the wire leave their slot's state unknown; the slot is
// resynchronised before reuse, so that no later call is answered as the
// replay of an abandoned one (NFS4ERR_SEQ_MISORDERED,
// NFS4ERR_RETRY_UNCACHED_REP, or a reply to another operation).
func TestAbandonedCallsLeaveSlotsUsable(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{Slots: 8})
	name := srv.Pseudo()
	var wg sync.WaitGroup
	var abandoned atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+(g*i)%300)*time.Microsecond)
				_, err := c.Stat(ctx, name)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("abandoned Stat: %v, want a deadline error", err)
						return
					}
					abandoned.Add(1)
				}
				if _, err := c.Stat(context.Background(), name); err != nil {
					t.Errorf("Stat after abandoned calls: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if abandoned.Load() == 0 {
		t.Log("no call was abandoned mid-flight this run; the machine was faster than the deadlines")
	}
	// Resyncs of abandoned slots run in the background; they finish.
	for i := 0; i < 1000 && c.Stats().RPC.Pending != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.Stats(); st.RPC.Pending != 0 {
		t.Errorf("%d calls still pending 10 s after the last caller returned", st.RPC.Pending)
	}
}
