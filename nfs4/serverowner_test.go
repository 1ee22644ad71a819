package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// Connections to addresses not yet known to reach the session's server
// are checked with EXCHANGE_ID before the session is bound to them
// (serverowner.go).

// writeAll creates name through c and writes data to it.
func writeAll(t *testing.T, ctx context.Context, c *Client, name string, data []byte) {
	t.Helper()
	f, err := c.Create(ctx, name)
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := f.WithContext(ctx).Write(data); err != nil {
		t.Fatalf("Write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close %s: %v", name, err)
	}
}

// mustRead returns the contents of a file on the server's disk.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two servers, A and B, given as the Client's two addresses. While A
// serves, B is never used; once A is gone, the next call reaches B: the
// Client sees another server owner at B's address and, instead of binding
// the old session there, makes a new client ID and session on B, and the
// call succeeds there.
func TestServerOwnerOtherServer(t *testing.T) {
	testutil.CheckLeaks(t)
	a := ganesha.Start(t, ganesha.Config{ServerOwner: "gonfs-test-a", ServerScope: "gonfs-test-a"})
	b := ganesha.Start(t, ganesha.Config{ServerOwner: "gonfs-test-b", ServerScope: "gonfs-test-b"})
	c := dialServer(t, a.Addr(), Config{Addrs: []string{b.Addr()}, NoAC: true, Logger: testLogger(t),
		Policy: policy.Ephemeral(policy.Options{})})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	writeAll(t, ctx, c, a.Pseudo()+"/on-a", []byte("written to A"))
	if got := mustRead(t, filepath.Join(a.ExportDir(), "on-a")); string(got) != "written to A" {
		t.Fatalf("A's disk holds %q", got)
	}
	before := c.Stats()
	if before.Recovery.OtherServers != 0 || before.Recovery.AddrsVerified != 0 {
		t.Fatalf("before A stopped: %+v", before.Recovery)
	}

	a.Kill()
	writeAll(t, ctx, c, b.Pseudo()+"/on-b", []byte("written to B"))
	if got := mustRead(t, filepath.Join(b.ExportDir(), "on-b")); string(got) != "written to B" {
		t.Fatalf("B's disk holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(a.ExportDir(), "on-b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the file meant for B is on A's disk: %v", err)
	}
	if _, err := c.Stat(ctx, b.Pseudo()+"/on-a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of A's file now: %v; want it missing, as on B", err)
	}

	st := c.Stats()
	if want := netip.MustParseAddrPort(b.Addr()); st.Transport.Addr != want {
		t.Errorf("the connection is to %v; want B, %v", st.Transport.Addr, want)
	}
	if st.Recovery.OtherServers != 1 {
		t.Errorf("OtherServers = %d; want 1 (B seen as another server)", st.Recovery.OtherServers)
	}
	if n := st.Recovery.ClientIDResets - before.Recovery.ClientIDResets; n != 1 {
		t.Errorf("%d new client IDs; want 1, on B", n)
	}
	if st.Recovery.Rebinds != before.Recovery.Rebinds {
		t.Errorf("%d BIND_CONN_TO_SESSION since A stopped; want none: the old session must not be bound at B",
			st.Recovery.Rebinds-before.Recovery.Rebinds)
	}
	if st.Recovery.AddrsVerified != 0 {
		t.Errorf("AddrsVerified = %d; B is not A", st.Recovery.AddrsVerified)
	}
}

