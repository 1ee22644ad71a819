package hostile_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/rpc"
)

func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }

// dial connects a client to s; the test's cleanup closes it.
func dial(t *testing.T, s *hostile.Server, cfg nfs4.Config) *nfs4.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nfs4.Dial(ctx, s.Addr(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A well-behaved hostile server serves a real client: dial, stat, list,
// read, close.
func TestServesClient(t *testing.T) {
	testutil.CheckLeaks(t)
	data := []byte("hello from a hostile server\n")
	s := hostile.Start(t, hostile.Faults{
		Data:    data,
		Entries: []hostile.Entry{{Name: "x", Mode: 0o600}, {Name: "sub", Dir: true}},
		PerPage: 1,
	})
	c := dial(t, s, nfs4.Config{})
	ctx := context.Background()

	fi, err := c.Stat(ctx, "/file")
	if err != nil || fi.Size() != int64(len(data)) || !fi.Mode().IsRegular() {
		t.Fatalf("Stat /file = %v, %v; want a regular file of %d bytes", fi, err, len(data))
	}
	ents, err := c.ReadDir(ctx, "/dir")
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	if len(ents) != 2 || ents[0].Name() != "sub" || !ents[0].IsDir() || ents[1].Name() != "x" {
		t.Fatalf("ReadDir = %v; want sub/ and x", ents)
	}
	if info, _ := ents[1].Info(); info.Mode().Perm() != 0o600 {
		t.Errorf("mode of x = %v; want 0600", info.Mode())
	}
	f, err := c.Open(ctx, "/file")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %q, %v; want %q", got, err, data)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Stat(ctx, "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat /missing: %v; want fs.ErrNotExist", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("client Close: %v", err)
	}
	if s.Ops(hostile.OpDestroySession) != 1 || s.Ops(hostile.OpClose) != 1 {
		t.Errorf("DESTROY_SESSION %d, CLOSE %d; want one each", s.Ops(hostile.OpDestroySession), s.Ops(hostile.OpClose))
	}
}

// Faults.Status answers an operation with one status every time.
func TestStatusForever(t *testing.T) {
	testutil.CheckLeaks(t)
	s := hostile.Start(t, hostile.Faults{})
	c := dial(t, s, nfs4.Config{})
	s.SetFaults(hostile.Faults{Status: map[uint32]uint32{hostile.OpLookup: hostile.StatusNoEnt}})
	if _, err := c.Stat(context.Background(), "/file"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat with LOOKUP failing: %v; want fs.ErrNotExist", err)
	}
}

// A reply sent twice is answered once; the copy is dropped by the client
// as a reply to no call. A reply with an XID nobody sent leaves the call
// unanswered: a soft client times out.
func TestDuplicateAndWrongXID(t *testing.T) {
	testutil.CheckLeaks(t)
	s := hostile.Start(t, hostile.Faults{})
	// NoAC: the second Stat must reach the server, not the attribute cache.
	c := dial(t, s, nfs4.Config{Soft: true, Timeo: 200 * time.Millisecond, Retrans: 1, NoAC: true})
	ctx := context.Background()
	s.SetFaults(hostile.Faults{Reply: func(_ int, msg []byte) hostile.Reply {
		return hostile.Reply{Msg: msg, Twice: true}
	}})
	before := c.Stats().RPC.UnknownXIDs
	if _, err := c.Stat(ctx, "/file"); err != nil {
		t.Fatalf("Stat with every reply sent twice: %v", err)
	}
	// The copy follows the reply the Stat returned with; the reader may
	// not have taken it yet.
	for i := 0; i < 500 && c.Stats().RPC.UnknownXIDs == before; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Replies() == 0 || c.Stats().RPC.UnknownXIDs == before {
		t.Errorf("no duplicate reply counted as an unknown XID")
	}
	s.SetFaults(hostile.Faults{Reply: func(_ int, msg []byte) hostile.Reply {
		bogus := append([]byte(nil), msg...)
		bogus[0] ^= 0xff
		return hostile.Reply{Msg: bogus}
	}})
	if _, err := c.Stat(ctx, "/file"); !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("Stat with every XID wrong: %v; want rpc.ErrTimeout", err)
	}
	s.SetFaults(hostile.Faults{})
}
