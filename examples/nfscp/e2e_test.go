package main

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/examples/nfscp/internal/tempfile"
	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
)

// TestRoundTrip copies a file local → NFS → local and checks that the
// bytes, and with -p the mode and modification time, arrive; that a bare
// run prints nothing when stdout is not a terminal; and that no temporary
// file stays. Both servers keep the mode nfscp asks for and nanosecond
// times.
func TestRoundTrip(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		local := t.TempDir()
		src := filepath.Join(local, "data.bin")
		sum := writeRandom(t, src, 5<<20+123, 1)
		if err := os.Chmod(src, 0o640); err != nil {
			t.Fatal(err)
		}
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
		if err := os.Chtimes(src, mtime, mtime); err != nil {
			t.Fatal(err)
		}

		// Into an existing directory (trailing slash), keeping the name.
		r := nfscp(t, src, a.url+"/")
		mustSucceed(t, r)
		if r.stdout != "" {
			t.Errorf("stdout is not a terminal, yet nfscp printed %q", r.stdout)
		}
		if got := a.side.sha256(t, "data.bin"); got != sum {
			t.Fatalf("sha256 on the server %s, want %s", got, sum)
		}
		mode, mt := a.side.stat(t, "data.bin")
		if mode.Perm() != 0o640&^processUmask() {
			t.Errorf("mode on the server %v, want %v", mode.Perm(), 0o640&^processUmask())
		}
		if mt.Equal(mtime) {
			t.Errorf("without -p the modification time was kept")
		}

		// Back, under a new name, with -p.
		back := filepath.Join(local, "back.bin")
		mustSucceed(t, nfscp(t, "-p", a.url+"/data.bin", back))
		if got := testutil.FileSHA256(t, back); got != sum {
			t.Fatalf("sha256 after the round trip %s, want %s", got, sum)
		}
		// -p again up: the mode and time travel both ways.
		mustSucceed(t, nfscp(t, "-p", src, a.url+"/kept.bin"))
		if mode, mt := a.side.stat(t, "kept.bin"); mode.Perm() != 0o640 || !mt.Equal(mtime) {
			t.Errorf("on the server after -p: %v %v; want mode 0640 and %v", mode.Perm(), mt, mtime)
		}
		mustSucceed(t, nfscp(t, "-p", a.url+"/kept.bin", back))
		if fi, err := os.Stat(back); err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o640 {
			t.Errorf("after -p both ways: %v %v, %v; want mode 0640 and %v", fi.Mode(), fi.ModTime(), err, mtime)
		}
		// Overwriting an existing file replaces it.
		writeRandom(t, src, 1000, 2)
		mustSucceed(t, nfscp(t, src, a.url+"/data.bin"))
		if got, want := a.side.sha256(t, "data.bin"), testutil.FileSHA256(t, src); got != want {
			t.Errorf("an existing destination was not replaced")
		}
		a.side.noLeftovers(t)
		noLeftovers(t, local)
	})
}

// makeTree builds a tree with nested directories of several modes, files,
// relative, absolute and dangling symbolic links, an empty directory and
// a named pipe (which nfscp skips), with old modification times.
func makeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755))
	must(os.Mkdir(filepath.Join(root, "empty"), 0o700))
	for i, f := range []string{"top.txt", "a/one", "a/b/two", "a/b/c/three", "a/b/c/four"} {
		writeRandom(t, filepath.Join(root, f), int64(i*70000+i), uint64(10+i))
	}
	must(os.Chmod(filepath.Join(root, "a/b/c/three"), 0o751))
	must(os.Chmod(filepath.Join(root, "top.txt"), 0o600))
	must(os.Symlink("b/c/three", filepath.Join(root, "a/rel")))
	must(os.Symlink("/nowhere/at/all", filepath.Join(root, "a/dangling")))
	must(syscall.Mkfifo(filepath.Join(root, "a/fifo"), 0o644))
	old := time.Date(2010, 1, 2, 3, 4, 5, 0, time.UTC)
	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, old.Add(time.Duration(len(p))*time.Second))
	}))
	must(os.Chmod(filepath.Join(root, "a/b"), 0o750))
	must(os.Chtimes(filepath.Join(root, "a/b"), old, old))
}