// Two Linux nfsd servers, each its own host (the guest's host name is its
// server owner and scope), given as two addresses: when A's nfsd stops, the
// client's next call reaches B, which it checks and finds to be another
// server, so it moves there instead of binding A's session.
func TestServerOwnerOtherKnfsd(t *testing.T) {
	a := knfsd.Start(t, knfsd.Config{})
	b := knfsd.Start(t, knfsd.Config{})
	testutil.CheckLeaks(t)
	c := dialServer(t, a.Addr(), Config{Addrs: []string{b.Addr()}, NoAC: true, Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	writeAll(t, ctx, c, "/on-a", []byte("written to A"))
	if got, err := a.ReadFile(ctx, "on-a"); err != nil || string(got) != "written to A" {
		t.Fatalf("A's disk holds %q, %v", got, err)
	}
	before := c.Stats()
	if err := a.StopNFSD(ctx); err != nil {
		t.Fatal(err)
	}
	writeAll(t, ctx, c, "/on-b", []byte("written to B"))
	if got, err := b.ReadFile(ctx, "on-b"); err != nil || string(got) != "written to B" {
		t.Fatalf("B's disk holds %q, %v", got, err)
	}
	if _, err := c.Stat(ctx, "/on-a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of A's file now: %v; want it missing, as on B", err)
	}
	st := c.Stats()
	if st.Recovery.OtherServers != 1 || st.Recovery.Rebinds != before.Recovery.Rebinds {
		t.Errorf("after A stopped: %+v; want B seen as another server, and A's session never bound there", st.Recovery)
	}
}

// The same move with a File open throughout, the two servers exporting
// one directory (a fail-over pair behind two addresses): once A is gone,
// the File is opened again by handle on B, and what A acknowledged but
// had not committed is written again, so the file holds everything.
func TestServerOwnerOtherServerKeepsOpenFile(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	a := ganesha.Start(t, ganesha.Config{ExportDir: dir, ServerOwner: "gonfs-test-a", ServerScope: "gonfs-test-a"})
	b := ganesha.Start(t, ganesha.Config{ExportDir: dir, ServerOwner: "gonfs-test-b", ServerScope: "gonfs-test-b"})
	c := dialServer(t, a.Addr(), Config{Addrs: []string{b.Addr()}, Policy: policy.Ephemeral(policy.Options{}), Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	f, err := c.Create(ctx, a.Pseudo()+"/open")
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	write := func(s string) {
		t.Helper()
		if _, err := f.WithContext(ctx).Write([]byte(s)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		want = append(want, s...)
	}
	write("to A, not committed; ")
	a.Kill()
	write("to B; ")
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := mustRead(t, filepath.Join(dir, "open")); !bytes.Equal(got, want) {
		t.Fatalf("the file holds %q; want %q", got, want)
	}
	st := c.Stats()
	if got, want := st.Transport.Addr, netip.MustParseAddrPort(b.Addr()); got != want {
		t.Errorf("the connection is to %v; want B, %v", got, want)
	}
	if r := st.Recovery; r.OtherServers != 1 || r.ClientIDResets != 1 || r.Reopens != 1 || r.LostFiles != 0 {
		t.Errorf("after moving to B: %+v; want 1 other server, 1 client ID reset, 1 reopen, no lost file", r)
	}
}

// alternate is a port policy that dials, at each attempt, the address
// after the last connection's, from the port p chooses.
type alternate struct{ p policy.Policy }

func (a alternate) Next(at policy.Attempt) policy.Decision {
	d := a.p.Next(at)
	d.Addr, d.HedgeAfter = policy.NextAddr(at.Addrs, at.PrevAddr), 0
	return d
}

func (a alternate) Reset() { a.p.Reset() }

// One server reachable at two addresses: a reconnect to the other address
// is checked once, found to reach the same server, and bound to the
// session; no state is lost and a File open throughout keeps working.
func TestServerOwnerSameServer(t *testing.T) { forServerAtTwoAddrs(t, sameServerTwoAddrs) }

// forServerAtTwoAddrs runs f once per server, each reached at two
// addresses: Ganesha listens on every address and is given as 127.0.0.1
// and 127.0.0.2; knfsd gets a second forwarder on 127.0.0.2. f gets a
// directory of its own on the server, the server's side, and a policy the
// server accepts (knfsd's export wants reserved ports).
func forServerAtTwoAddrs(t *testing.T, f func(t *testing.T, addr1, addr2, dir string, side serverSide, p policy.Policy)) {
	t.Run("ganesha", func(t *testing.T) {
		testutil.CheckLeaks(t)
		srv := ganesha.Start(t, ganesha.Config{BindAddr: "0.0.0.0"})
		port := strconv.Itoa(srv.Port())
		f(t, "127.0.0.1:"+port, "127.0.0.2:"+port, srv.Pseudo(), localSide(srv.ExportDir()), policy.Ephemeral(policy.Options{}))
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Shared(t)
		testutil.CheckLeaks(t)
		rel := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		side := &guestSide{srv: srv, dir: rel}
		side.exec(t, fmt.Sprintf("rm -rf %[1]s && mkdir -m 0777 %[1]s", side.path(t, "")))
		t.Cleanup(func() { side.exec(t, "rm -rf "+side.path(t, "")) })
		f(t, srv.Addr(), srv.AddrOn(t, "127.0.0.2"), "/"+rel, side, policy.NewReservedPort(policy.Options{}))
	})
}

// sameServerTwoAddrs runs TestServerOwnerSameServer against the server at
// addr1 and addr2, in its directory dir, reached from its side by side;
// ports chooses the local ports.
func sameServerTwoAddrs(t *testing.T, addr1, addr2, dir string, side serverSide, ports policy.Policy) {
	c := dialServer(t, addr1, Config{Addrs: []string{addr2}, NoAC: true, Policy: alternate{ports}, Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	f, err := c.Create(ctx, dir+"/kept")
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	write := func(s string) {
		t.Helper()
		if _, err := f.WithContext(ctx).Write([]byte(s)); err != nil {
			t.Fatalf("Write after moving to %v: %v", c.Stats().Transport.Addr, err)
		}
		if err := f.Sync(); err != nil { // on the wire now, and committed
			t.Fatalf("Sync after moving to %v: %v", c.Stats().Transport.Addr, err)
		}
		want = append(want, s...)
	}
	write("first, on " + addr1 + "; ")
	before := c.Stats()
	// Three reconnects: to the second address (checked), back to the
	// first (known since the session was made there), to the second
	// (verified already).
	for i, to := range []string{addr2, addr1, addr2} {
		gen := c.tr.Stats().Gen
		c.tr.Fail(gen, io.ErrUnexpectedEOF)
		write("then on " + to + "; ")
		if got, want := c.Stats().Transport.Addr, netip.MustParseAddrPort(to); got != want {
			t.Fatalf("reconnect %d went to %v; want %v", i+1, got, want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := side.readFile(t, "kept"); !bytes.Equal(got, want) {
		t.Fatalf("the server's file holds %q; want %q", got, want)
	}

	st := c.Stats()
	if st.Recovery.AddrsVerified != 1 {
		t.Errorf("AddrsVerified = %d; want 1: the second address once, the first never", st.Recovery.AddrsVerified)
	}
	if n := st.Recovery.Rebinds - before.Recovery.Rebinds; n != 3 {
		t.Errorf("%d connections bound to the session; want 3, one per reconnect", n)
	}
	if st.Recovery.OtherServers != 0 || st.Recovery.SessionResets != 0 || st.Recovery.ClientIDResets != 0 ||
		st.Recovery.Reopens != 0 || st.Recovery.LostFiles != 0 {
		t.Errorf("state recovered although the server never changed: %+v", st.Recovery)
	}
}

// flipResolver answers every lookup with one IP address, which the test
// changes: a name that moves from one server to another.
type flipResolver struct {
	mu sync.Mutex
	ip netip.Addr
}

func (r *flipResolver) set(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ip = netip.MustParseAddr(ip)
}

func (r *flipResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return []netip.Addr{r.ip}, nil
}

// Two connections (Config.Connections) to a server A at a name. The name
// moves to another server B while A still serves: the connection that
// reconnects reaches B, which is not the session's server, and is refused
// while the other connection still reaches A, so that calls keep going to
// A and the state stays there. When the name comes back to A, the
// connection reconnects to A and is bound again.
func TestServerOwnerOtherServerWhileOursServes(t *testing.T) {
	testutil.CheckLeaks(t)
	a := ganesha.Start(t, ganesha.Config{BindAddr: "127.0.0.1", ServerOwner: "gonfs-test-a"})
	b := ganesha.Start(t, ganesha.Config{BindAddr: "127.0.0.2", Port: a.Port(), ServerOwner: "gonfs-test-b"})
	r := &flipResolver{}
	r.set("127.0.0.1")
	c := dialServer(t, net.JoinHostPort("nfs.invalid", strconv.Itoa(a.Port())), Config{
		Connections: 2, Resolver: r, NoAC: true, Policy: policy.Ephemeral(policy.Options{}), Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writeAll(t, ctx, c, a.Pseudo()+"/first", []byte("1"))
	if c.Stats().RPC.Conns != 2 {
		t.Fatalf("%d connections ready; want 2", c.Stats().RPC.Conns)
	}

	r.set("127.0.0.2")
	tr := c.trs[1]
	tr.Fail(tr.Stats().Gen, io.ErrUnexpectedEOF)
	deadline := time.Now().Add(20 * time.Second)
	for tr.Stats().Connects < 3 && time.Now().Before(deadline) {
		// The first reconnect reaches B, is refused, and is redialed.
		writeAll(t, ctx, c, a.Pseudo()+"/during", []byte("2"))
		time.Sleep(50 * time.Millisecond)
	}
	if n := tr.Stats().Connects; n < 3 {
		t.Fatalf("the second connection connected %d times; want at least 3 (A, B refused, B again)", n)
	}
	writeAll(t, ctx, c, a.Pseudo()+"/during", []byte("2"))
	if got := mustRead(t, filepath.Join(a.ExportDir(), "during")); string(got) != "2" {
		t.Fatalf("A's disk holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(b.ExportDir(), "during")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file was written to B: %v", err)
	}
	st := c.Stats()
	if st.Recovery.OtherServers != 0 || st.Recovery.ClientIDResets != 0 || st.Recovery.SessionResets != 0 {
		t.Fatalf("the client left A, which still serves: %+v", st.Recovery)
	}

	r.set("127.0.0.1")
	deadline = time.Now().Add(20 * time.Second)
	for c.Stats().RPC.Conns != 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := c.Stats().RPC.Conns; n != 2 {
		t.Fatalf("%d connections ready after the name came back to A; want 2", n)
	}
	writeAll(t, ctx, c, a.Pseudo()+"/after", []byte("3"))
	if st := c.Stats(); st.Recovery.OtherServers != 0 || st.Recovery.ClientIDResets != 0 {
		t.Fatalf("the client left A: %+v", st.Recovery)
	}
}

// Four connections to one server at two addresses spread over both: the
// i-th connection's first dial goes to the i-th address. The second
// address is checked once with EXCHANGE_ID, every connection is bound to
// the one session, and a file written through all of them arrives whole.
func TestConnectionsSpreadOverAddresses(t *testing.T) { forServerAtTwoAddrs(t, spreadTwoAddrs) }

// spreadTwoAddrs runs TestConnectionsSpreadOverAddresses against the
// server at addr1 and addr2, in its directory dir, reached from its side
// by side; p chooses the local ports.
func spreadTwoAddrs(t *testing.T, addr1, addr2, dir string, side serverSide, p policy.Policy) {
	c := dialServer(t, addr1, Config{Addrs: []string{addr2}, Connections: 4, Policy: p, Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := c.Create(ctx, dir+"/spread")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WithContext(ctx).Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := side.readFile(t, "spread"); !bytes.Equal(got, data) {
		t.Fatalf("the server's file holds %d bytes, not the %d written", len(got), len(data))
	}
	st := c.Stats()
	want := []netip.AddrPort{netip.MustParseAddrPort(addr1), netip.MustParseAddrPort(addr2)}
	for i, ts := range st.Connections {
		if ts.Connects == 0 {
			t.Errorf("connection %d never connected", i)
		} else if ts.Addr != want[i%2] {
			t.Errorf("connection %d went to %v; want %v", i, ts.Addr, want[i%2])
		}
	}
	if st.Recovery.AddrsVerified != 1 {
		t.Errorf("AddrsVerified = %d; want 1: the second address once", st.Recovery.AddrsVerified)
	}
	if st.Recovery.Rebinds < 3 || st.Recovery.OtherServers != 0 || st.Recovery.SessionResets != 0 || st.Recovery.ClientIDResets != 0 {
		t.Errorf("recovery: %+v; want the 3 further connections bound and nothing recovered", st.Recovery)
	}
}
