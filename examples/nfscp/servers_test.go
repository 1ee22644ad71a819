package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/examples/nfscp/internal/tempfile"
	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
)

// The main copy paths run once per server implementation, as subtests
// named after it, as nfs4's core tests do (nfs4/servers_test.go; a test
// of another module cannot import it): NFS-Ganesha and the Linux kernel's
// nfsd in a user-mode Linux guest shared by this test binary (knfsd.Shared,
// stopped by TestMain). Each subtest works in a directory of its own. The
// internal packages of the library are importable here because this
// module's path, github.com/gonfs/nfs/examples, is inside
// github.com/gonfs/nfs, the parent of internal/.
//
// What a user sees differently with knfsd, and the tests allow for:
//   - its export is `secure`: nfscp must run as root (or with
//     CAP_NET_BIND_SERVICE) and not with --policy ephemeral
//     (TestKnfsdPortRefusal); the tests run as root with the default
//     policy, which takes reserved ports;
//   - its export is the NFSv4 root (fsid=0): URLs have no /export prefix;
//   - a restart is of nfsd's threads in the running guest, not of a
//     process: the data the server acknowledged is still in the guest's
//     page cache, but the client's state and the write verifier are gone,
//     as with Ganesha killed and started again.
//
// The export is no_root_squash on both (internal/knfsd and
// internal/ganesha configure it so; Linux's own default would map root to
// nobody), and nfsd creates files with the mode the client sends (its
// threads have no umask), as Ganesha does, so modes and times arrive the
// same on both.

// testServer is the server a subtest runs against.
type testServer struct {
	name string
	addr string
	// root is the export's path in the server's NFSv4 namespace: a URL
	// is nfs://addr + root + /path.
	root string
	// stop ends the server's NFS state as a crash does, and start serves
	// again at the same address, in its grace period: Ganesha is killed
	// and, 2 s later, started again; knfsd's nfsd threads are stopped and
	// started again.
	stop, start func(t *testing.T)
	// reset closes every TCP connection to the server, as a network
	// failure does.
	reset func(t *testing.T)
	// newSide returns the server's own view of the directory name of its
	// export, made afresh by forEachServer.
	newSide func(name string) serverSide
	// second makes another area, for copies from one NFS directory to
	// another: on the second shared Ganesha (srvB), or beside the first
	// in knfsd's export (one guest serves this test binary).
	second func(t *testing.T) area
}

// serverSide reaches a test's directory on the server's own file system,
// not through NFS; names are relative to that directory.
type serverSide interface {
	// writeRandom creates name with size random bytes and returns their
	// sha256, as writeRandom does locally.
	writeRandom(t *testing.T, name string, size int64, seed uint64) string
	// mkdir makes a directory with mode 0755, mkdirAll with its parents.
	mkdir(t *testing.T, name string)
	mkdirAll(t *testing.T, name string)
	// symlink makes name a symbolic link to target.
	symlink(t *testing.T, target, name string)
	// setMode gives name the owner and group uid and the mode m, as
	// chmod(2) takes it (setuid 04000, setgid 02000, sticky 01000).
	setMode(t *testing.T, name string, m uint32, uid int)
	// chtimes sets name's access and modification times.
	chtimes(t *testing.T, name string, mtime time.Time)
	sha256(t *testing.T, name string) string
	// allocated returns the bytes of storage name takes (st_blocks ×
	// 512): less than its size when it has holes.
	allocated(t *testing.T, name string) int64
	// stat returns a file's mode and modification time.
	stat(t *testing.T, name string) (fs.FileMode, time.Time)
	// mode returns a file's mode as os.Lstat reports it: its type, its
	// permissions and its setuid, setgid and sticky bits.
	mode(t *testing.T, name string) fs.FileMode
	// list returns the names in a directory.
	list(t *testing.T, name string) []string
	// tree describes everything under name as localEntries does.
	tree(t *testing.T, name string) map[string]entry
	// tempSize returns the size of nfscp's temporary file for name, or
	// -1 if there is none.
	tempSize(t *testing.T, name string) int64
	// noLeftovers fails t if the directory holds a temporary file of
	// nfscp's.
	noLeftovers(t *testing.T)
}