// sameTree fails t unless the trees at a and b hold the same names, types,
// modes, contents, link targets and (except for links) modification times.
// Named pipes in a are expected to be missing from b.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		ai, err := os.Lstat(p)
		if err != nil {
			return err
		}
		bi, err := os.Lstat(q)
		if ai.Mode()&fs.ModeNamedPipe != 0 {
			if err == nil {
				t.Errorf("%s: a named pipe was copied", rel)
			}
			return nil
		}
		if err != nil {
			t.Errorf("%s: missing from the copy: %v", rel, err)
			return nil
		}
		seen++
		switch {
		case ai.Mode() != bi.Mode():
			t.Errorf("%s: mode %v, want %v", rel, bi.Mode(), ai.Mode())
		case ai.Mode()&fs.ModeSymlink != 0:
			at, _ := os.Readlink(p)
			bt, _ := os.Readlink(q)
			if at != bt {
				t.Errorf("%s: link to %q, want %q", rel, bt, at)
			}
		case !ai.ModTime().Equal(bi.ModTime()):
			t.Errorf("%s: mtime %v, want %v", rel, bi.ModTime(), ai.ModTime())
		case ai.Mode().IsRegular() && testutil.FileSHA256(t, p) != testutil.FileSHA256(t, q):
			t.Errorf("%s: contents differ", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("compared only %d entries", seen)
	}
}

// TestTree copies a tree local → NFS → local with -r and -j and checks
// modes, times, links and contents at both ends, and the warning for the
// named pipe.
func TestTree(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		local := t.TempDir()
		src := filepath.Join(local, "tree")
		makeTree(t, src)

		r := nfscp(t, "-r", "-j", "3", src, a.url)
		if want := "nfscp: " + src + "/a/fifo: skipping named pipe\n"; r.code != 0 || r.stderr != want {
			t.Fatalf("exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
		}
		// a.url existed, so the tree lands inside it, as with cp -r.
		sameEntries(t, "on the server", localEntries(t, src), a.side.tree(t, "tree"))

		back := filepath.Join(local, "back")
		mustSucceed(t, nfscp(t, "-rq", "-j", "2", a.url+"/tree", back))
		sameTree(t, src, back)

		// Into the existing copy again: a merge that replaces every file.
		mustSucceed(t, nfscp(t, "-qr", a.url+"/tree", local))
		a.side.noLeftovers(t)
		noLeftovers(t, local)

		// Without -r a directory is refused, and nothing is created.
		mustFail(t, nfscp(t, src, a.url+"/other"), 1,
			"nfscp: "+src+": is a directory (use -r to copy directories)")
		if names := a.side.list(t, ""); strings.Join(names, " ") != "tree" {
			t.Errorf("a refused copy created its destination: the directory holds %q", names)
		}
	})
}

// TestManyFilesParallel copies 60 files with -j 8 from several sources
// and checks them all, and the --stats report of a run without outages,
// on each server.
func TestManyFilesParallel(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		local := t.TempDir()
		args := []string{"-j", "8", "--stats"}
		sums := map[string]string{}
		for i := range 60 {
			name := "f" + strconv.Itoa(i)
			sums[name] = writeRandom(t, filepath.Join(local, name), int64(i*i*97), uint64(100+i))
			args = append(args, filepath.Join(local, name))
		}
		r := nfscp(t, append(args, a.url)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		for name, sum := range sums {
			if got := a.side.sha256(t, name); got != sum {
				t.Errorf("%s: sha256 %s, want %s", name, got, sum)
			}
		}
		for _, want := range []string{
			`(?m)^copied: 60 files, 0 symlinks, 0 directories, `,
			`(?m)^server ` + regexp.QuoteMeta(s.addr) + ` \(` + regexp.QuoteMeta(s.addr) + `, policy hedged, hard\):$`,
			`(?m)^  connects: +1$`,
			`(?m)^  reconnects: +0$`,
			`(?m)^  local ports: +\d+$`,
			`(?m)^  rpc calls: +[1-9]\d*$`,
			`(?m)^  retransmits: +0$`,
			`(?m)^  reclaims: +0$`,
		} {
			if !regexp.MustCompile(want).MatchString(r.stdout) {
				t.Errorf("--stats output lacks %s:\n%s", want, r.stdout)
			}
		}
	})
}

