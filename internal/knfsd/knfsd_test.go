package knfsd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

func TestMain(m *testing.M) {
	code := m.Run()
	t0 := time.Now()
	err := StopShared()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "knfsd: shared server stopped in %v\n", time.Since(t0).Round(time.Millisecond))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// TestImage builds the guest (its root file system, its two kernels, and
// their loader and libc) if it is not cached; make test runs it first,
// alone, so that the build does not count against a test.
func TestImage(t *testing.T) {
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	t0 := time.Now()
	dir, err := EnsureImage()
	if err != nil {
		t.Fatal(err)
	}
	g := guest{dir: dir}
	for _, p := range []string{g.image(), g.kernel(), g.mtlsKernel(), dir + "/lib/libc.so.6", dir + "/lib/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("guest %s: %s, image %s on disk, ready in %v", dir, g.version(), imageSizeBytes(g.image()), time.Since(t0).Round(time.Millisecond))
}

// TestParseNetDev: NetBytes reads the tap's counters from the kernel's
// table, the host side's transmit counter being what went into the guest.
func TestParseNetDev(t *testing.T) {
	text := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     240       4    0    0    0     0          0         0      240       4    0    0    0     0       0          0
 gtap0: 2215872    1204    0    0    0     0          0         0 1090000000   31337    0    0    0     0       0          0
`
	tx, rx, err := parseNetDev(text, "gtap0")
	if err != nil || tx != 1090000000 || rx != 2215872 {
		t.Errorf("parseNetDev = %d, %d, %v; want 1090000000 sent, 2215872 received", tx, rx, err)
	}
	if _, _, err := parseNetDev(text, "eth0"); err == nil {
		t.Error("a device that is not listed has counters")
	}
}

func TestParseSources(t *testing.T) {
	deb822 := "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
		"Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
	if got := parseSources(strings.NewReader(deb822), true); got != "http://mirror.example/debian" {
		t.Errorf("deb822: got %q", got)
	}
	oneLine := "deb http://security.example/ bookworm-security main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
	if got := parseSources(strings.NewReader(oneLine), false); got != "http://m.example/debian" {
		t.Errorf("one-line: got %q", got)
	}
	if got := parseSources(strings.NewReader("deb https://x.example/apt cloud-sdk main\n"), false); got != "" {
		t.Errorf("no Debian release: got %q", got)
	}
	trixie := "Types: deb\nURIs: http://security.example/debian-security\nSuites: trixie-security\n\nTypes: deb\nURIs: http://t.example/debian\nSuites: trixie trixie-updates\n"
	if got := parseSources(strings.NewReader(trixie), true); got != "http://t.example/debian" {
		t.Errorf("trixie: got %q", got)
	}
}

// rpcCall sends one ONC RPC call (AUTH_SYS as root) for NFSv4 procedure
// proc with args over c and returns the results of an accepted,
// successful reply.
func rpcCall(t *testing.T, c net.Conn, xid, proc uint32, args []byte) []byte {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var msg []byte
	u32 := func(v ...uint32) {
		for _, w := range v {
			msg = binary.BigEndian.AppendUint32(msg, w)
		}
	}
	// Call header; AUTH_SYS: stamp, machine name "t" (padded), uid 0,
	// gid 0, no groups; AUTH_NONE verifier.
	u32(xid, 0, 2, 100003, 4, proc, 1, 24, 0, 1, 't'<<24, 0, 0, 0, 0, 0)
	msg = append(msg, args...)
	rec := binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(msg)))
	if _, err := c.Write(append(rec, msg...)); err != nil {
		t.Fatal(err)
	}
	var reply []byte
	for last := false; !last; {
		var mark [4]byte
		if _, err := io.ReadFull(c, mark[:]); err != nil {
			t.Fatalf("reply: %v", err)
		}
		m := binary.BigEndian.Uint32(mark[:])
		last = m&(1<<31) != 0
		frag := make([]byte, m&^(1<<31))
		if _, err := io.ReadFull(c, frag); err != nil {
			t.Fatalf("reply: %v", err)
		}
		reply = append(reply, frag...)
	}
	// xid, REPLY, MSG_ACCEPTED, verifier (flavor, body), SUCCESS.
	if len(reply) < 24 {
		t.Fatalf("short reply %x", reply)
	}
	w := func(i int) uint32 { return binary.BigEndian.Uint32(reply[4*i:]) }
	if w(0) != xid || w(1) != 1 || w(2) != 0 {
		t.Fatalf("reply header %x", reply[:12])
	}
	off := 20 + int(w(4)+3)&^3
	if st := binary.BigEndian.Uint32(reply[off:]); st != 0 {
		t.Fatalf("accept_stat %d", st)
	}
	return reply[off+4:]
}

// putRootGetType sends COMPOUND (minor version 0) PUTROOTFH,
// GETATTR(type) and returns the compound status and, if it is NFS4_OK,
// the root's type.
func putRootGetType(t *testing.T, c net.Conn, xid uint32) (status, typ uint32) {
	t.Helper()
	args := binary.BigEndian.AppendUint32(nil, 0)        // empty tag
	for _, w := range []uint32{0, 2, 24, 9, 1, 1 << 1} { // minor 0; PUTROOTFH; GETATTR {type}
		args = binary.BigEndian.AppendUint32(args, w)
	}
	res := rpcCall(t, c, xid, 1, args)
	w := func(i int) uint32 { return binary.BigEndian.Uint32(res[4*i:]) }
	status = w(0)
	if status != 0 {
		return status, 0
	}
	// status, tag (empty), 2 results: PUTROOTFH ok, GETATTR ok, bitmap
	// (1 word), attrlist (4 bytes: type).
	want := []uint32{0, 0, 2, 24, 0, 9, 0, 1, 1 << 1, 4}
	for i, v := range want {
		if w(i) != v {
			t.Fatalf("COMPOUND result word %d is %d, want %d: %x", i, w(i), v, res)
		}
	}
	return 0, w(len(want))
}

// dialFrom connects to addr from a reserved port of 127.0.0.1, or an
// ephemeral one.
func dialFrom(t *testing.T, addr string, reserved bool) net.Conn {
	t.Helper()
	for range 50 {
		var d net.Dialer
		if reserved {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 665 + mrand.IntN(1024-665)}
		}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatal(err)
		}
	}
	t.Fatal("no free reserved port")
	return nil
}

// TestRawRPC checks NULL and a COMPOUND through the forwarder: from a
// reserved port the secure export serves the root, from an ephemeral one
// it refuses with NFS4ERR_PERM.
func TestRawRPC(t *testing.T) {
	srv := Shared(t)
	t.Logf("shared server booted in %v", srv.BootTime())
	c := dialFrom(t, srv.Addr(), true)
	defer c.Close()
	if err := nullCall(c, 1); err != nil {
		t.Fatal(err)
	}
	if st, typ := putRootGetType(t, c, 2); st != 0 || typ != 2 {
		t.Fatalf("PUTROOTFH+GETATTR from a reserved port: status %d, type %d; want 0, 2 (NF4DIR)", st, typ)
	}
	e := dialFrom(t, srv.Addr(), false)
	defer e.Close()
	if st, _ := putRootGetType(t, e, 3); st != 1 {
		t.Fatalf("PUTROOTFH from an ephemeral port: status %d, want 1 (NFS4ERR_PERM)", st)
	}
	// Inside the namespace, no forwarder: the same.
	ctx := context.Background()
	n, err := srv.DialNS(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if st, _ := putRootGetType(t, n, 4); st != 1 {
		t.Fatalf("PUTROOTFH from an ephemeral port in the namespace: status %d, want 1 (NFS4ERR_PERM)", st)
	}
}

func dial(t *testing.T, srv *Server) *nfs4.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := nfs4.Dial(ctx, srv.Addr(), nfs4.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestRoundTrip writes 16 MiB with the library, reads it back, and finds
// it in the directory and, on the server's side, in the export.
func TestRoundTrip(t *testing.T) {
	srv := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := dial(t, srv)
	data := make([]byte, 16<<20)
	rand.Read(data)
	f, err := c.Create(ctx, "/roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = c.Open(ctx, "/roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := f.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if sum(got.Bytes()) != sum(data) {
		t.Fatalf("read back %d bytes that differ from the %d written", got.Len(), len(data))
	}
	entries, err := c.ReadDir(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "roundtrip" }) {
		t.Fatalf("ReadDir(/) = %v, no roundtrip", entries)
	}
	out, err := srv.Exec(ctx, "sha256sum "+ExportPath+"/roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(out); len(f) == 0 || f[0] != sum(data) {
		t.Fatalf("sha256sum in the guest: %q, want %s", out, sum(data))
	}

	// Files made on the server's side show through NFS, and back.
	if err := srv.WriteFile(ctx, "dir/../fromhost", []byte("hello from the host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := c.Stat(ctx, "/fromhost")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 20 || fi.Mode().Perm() != 0o640 {
		t.Errorf("Stat(/fromhost) = size %d mode %v", fi.Size(), fi.Mode())
	}
	back, err := srv.ReadFile(ctx, "roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("ReadFile in the guest returned %d bytes that differ", len(back))
	}
}

// TestRestart restarts nfsd under a client with a file open and data
// written but not committed: the client reclaims, resends and goes on.
// Then a 4.0-only server refuses the client, and serves it again once
// 4.1 is back.
func TestRestart(t *testing.T) {
	srv := Start(t, Config{})
	t.Logf("private server booted in %v", srv.BootTime())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := dial(t, srv)
	data := make([]byte, 4<<20)
	rand.Read(data)
	f, err := c.Create(ctx, "/restart")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:2<<20]); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := srv.RestartNFSD(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("RestartNFSD took %v", time.Since(t0))
	if _, err := f.Write(data[2<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats().Recovery
	t.Logf("recovery: %+v", st)
	if st.ClientIDResets == 0 || st.Reclaims == 0 || st.Reopens != 0 || st.LostFiles != 0 {
		t.Errorf("after the restart: %+v; want a client ID reset and the open reclaimed", st)
	}
	out, err := srv.Exec(ctx, "sha256sum "+ExportPath+"/restart")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(out); len(f) == 0 || f[0] != sum(data) {
		t.Fatalf("after the restart the file's sha256 is %q, want %s", out, sum(data))
	}

	if err := srv.SetVersions(ctx, "4.0"); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	defer dcancel()
	_, err = nfs4.Dial(dctx, srv.Addr(), nfs4.Config{Version: nfs4.Version41})
	if !errors.Is(err, nfs4.ErrMinorVersMismatch) {
		t.Fatalf("Dial pinned to 4.1 of a 4.0-only server: %v, want NFS4ERR_MINOR_VERS_MISMATCH", err)
	}
	c40, err := nfs4.Dial(dctx, srv.Addr(), nfs4.Config{})
	if err != nil {
		t.Fatalf("Dial of a 4.0-only server: %v; want the client to fall back to 4.0", err)
	}
	if v := c40.MinorVersion(); v != 0 {
		t.Errorf("Dial of a 4.0-only server negotiated minor version %d, want 0", v)
	}
	if err := c40.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetVersions(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, srv)
	if _, err := c2.Stat(ctx, "/restart"); err != nil {
		t.Fatal(err)
	}
}

// TestResetConnections cuts the client's connection through the
// forwarder in the middle of a file: it reconnects and goes on.
func TestResetConnections(t *testing.T) {
	srv := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dial(t, srv)
	data := make([]byte, 4<<20)
	rand.Read(data)
	f, err := c.Create(ctx, "/reset")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := f.Write(data[i<<20 : (i+1)<<20]); err != nil {
			t.Fatal(err)
		}
		srv.ResetConnections()
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("recovery: %+v", c.Stats().Recovery)
	out, err := srv.Exec(ctx, "sha256sum "+ExportPath+"/reset")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(out); len(f) == 0 || f[0] != sum(data) {
		t.Fatalf("sha256 in the guest %q, want %s", out, sum(data))
	}
}

// removeStale keeps the guest it is given and other recipes' recent
// guests (another checkout's), and removes old guests and dead builds.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(CacheEnv, dir)
	for _, d := range []string{"guest-trixie-keep", "guest-trixie-recent", "guest-trixie-old", "build-123"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-keepOthers - time.Hour)
	for _, d := range []string{"guest-trixie-old", "build-123"} {
		if err := os.Chtimes(filepath.Join(dir, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(guest{dir: filepath.Join(dir, "guest-trixie-keep")})
	for d, want := range map[string]bool{"guest-trixie-keep": true, "guest-trixie-recent": true, "guest-trixie-old": false, "build-123": false} {
		_, err := os.Stat(filepath.Join(dir, d))
		if got := err == nil; got != want {
			t.Errorf("%s exists: %v, want %v", d, got, want)
		}
	}
}