// forEachServer runs fn in a subtest per server, in a fresh area of its
// own. Against Ganesha the server is the shared srvA, or with gcfg non-nil
// one the subtest starts for itself (which it may crash); against knfsd
// it is the shared guest.
func forEachServer(t *testing.T, gcfg *ganesha.Config, fn func(t *testing.T, s testServer, a area)) {
	t.Run("ganesha", func(t *testing.T) {
		needServer(t)
		srv := srvA
		if gcfg != nil {
			srv = ganesha.Start(t, *gcfg)
			if err := os.Chmod(srv.ExportDir(), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		s := testServer{
			name: "ganesha",
			addr: srv.Addr(),
			root: srv.Pseudo(),
			stop: func(t *testing.T) {
				if gcfg == nil {
					t.Fatal("crash of the shared Ganesha")
				}
				srv.Kill()
			},
			start: func(t *testing.T) {
				time.Sleep(2 * time.Second) // the outage, not a timing assertion
				srv.Restart(t)
			},
			reset: func(t *testing.T) {
				out, err := exec.Command("ss", "-K", "dst", "127.0.0.1", "dport", "=", strconv.Itoa(srv.Port())).CombinedOutput()
				if err != nil {
					t.Fatalf("ss -K: %v\n%s", err, out)
				}
			},
			newSide: func(name string) serverSide { return localSide(filepath.Join(srv.ExportDir(), name)) },
			second:  func(t *testing.T) area { return newArea(t, srvB) },
		}
		fn(t, s, newArea(t, srv))
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Shared(t)
		s := testServer{
			name: "knfsd",
			addr: srv.Addr(),
			root: srv.Root(),
			stop: func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := srv.StopNFSD(ctx); err != nil {
					t.Fatal(err)
				}
			},
			start: func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := srv.StartNFSD(ctx); err != nil {
					t.Fatal(err)
				}
			},
			reset:   func(*testing.T) { srv.ResetConnections() },
			newSide: func(name string) serverSide { return &guestSide{srv: srv, dir: name} },
			second:  func(t *testing.T) area { return knfsdAreaNamed(t, srv, areaName(t)+"_2") },
		}
		fn(t, s, knfsdArea(t, srv))
	})
}

// knfsdArea makes a fresh directory for t in srv's export.
func knfsdArea(t *testing.T, srv *knfsd.Server) area {
	t.Helper()
	return knfsdAreaNamed(t, srv, areaName(t))
}

// knfsdAreaNamed makes a fresh directory name in srv's export.
func knfsdAreaNamed(t *testing.T, srv *knfsd.Server, name string) area {
	t.Helper()
	side := &guestSide{srv: srv, dir: name}
	side.exec(t, fmt.Sprintf("rm -rf %[1]s && mkdir -m 0755 %[1]s", side.path(t, "")))
	t.Cleanup(func() { side.exec(t, "rm -rf "+side.path(t, "")) })
	return area{side: side, url: "nfs://" + srv.Addr() + "/" + name}
}

// areaName is the name of t's directory in an export.
func areaName(t *testing.T) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}

// entry describes one file of a tree: what nfscp copies of it.
type entry struct {
	typ   byte // 'f', 'd' or 'l'
	perm  fs.FileMode
	mtime time.Time // zero for a link
	sum   string    // a file's sha256
	link  string    // a link's target
}

func (e entry) String() string {
	return fmt.Sprintf("%c %v %v %s%s", e.typ, e.perm, e.mtime.UTC().Format(time.RFC3339Nano), e.sum, e.link)
}