// TestNFSToNFS copies between two servers and within one.
func TestNFSToNFS(t *testing.T) {
	needServer(t)
	a, b := newArea(t, srvA), newArea(t, srvB)
	sum := writeRandom(t, filepath.Join(a.disk, "big"), 9<<20+17, 3)
	makeTree(t, filepath.Join(a.disk, "tree"))
	os.Remove(filepath.Join(a.disk, "tree/a/fifo")) // Ganesha's VFS would list it

	mustSucceed(t, nfscp(t, "-q", "--verify", a.url+"/big", b.url+"/big"))
	if got := testutil.FileSHA256(t, filepath.Join(b.disk, "big")); got != sum {
		t.Fatalf("server to server: sha256 %s, want %s", got, sum)
	}
	mustSucceed(t, nfscp(t, "-q", b.url+"/big", b.url+"/big2"))
	if got := testutil.FileSHA256(t, filepath.Join(b.disk, "big2")); got != sum {
		t.Fatalf("within a server: sha256 %s, want %s", got, sum)
	}
	mustSucceed(t, nfscp(t, "-rq", a.url+"/tree", b.url+"/copy"))
	sameTree(t, filepath.Join(a.disk, "tree"), filepath.Join(b.disk, "copy"))
	noLeftovers(t, b.disk)

	mustFail(t, nfscp(t, "-q", b.url+"/big", b.url+"/big"), 1,
		"nfscp: "+b.url+"/big: source and destination are the same file")
	mustFail(t, nfscp(t, "-rq", a.url+"/tree", a.url+"/tree/a"), 1,
		"nfscp: "+a.url+"/tree: cannot copy a directory into itself")
}

// TestNFSToNFSAcrossServers copies from Ganesha to Linux's nfsd and
// back, and within nfsd: two implementations, two sessions in one run.
func TestNFSToNFSAcrossServers(t *testing.T) {
	needServer(t)
	a, k := newArea(t, srvA), knfsdArea(t, knfsd.Shared(t))
	sum := writeRandom(t, filepath.Join(a.disk, "big"), 9<<20+17, 5)
	mustSucceed(t, nfscp(t, "-q", "--verify", a.url+"/big", k.url+"/big"))
	if got := k.side.sha256(t, "big"); got != sum {
		t.Fatalf("Ganesha to nfsd: sha256 %s, want %s", got, sum)
	}
	mustSucceed(t, nfscp(t, "-q", k.url+"/big", k.url+"/big2"))
	if got := k.side.sha256(t, "big2"); got != sum {
		t.Fatalf("within nfsd: sha256 %s, want %s", got, sum)
	}
	mustSucceed(t, nfscp(t, "-q", k.url+"/big2", a.url+"/back"))
	if got := testutil.FileSHA256(t, filepath.Join(a.disk, "back")); got != sum {
		t.Fatalf("nfsd to Ganesha: sha256 %s, want %s", got, sum)
	}
	mustFail(t, nfscp(t, "-q", k.url+"/big", k.url+"/big"), 1,
		"nfscp: "+k.url+"/big: source and destination are the same file")
}