// localEntries describes the tree under root, without root itself and
// without named pipes (which nfscp skips).
func localEntries(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{perm: fi.Mode().Perm(), mtime: fi.ModTime()}
		switch {
		case fi.Mode().IsRegular():
			e.typ, e.sum = 'f', testutil.FileSHA256(t, p)
		case fi.IsDir():
			e.typ = 'd'
		case fi.Mode()&fs.ModeSymlink != 0:
			e.typ, e.mtime = 'l', time.Time{}
			e.link, _ = os.Readlink(p)
		default:
			return nil
		}
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameEntries fails t unless got describes the same tree as want.
func sameEntries(t *testing.T, what string, want, got map[string]entry) {
	t.Helper()
	if len(want) < 10 {
		t.Fatalf("%s: comparing only %d entries", what, len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: %s is missing", what, name)
		case g.typ != w.typ || g.perm != w.perm || g.sum != w.sum || g.link != w.link || !g.mtime.Equal(w.mtime):
			t.Errorf("%s: %s is %v, want %v", what, name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s should not be there", what, name)
		}
	}
}

// localSide is a directory of Ganesha's export on this machine.
type localSide string

func (l localSide) p(name string) string { return filepath.Join(string(l), name) }

func (l localSide) writeRandom(t *testing.T, name string, size int64, seed uint64) string {
	t.Helper()
	return writeRandom(t, l.p(name), size, seed)
}

func (l localSide) mkdir(t *testing.T, name string) {
	t.Helper()
	if err := os.Mkdir(l.p(name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) mkdirAll(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(l.p(name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, l.p(name)); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) setMode(t *testing.T, name string, m uint32, uid int) {
	t.Helper()
	setMode(t, l.p(name), m, uid)
}

func (l localSide) chtimes(t *testing.T, name string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(l.p(name), mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(l.p(name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func (l localSide) sha256(t *testing.T, name string) string {
	t.Helper()
	return testutil.FileSHA256(t, l.p(name))
}

func (l localSide) allocated(t *testing.T, name string) int64 {
	t.Helper()
	return allocated(t, l.p(name))
}

func (l localSide) stat(t *testing.T, name string) (fs.FileMode, time.Time) {
	t.Helper()
	fi, err := os.Stat(l.p(name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.ModTime()
}

func (l localSide) list(t *testing.T, name string) []string {
	t.Helper()
	return listDir(t, l.p(name))
}

func (l localSide) tree(t *testing.T, name string) map[string]entry {
	t.Helper()
	return localEntries(t, l.p(name))
}

func (l localSide) tempSize(_ *testing.T, name string) int64 { return tempfile.Size(string(l), name) }

func (l localSide) noLeftovers(t *testing.T) {
	t.Helper()
	noLeftovers(t, string(l))
}

// guestSide is a directory of knfsd's export, reached with scripts run in
// its guest.
type guestSide struct {
	srv *knfsd.Server
	dir string // relative to the export
}

// path returns name's path in the guest, quoted for sh.
func (g *guestSide) path(t *testing.T, name string) string {
	t.Helper()
	return shQuote(filepath.Join(knfsd.ExportPath, g.dir, name))
}

// shQuote quotes s for sh: between single quotes every byte stands for
// itself, newlines and escape sequences included (a script reaches the
// guest base64-encoded), so only a single quote needs care.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (g *guestSide) exec(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := g.srv.Exec(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (g *guestSide) writeRandom(t *testing.T, name string, size int64, seed uint64) string {
	t.Helper()
	local := filepath.Join(t.TempDir(), "f")
	sum := writeRandom(t, local, size, seed)
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// WriteFile takes names it can quote simply; another name gets the
	// data under a plain one first.
	plain := name
	if strings.ContainsAny(name, "'\n") {
		plain = filepath.Join(filepath.Dir(name), ".gonfs-xfer")
	}
	if err := g.srv.WriteFile(ctx, filepath.Join(g.dir, plain), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if plain != name {
		g.exec(t, "mv "+g.path(t, plain)+" "+g.path(t, name))
	}
	return sum
}

func (g *guestSide) mkdir(t *testing.T, name string) {
	t.Helper()
	g.exec(t, "mkdir -m 0755 "+g.path(t, name))
}

func (g *guestSide) mkdirAll(t *testing.T, name string) {
	t.Helper()
	g.exec(t, "mkdir -p -m 0755 "+g.path(t, name))
}

func (g *guestSide) symlink(t *testing.T, target, name string) {
	t.Helper()
	g.exec(t, "ln -s -- "+shQuote(target)+" "+g.path(t, name))
}

func (g *guestSide) setMode(t *testing.T, name string, m uint32, uid int) {
	t.Helper()
	// Five digits: GNU chmod keeps a directory's setuid and setgid bits
	// under a shorter numeric mode. chown first: it clears them.
	p := g.path(t, name)
	g.exec(t, fmt.Sprintf("chown %d:%d %s && chmod %05o %s", uid, uid, p, m, p))
}

func (g *guestSide) chtimes(t *testing.T, name string, mtime time.Time) {
	t.Helper()
	g.exec(t, fmt.Sprintf("touch -h -d @%d.%09d %s", mtime.Unix(), mtime.Nanosecond(), g.path(t, name)))
}

func (g *guestSide) mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	out := strings.TrimSpace(g.exec(t, "find "+g.path(t, name)+" -maxdepth 0 -printf '%y %m\\n'"))
	typ, perm, ok := strings.Cut(out, " ")
	n, err := strconv.ParseUint(perm, 8, 32)
	if !ok || err != nil {
		t.Fatalf("mode of %s: %q", name, out)
	}
	m := fs.FileMode(n).Perm()
	for _, b := range []struct {
		bit  uint64
		mode fs.FileMode
	}{{0o4000, fs.ModeSetuid}, {0o2000, fs.ModeSetgid}, {0o1000, fs.ModeSticky}} {
		if n&b.bit != 0 {
			m |= b.mode
		}
	}
	switch typ {
	case "f":
	case "d":
		m |= fs.ModeDir
	case "l":
		m |= fs.ModeSymlink
	default:
		t.Fatalf("mode of %s: type %q", name, typ)
	}
	return m
}

func (g *guestSide) sha256(t *testing.T, name string) string {
	t.Helper()
	sum, _, _ := strings.Cut(g.exec(t, "sha256sum "+g.path(t, name)), " ")
	return sum
}

func (g *guestSide) allocated(t *testing.T, name string) int64 {
	t.Helper()
	out := strings.TrimSpace(g.exec(t, "stat -c %b "+g.path(t, name)))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("stat -c %%b: %q", out)
	}
	return n * 512
}

func (g *guestSide) stat(t *testing.T, name string) (fs.FileMode, time.Time) {
	t.Helper()
	// find's %T@ keeps the nanoseconds that stat(1)'s %Y drops.
	out := strings.TrimSpace(g.exec(t, "find "+g.path(t, name)+" -maxdepth 0 -printf '%m %T@\\n'"))
	perm, mtime, ok := strings.Cut(out, " ")
	if !ok {
		t.Fatalf("stat %s: %q", name, out)
	}
	return parsePerm(t, perm), parseFindTime(t, mtime)
}

func (g *guestSide) list(t *testing.T, name string) []string {
	t.Helper()
	out := g.exec(t, "ls -A "+g.path(t, name))
	return strings.Fields(out)
}

// tree lists with find(1): name, link target (often empty), type,
// permissions and modification time, tab-separated, then the files'
// sha256 sums.
func (g *guestSide) tree(t *testing.T, name string) map[string]entry {
	t.Helper()
	root := g.path(t, name)
	out := g.exec(t, "cd "+root+" && find . -mindepth 1 -printf '%P\\t%l\\t%y\\t%m\\t%T@\\n' && echo == && find . -type f -exec sha256sum {} +")
	list, sums, _ := strings.Cut(out, "==\n")
	m := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("find printed %q", line)
		}
		e := entry{link: f[1], typ: f[2][0], perm: parsePerm(t, f[3]), mtime: parseFindTime(t, f[4])}
		if e.typ == 'l' {
			e.mtime = time.Time{}
		}
		m[f[0]] = e
	}
	for _, line := range strings.Split(strings.TrimSpace(sums), "\n") {
		sum, p, ok := strings.Cut(line, "  ./")
		if !ok {
			t.Fatalf("sha256sum printed %q", line)
		}
		e := m[p]
		e.sum = sum
		m[p] = e
	}
	return m
}

func (g *guestSide) tempSize(t *testing.T, name string) int64 {
	t.Helper()
	out := strings.TrimSpace(g.exec(t, "cd "+g.path(t, "")+" && for f in ."+name+".nfscp-*; do [ -f \"$f\" ] && stat -c %s \"$f\" && exit; done; echo -1"))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("size of the temporary file: %q", out)
	}
	return n
}

func (g *guestSide) noLeftovers(t *testing.T) {
	t.Helper()
	if out := g.exec(t, "cd "+g.path(t, "")+" && find . -name '*.nfscp-*'"); out != "" {
		t.Errorf("temporary files left behind:\n%s", out)
	}
}

// parsePerm parses find's %m, the permission bits in octal.
func parsePerm(t *testing.T, s string) fs.FileMode {
	t.Helper()
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		t.Fatalf("permissions %q", s)
	}
	return fs.FileMode(n).Perm()
}

// parseFindTime parses find's %T@, seconds since the epoch with a
// fraction (GNU find prints ten digits of it).
func parseFindTime(t *testing.T, s string) time.Time {
	t.Helper()
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		t.Fatalf("time %q", s)
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		t.Fatalf("time %q", s)
	}
	return time.Unix(sec, ns)
}