// TestVerifyReadsBack checks that --verify reads each copy back: the bytes
// received from the server grow by the file's size.
func TestVerifyReadsBack(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		src := filepath.Join(t.TempDir(), "f")
		sum := writeRandom(t, src, 6<<20, 4)
		received := func(out string) float64 {
			m := regexp.MustCompile(`(?m)^  bytes received: +([\d.]+) (B|KiB|MiB)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no bytes received in:\n%s", out)
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			return v * map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}[m[2]]
		}
		plain := nfscp(t, "--stats", src, a.url+"/plain")
		verified := nfscp(t, "--stats", "--verify", src, a.url+"/verified")
		mustSucceed(t, plain)
		mustSucceed(t, verified)
		if p, v := received(plain.stdout), received(verified.stdout); v < 6<<20 || p >= 1<<20 {
			t.Errorf("--verify received %.0f bytes, a plain copy %.0f: the copy was not read back", v, p)
		}
		if a.side.sha256(t, "verified") != sum {
			t.Errorf("verified copy differs")
		}
	})
}

// TestProgressBarOnTerminal runs nfscp under script(1), which gives it a
// terminal: the bar appears with bytes and rate, and -q removes it.
func TestProgressBarOnTerminal(t *testing.T) {
	needServer(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	a := newArea(t, srvA)
	src := filepath.Join(t.TempDir(), "f")
	writeRandom(t, src, 4<<20, 5)
	tty := func(args ...string) result {
		line := nfscpBin
		for _, a := range args {
			line += " '" + a + "'"
		}
		return runCmd(t, exec.Command("script", "-qefc", line, "/dev/null"))
	}
	r := tty("--bwlimit", "8m", src, a.url+"/f")
	if r.code != 0 || !strings.Contains(r.stdout, "MiB") || !strings.Contains(r.stdout, "%") {
		t.Errorf("on a terminal: exit %d, no bar in:\n%q", r.code, r.stdout)
	}
	r = tty("-q", src, a.url+"/g")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("-q on a terminal: exit %d, output %q", r.code, r.stdout)
	}
}

// TestBadInput checks the one-line errors and exit codes of bad command
// lines, missing sources and unwritable destinations, and that a failed
// copy leaves nothing at its destination.
func TestBadInput(t *testing.T) {
	needServer(t)
	a := newArea(t, srvA)
	local := t.TempDir()
	src := filepath.Join(local, "f")
	writeRandom(t, src, 1000, 6)
	host := srvA.Addr()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{src}, 2, "nfscp: need a source and a destination: nfscp [flags] SRC... DST (see nfscp -h)"},
		{[]string{"-x", src, "d"}, 2, "nfscp: flag provided but not defined: -x (see nfscp -h)"},
		{[]string{"-j", "0", src, "d"}, 2, "nfscp: -j must be from 1 to 256"},
		{[]string{src, "d", "-r"}, 2, "nfscp: flag -r after the file arguments: flags go first (a file named so can be given as ./-r)"},
		{[]string{"--uid", "alice", src, "d"}, 2, `nfscp: invalid value "alice" for flag -uid: "alice" is not a number from 0 to 4294967295 (see nfscp -h)`},
		{[]string{src, "nfs://"}, 2, "nfscp: nfs://: missing host (want nfs://host[:port]/path)"},
		{[]string{src, "nfs://h:99999/x"}, 2, `nfscp: nfs://h:99999/x: invalid port "99999"`},
		{[]string{src, "nfs://h/x?version=3"}, 2, `nfscp: nfs://h/x?version=3: version "3" not supported: this client speaks NFSv4.0, NFSv4.1 and NFSv4.2 (version=4 for any, 4.0, 4.1 or 4.2)`},
		{[]string{src, "nfs://h/x?colour=red"}, 2, `nfscp: nfs://h/x?colour=red: unknown parameter "colour" (known: version, vers, policy, uid, gid, rsize, wsize, timeo, retrans, soft, hard, xprtsec, sec)`},
		{[]string{src, "nfs://h/x?soft&hard"}, 2, "nfscp: nfs://h/x?soft&hard: both soft and hard given"},
		{[]string{src, "nfs://bob@h/x"}, 2, "nfscp: nfs://bob@h/x: user names are not supported in nfs:// URLs (use ?uid=N&gid=N)"},
		{[]string{src, "http://h/x"}, 2, `nfscp: http://h/x: unsupported scheme "http" (want nfs://host[:port]/path)`},
		{[]string{src, "nfs://h/x%zz"}, 2, `nfscp: nfs://h/x%zz: malformed URL: invalid URL escape "%zz"`},
		{[]string{filepath.Join(local, "nope"), a.url}, 1, "nfscp: " + filepath.Join(local, "nope") + ": no such file or directory"},
		{[]string{a.url + "/nope", local}, 1, "nfscp: " + a.url + "/nope: no such file or directory"},
		{[]string{src, a.url + "/no/such/dir/f"}, 1, "nfscp: " + a.url + "/no/such/dir/f: no such file or directory"},
		{[]string{src, src, a.url + "/f"}, 1, "nfscp: " + a.url + "/f: no such directory (copying several sources needs an existing directory)"},
		{[]string{src, "nfs://" + host + "/export/f?version=4&policy=sideways"}, 2,
			"nfscp: nfs://" + host + `/export/f?version=4&policy=sideways: unknown policy "sideways" (want same-reserved, new-reserved, ephemeral, hedged)`},
	} {
		r := nfscp(t, append([]string{"-q"}, c.args...)...)
		if r.code != c.code || r.stderr != c.want+"\n" {
			t.Errorf("nfscp %q:\n got exit %d, %q\nwant exit %d, %q", c.args, r.code, r.stderr, c.code, c.want+"\n")
		}
	}

	// Unwritable: as uid 65534, into a directory only root may write.
	ro := filepath.Join(a.disk, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := a.url + "/ro/f?uid=65534&gid=65534"
	mustFail(t, nfscp(t, "-q", src, dst), 1, "nfscp: "+a.url+"/ro/f: permission denied")
	if names := listDir(t, ro); len(names) != 0 {
		t.Errorf("after a refused copy the directory holds %q", names)
	}
	// The same uid may read what others may read, and no more: the query
	// and the flag reach the server.
	mustSucceed(t, nfscp(t, "-q", src, a.url+"/f"))
	mustSucceed(t, nfscp(t, "-q", a.url+"/ro/../f?uid=65534", filepath.Join(local, "g")))
	if err := os.Chmod(filepath.Join(a.disk, "f"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, nfscp(t, "-q", "--uid", "65534", a.url+"/f", filepath.Join(local, "h")), 1,
		"nfscp: "+a.url+"/f: permission denied")
	if _, err := os.Lstat(filepath.Join(local, "h")); err == nil {
		t.Errorf("a failed copy created its destination")
	}
	noLeftovers(t, local)
}

// TestFailureHalfWayLeavesNothing stops copies part way (--timeout with a
// slow --bwlimit) in both directions: the destination name never appears,
// and the temporary file is removed.
func TestFailureHalfWayLeavesNothing(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		local := t.TempDir()
		src := filepath.Join(local, "big")
		writeRandom(t, src, 8<<20, 7)
		mustFail(t, nfscp(t, "-q", "--bwlimit", "2m", "--timeout", "1s", src, a.url+"/big"), 1,
			"nfscp: "+a.url+"/big: timed out after 1s (--timeout)")
		if names := a.side.list(t, ""); len(names) != 0 {
			t.Errorf("after a failed upload the server holds %q", names)
		}
		a.side.writeRandom(t, "big", 8<<20, 7)
		mustFail(t, nfscp(t, "-q", "--bwlimit", "2m", "--timeout", "1s", a.url+"/big", filepath.Join(local, "copy")), 1,
			"nfscp: "+a.url+"/big: timed out after 1s (--timeout)")
		if names := listDir(t, local); len(names) != 1 || names[0] != "big" {
			t.Errorf("after a failed download the local directory holds %q; want only the source", names)
		}

		// SIGINT part way: the same, and the message says so.
		cmd := exec.Command(nfscpBin, "-q", "--bwlimit", "2m", a.url+"/big", filepath.Join(local, "copy"))
		wait := startCmd(t, cmd)
		waitFor(t, time.Minute, "download under way", func() bool { return tempfile.Size(local, "copy") > 0 })
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		mustFail(t, wait(), 1, "nfscp: "+a.url+"/big: interrupted")
		if names := listDir(t, local); len(names) != 1 || names[0] != "big" {
			t.Errorf("after an interrupted download the local directory holds %q; want only the source", names)
		}
	})
}

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestServerDownAtStart: soft gives up after its timeouts, hard waits until
// --timeout; both say why the server could not be reached.
func TestServerDownAtStart(t *testing.T) {
	src := filepath.Join(t.TempDir(), "f")
	writeRandom(t, src, 1000, 8)
	host := "127.0.0.1:" + strconv.Itoa(freePort(t))
	url := "nfs://" + host + "/export/f"
	// The time given is measured: at least the 1 s budget, a little more
	// on a busy machine.
	want := regexp.MustCompile(`^nfscp: ` + regexp.QuoteMeta(url) + `: server not responding \(soft: gave up after 1(\.[0-9]+)?s\); server ` +
		regexp.QuoteMeta(host) + `: connection refused\n$`)
	if r := nfscp(t, "-q", "--soft", "--timeo", "1s", "--retrans", "1", src, url); r.code != 1 || !want.MatchString(r.stderr) {
		t.Errorf("got exit %d, stderr:\n%q\nwant exit 1 and a line matching %s", r.code, r.stderr, want)
	}
	mustFail(t, nfscp(t, "-q", "--timeout", "2s", src, url+"?timeo=10"), 1,
		"nfscp: "+url+": timed out after 2s (--timeout); server "+host+": connection refused")
}

// TestReservedPortNeedsPrivilege runs nfscp without CAP_NET_BIND_SERVICE:
// a reserved-port policy fails with advice, and the advice works.
func TestReservedPortNeedsPrivilege(t *testing.T) {
	needServer(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv(1) from util-linux is needed: %v", err)
	}
	a := newArea(t, srvA)
	src := filepath.Join(t.TempDir(), "f")
	writeRandom(t, src, 1000, 9)
	unprivileged := func(args ...string) result {
		return runCmd(t, exec.Command("setpriv", append([]string{
			"--inh-caps=-net_bind_service", "--bounding-set=-net_bind_service", "--", nfscpBin}, args...)...))
	}
	mustFail(t, unprivileged("-q", "--policy", "same-reserved", src, a.url+"/f"), 1,
		"nfscp: "+a.url+"/f: "+reservedPortAdvice)
	mustFail(t, unprivileged("-q", src, a.url+"/f?policy=new-reserved"), 1,
		"nfscp: "+a.url+"/f: "+reservedPortAdvice)
	mustSucceed(t, unprivileged("-q", "--policy", "ephemeral", src, a.url+"/f"))
	mustSucceed(t, unprivileged("-q", src, a.url+"/g")) // hedged falls back to ephemeral ports
	if names := listDir(t, a.disk); strings.Join(names, " ") != "f g" {
		t.Errorf("server holds %q, want f and g", names)
	}
}

// startCopy runs nfscp in the background; wait returns its result.
func startCopy(t *testing.T, args ...string) (wait func() result) {
	t.Helper()
	return startCmd(t, exec.Command(nfscpBin, args...))
}

// TestConnectionResetMidCopy kills the TCP connection under a copy (ss -K
// against Ganesha; against knfsd the forwarder in front of its guest
// resets it) and checks that the copy completes intact and -v and --stats
// report the reconnect. nfscp is held (SIGSTOP) while its connection is
// reset, so that a copy faster than the check of its progress (a script
// in knfsd's guest) cannot finish first.
func TestConnectionResetMidCopy(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		src := filepath.Join(t.TempDir(), "f")
		sum := writeRandom(t, src, 32<<20, 10)
		cmd := exec.Command(nfscpBin, "-v", "--stats", "--bwlimit", "8m", src, a.url+"/f")
		wait := startCmd(t, cmd)
		t.Cleanup(func() { cmd.Process.Kill() }) // if the test ends early; harmless after wait
		waitFor(t, time.Minute, "upload under way", func() bool { return a.side.tempSize(t, "f") >= 2<<20 })
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		s.reset(t)
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		r := wait()
		if r.code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if got := a.side.sha256(t, "f"); got != sum {
			t.Fatalf("sha256 %s, want %s", got, sum)
		}
		if !regexp.MustCompile(`(?m)^nfscp: ` + regexp.QuoteMeta(s.addr) + `: reconnected: local port \d+ → \d+ after .+, .+ without a connection$`).MatchString(r.stderr) {
			t.Errorf("-v did not report the reconnect:\n%s", r.stderr)
		}
		if !regexp.MustCompile(`(?m)^  reconnects: +[1-9]\d*$`).MatchString(r.stdout) {
			t.Errorf("--stats did not count the reconnect:\n%s", r.stdout)
		}
	})
}

// TestServerRestartMidCopy crashes the server during an upload and a
// download (Ganesha is killed and started again 2 s later; knfsd's nfsd
// threads are stopped and started again): hard copies wait, the client
// reclaims its state in the grace period, and the files arrive intact.
//
// nfscp is held (SIGSTOP) from when its copy is under way until the server
// is down, and then waits through the outage: stopping knfsd is a script
// in its guest, and `rpc.nfsd 0` waits for the requests in progress, so
// on a busy machine the copy could otherwise finish first (it once did,
// at 8 MiB/s, and nothing was left to reclaim).
func TestServerRestartMidCopy(t *testing.T) {
	forEachServer(t, &ganesha.Config{Grace: 5 * time.Second, Lease: 5 * time.Second}, func(t *testing.T, s testServer, a area) {
		local := t.TempDir()
		src := filepath.Join(local, "f")
		sum := writeRandom(t, src, 32<<20, 11)
		copyAcross := func(what string, size func() int64, args ...string) result {
			cmd := exec.Command(nfscpBin, args...)
			wait := startCmd(t, cmd)
			t.Cleanup(func() { cmd.Process.Kill() }) // if the test ends early; harmless after wait
			waitFor(t, time.Minute, what+" under way", func() bool { return size() >= 2<<20 })
			if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			s.stop(t)
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			s.start(t)
			return wait()
		}

		r := copyAcross("upload", func() int64 { return a.side.tempSize(t, "f") },
			"-v", "--stats", "--bwlimit", "8m", "--timeout", "90s", src, a.url+"/f")
		if r.code != 0 {
			t.Fatalf("upload across a server restart: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if got := a.side.sha256(t, "f"); got != sum {
			t.Fatalf("upload across a server restart: sha256 %s, want %s", got, sum)
		}
		for _, want := range []string{`(?m)^  reconnects: +[1-9]\d*$`, `(?m)^  client ID resets: +1$`, `(?m)^  reclaims: +1$`} {
			if !regexp.MustCompile(want).MatchString(r.stdout) {
				t.Errorf("--stats lacks %s:\n%s\nstderr:\n%s", want, r.stdout, r.stderr)
			}
		}

		back := filepath.Join(local, "back")
		r = copyAcross("download", func() int64 { return tempfile.Size(local, "back") },
			"-v", "--bwlimit", "8m", "--timeout", "90s", a.url+"/f", back)
		if r.code != 0 {
			t.Fatalf("download across a server restart: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if got := testutil.FileSHA256(t, back); got != sum {
			t.Fatalf("download across a server restart: sha256 %s, want %s", got, sum)
		}
	})
}

// TestServerGoneMidCopy kills the server for good during a hard copy: nfscp
// waits through the outage until --timeout, then fails with one line, and
// the local side of a download holds nothing.
func TestServerGoneMidCopy(t *testing.T) {
	run := func(t *testing.T, host string, a area, kill func()) {
		local := t.TempDir()
		a.side.writeRandom(t, "f", 16<<20, 12)
		wait := startCopy(t, "--bwlimit", "4m", "--timeout", "2s", a.url+"/f", filepath.Join(local, "f"))
		waitFor(t, time.Minute, "download under way", func() bool { return tempfile.Size(local, "f") > 0 })
		kill()
		r := wait()
		want := "nfscp: " + host + ": server not responding, still trying\n"
		if r.code != 1 || !strings.HasSuffix(r.stderr, "nfscp: "+a.url+"/f: timed out after 2s (--timeout)\n") ||
			strings.Count(r.stderr, "\n") > 2 || (strings.Count(r.stderr, "\n") == 2 && !strings.HasPrefix(r.stderr, want)) {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if names := listDir(t, local); len(names) != 0 {
			t.Errorf("after a failed download the local directory holds %q", names)
		}
	}
	t.Run("ganesha", func(t *testing.T) {
		needServer(t)
		srv := ganesha.Start(t, ganesha.Config{})
		run(t, srv.Addr(), newArea(t, srv), srv.Kill)
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Start(t, knfsd.Config{})
		side := &guestSide{srv: srv, dir: "gone"}
		side.exec(t, "mkdir -m 0755 "+side.path(t, ""))
		a := area{side: side, url: "nfs://" + srv.Addr() + "/gone"}
		// Stopped whole: the guest, its namespace and the forwarder, whose
		// port then refuses connections as a dead Ganesha's does.
		run(t, srv.Addr(), a, func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
	})
}

// TestServerSilentMidCopy stops the server (SIGSTOP) during hard copies,
// the case where calls would otherwise wait for ever: a download ends at
// --timeout and an upload at Ctrl-C (SIGINT), each with one line saying
// why, and the local side of the download holds nothing.
//
// Ganesha is one process: stopped, its host's kernel still takes what is
// sent, and nothing is answered. knfsd lives in its guest's kernel
// (Server.Pause stops the UML kernel's process): nfsd and the guest's
// TCP stack stop together, so the guest acknowledges nothing, but nfscp
// talks to the forwarder on 127.0.0.1, whose host kernel takes what nfscp
// sends until the forwarder's buffers are full, then answers its window
// probes. So nfscp sees what it sees of a stopped Ganesha, a live path and
// a server that does not answer, and not a dead path (the lab covers
// that). With either server the upload's connection, its data waiting
// behind a closed window, may be given up as a dead peer and redialed
// (nfscp -v shows it): Ganesha's kernel completes the new handshake and
// nothing more; the forwarder accepts the connection, and its dial of the
// stopped guest hangs until it gives up after 10 s and resets it. Either
// way nothing is answered until the upload is interrupted.
func TestServerSilentMidCopy(t *testing.T) {
	run := func(t *testing.T, host string, a area, pause func()) {
		local := t.TempDir()
		a.side.writeRandom(t, "f", 16<<20, 13)
		src := filepath.Join(t.TempDir(), "up")
		writeRandom(t, src, 16<<20, 14)
		stillTrying := "nfscp: " + host + ": server not responding, still trying\n"
		// oneLine reports whether stderr is want, after at most one line
		// saying that the server does not answer.
		oneLine := func(stderr, want string) bool {
			rest, _ := strings.CutPrefix(stderr, stillTrying)
			return rest == want
		}

		down := startCopy(t, "--bwlimit", "4m", "--timeout", "2s", a.url+"/f", filepath.Join(local, "f"))
		up := exec.Command(nfscpBin, "--bwlimit", "4m", src, a.url+"/up")
		upWait := startCmd(t, up)
		t.Cleanup(func() { up.Process.Kill() }) // if the test ends early; harmless after upWait
		waitFor(t, time.Minute, "download and upload under way", func() bool {
			return tempfile.Size(local, "f") > 0 && a.side.tempSize(t, "up") > 0
		})
		pause()
		r := down()
		if want := "nfscp: " + a.url + "/f: timed out after 2s (--timeout)\n"; r.code != 1 || !oneLine(r.stderr, want) {
			t.Errorf("download from a silent server: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if names := listDir(t, local); len(names) != 0 {
			t.Errorf("after a download from a silent server the local directory holds %q", names)
		}
		if err := up.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r = upWait()
		if want := "nfscp: " + a.url + "/up: interrupted\n"; r.code != 1 || !oneLine(r.stderr, want) {
			t.Errorf("upload to a silent server, interrupted: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	}
	t.Run("ganesha", func(t *testing.T) {
		needServer(t)
		srv := ganesha.Start(t, ganesha.Config{})
		run(t, srv.Addr(), newArea(t, srv), func() { srv.Pause(t) })
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Start(t, knfsd.Config{}) // its own: a paused guest serves no one
		side := &guestSide{srv: srv, dir: "silent"}
		side.exec(t, "mkdir -m 0755 "+side.path(t, ""))
		run(t, srv.Addr(), area{side: side, url: "nfs://" + srv.Addr() + "/silent"}, func() { srv.Pause(t) })
	})
}

// TestNFSv40Server copies to and from a server that serves NFSv4.0 alone
// (Ganesha, and Linux's nfsd with 4.1 and 4.2 turned off): by default
// nfscp falls back to 4.0; pinned to 4.1 it fails with a hint naming the
// flag that fixes it; pinned to 4.0 (flag or URL) it works.
func TestNFSv40Server(t *testing.T) {
	run := func(t *testing.T, a area) {
		local := t.TempDir()
		src := filepath.Join(local, "src")
		sum := writeRandom(t, src, 3<<20, 40)
		mustSucceed(t, nfscp(t, "-q", src, a.url+"/f"))
		mustSucceed(t, nfscp(t, "-q", "--nfs-version", "4.0", a.url+"/f", filepath.Join(local, "back")))
		mustSucceed(t, nfscp(t, "-q", a.url+"/f?version=4.0", filepath.Join(local, "back2")))
		for _, name := range []string{"back", "back2"} {
			if got := testutil.FileSHA256(t, filepath.Join(local, name)); got != sum {
				t.Errorf("%s: sha256 %s; want %s", name, got, sum)
			}
		}
		if got := a.side.sha256(t, "f"); got != sum {
			t.Errorf("on the server: sha256 %s; want %s", got, sum)
		}
		mustFail(t, nfscp(t, "-q", "--nfs-version", "4.1", a.url+"/f", local), 1,
			"nfscp: "+a.url+"/f: the server refused NFSv4.1 (NFS4ERR_MINOR_VERS_MISMATCH); "+
				"try --nfs-version 4.0 (or ?version=4.0), or leave the version to nfscp")
	}
	t.Run("ganesha", func(t *testing.T) {
		needServer(t)
		run(t, newArea(t, ganesha.Start(t, ganesha.Config{MinorVersions: []int{0}})))
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Start(t, knfsd.Config{Versions: []string{"4.0"}})
		side := &guestSide{srv: srv, dir: "v40"}
		side.exec(t, "mkdir -m 0755 "+side.path(t, ""))
		run(t, area{side: side, url: "nfs://" + srv.Addr() + "/v40"})
	})
}

// TestOnlyNFSv42Server: against Linux's nfsd serving NFSv4.2 alone, nfscp
// copies with the version left to it, and pinned to 4.1 fails with one
// line naming what the server refused and what to try.
func TestOnlyNFSv42Server(t *testing.T) {
	srv := knfsd.Start(t, knfsd.Config{Versions: []string{"4.2"}})
	local := t.TempDir()
	src := filepath.Join(local, "src")
	sum := writeRandom(t, src, 1<<20, 42)
	url := "nfs://" + srv.Addr() + "/f"
	mustSucceed(t, nfscp(t, "-q", src, url))
	mustSucceed(t, nfscp(t, "-q", url, filepath.Join(local, "back")))
	if got := testutil.FileSHA256(t, filepath.Join(local, "back")); got != sum {
		t.Errorf("back: sha256 %s; want %s", got, sum)
	}
	mustFail(t, nfscp(t, "-q", "--nfs-version", "4.1", url, local), 1,
		"nfscp: "+url+": the server refused NFSv4.1 (NFS4ERR_MINOR_VERS_MISMATCH); "+
			"try --nfs-version 4.0 (or ?version=4.0), or leave the version to nfscp")
}
