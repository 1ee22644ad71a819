package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
)

// The tests in this file play a hostile server (the test writes the
// export on the server's own side between runs, so the server lists what
// an attacker would) against nfscp run as root. Those with a server run
// once per server (forEachServer): Ganesha, whose export is a directory
// here, and knfsd, whose export is reached by scripts in its guest.

// outsideDir makes a directory dir that a copy must never touch, holding
// one file, and returns a function that fails t if either changed.
func outsideDir(t *testing.T, side serverSide, dir string) (unchanged func()) {
	t.Helper()
	side.mkdir(t, dir)
	side.setMode(t, dir, 0o700, 0)
	victim := path.Join(dir, "victim")
	sum := side.writeRandom(t, victim, 1000, 7)
	old := time.Date(2005, 6, 7, 8, 9, 10, 0, time.UTC)
	for _, p := range []string{victim, dir} {
		side.chtimes(t, p, old)
	}
	return func() {
		t.Helper()
		if got := side.sha256(t, victim); got != sum {
			t.Errorf("%s was overwritten", victim)
		}
		if names := side.list(t, dir); len(names) != 1 {
			t.Errorf("%s holds %q, want only victim", dir, names)
		}
		m := side.mode(t, dir)
		if _, mtime := side.stat(t, dir); m != fs.ModeDir|0o700 || !mtime.Equal(old) {
			t.Errorf("%s: mode %v, mtime %v; want drwx------ and %v", dir, m, mtime, old)
		}
	}
}

// linkThenDir makes first/link a symbolic link to target, runs copy (of
// first), then makes second/link a directory holding "victim" and "new",
// as a server would that wants the next copy (of second, which has the
// same base name) written through the link the first one left. (Ganesha
// keeps the handles of a directory it has listed: a name that changes
// type under it reads as stale, so the second tree is a new directory.)
func linkThenDir(t *testing.T, side serverSide, first, second, target string, copy func() result) {
	t.Helper()
	side.mkdirAll(t, first)
	side.symlink(t, target, path.Join(first, "link"))
	mustSucceed(t, copy())
	link := path.Join(second, "link")
	side.mkdirAll(t, link)
	side.writeRandom(t, path.Join(link, "victim"), 100, 8)
	side.writeRandom(t, path.Join(link, "new"), 100, 9)
}

// TestTreeDoesNotFollowLinksInDestination copies a tree from the server
// twice into one local directory. The first time the server lists "link"
// as a symbolic link out of the destination, the second as a directory
// holding files: the second copy must not write through the link it left,
// whether the link is absolute or climbs out with "..".
func TestTreeDoesNotFollowLinksInDestination(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, _ testServer, a area) {
		testutil.CheckLeaks(t) // here: knfsd.Shared's goroutines are not this test's
		for _, c := range []struct {
			name   string
			target func(outside string) string
		}{
			{"absolute", func(outside string) string { return outside }},
			{"dotdot", func(string) string { return "../../outside" }}, // from backup/dir
		} {
			t.Run(c.name, func(t *testing.T) {
				local := t.TempDir()
				backup := filepath.Join(local, "backup")
				if err := os.Mkdir(backup, 0o755); err != nil {
					t.Fatal(err)
				}
				unchanged := outsideDir(t, localSide(local), "outside")
				target := c.target(filepath.Join(local, "outside"))
				linkThenDir(t, a.side, c.name+"/1/dir", c.name+"/2/dir", target, func() result {
					return nfscp(t, "-r", a.url+"/"+c.name+"/1/dir", backup+"/")
				})
				if got, err := os.Readlink(filepath.Join(backup, "dir/link")); err != nil || got != target {
					t.Fatalf("first copy: link %q, %v", got, err)
				}
				r := nfscp(t, "-r", a.url+"/"+c.name+"/2/dir", backup+"/")
				unchanged()
				mustFail(t, r, 1, "nfscp: "+backup+"/dir/link: is a symbolic link (nfscp does not follow links inside the destination)")
				noLeftovers(t, local)
			})
		}
	})
}

// TestTreeDoesNotFollowLinksOnServer is the same for a tree copied to an
// NFS destination: package nfs4 resolves symbolic links in paths, and a
// link on the destination server must not lead the copy elsewhere in the
// server's namespace.
func TestTreeDoesNotFollowLinksOnServer(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		testutil.CheckLeaks(t) // here: knfsd.Shared's goroutines are not this test's
		local := t.TempDir()
		unchanged := outsideDir(t, a.side, "outside")
		// As the server resolves it: an absolute path in its namespace
		// (under Ganesha's pseudo path; knfsd's export is the root).
		target := strings.TrimPrefix(a.url, "nfs://"+s.addr) + "/outside"
		a.side.mkdir(t, "backup")
		run := func(src string) result { return nfscp(t, "-r", src, a.url+"/backup/") }
		linkThenDir(t, localSide(local), "1/dir", "2/dir", target, func() result {
			return run(filepath.Join(local, "1/dir"))
		})
		r := run(filepath.Join(local, "2/dir"))
		unchanged()
		mustFail(t, r, 1, "nfscp: "+a.url+"/backup/dir/link: is a symbolic link (nfscp does not follow links inside the destination)")
		a.side.noLeftovers(t)
	})
}

// TestUserGivenLinksAreFollowed checks the other side of the rule: links
// in the destination the user named are the user's choice and followed,
// for a single file and for a tree.
func TestUserGivenLinksAreFollowed(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, _ testServer, a area) {
		testutil.CheckLeaks(t) // here: knfsd.Shared's goroutines are not this test's
		sum := a.side.writeRandom(t, "f", 3000, 10)
		a.side.mkdirAll(t, "dir/sub")
		a.side.writeRandom(t, "dir/sub/g", 100, 11)
		local := t.TempDir()
		real := filepath.Join(local, "real")
		via := filepath.Join(local, "via")
		if err := os.Mkdir(real, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, via); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, nfscp(t, a.url+"/f", via+"/named"))    // the parent is a link
		mustSucceed(t, nfscp(t, a.url+"/f", via))             // DST is a link to a directory
		mustSucceed(t, nfscp(t, "-r", a.url+"/dir", via+"/")) // a tree into it
		for _, p := range []string{"named", "f"} {
			if got := testutil.FileSHA256(t, filepath.Join(real, p)); got != sum {
				t.Errorf("%s: sha256 %s, want %s", p, got, sum)
			}
		}
		if _, err := os.Stat(filepath.Join(real, "dir/sub/g")); err != nil {
			t.Errorf("the tree did not arrive through the link: %v", err)
		}
		if fi, err := os.Lstat(via); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a link: %v, %v", via, fi, err)
		}
	})
}

// TestRootFSStaysInside checks the second line of defence for a local
// destination: even through a link that the copier's own checks missed
// (one made by another process during the copy, say), rootFS neither
// creates, changes nor renames anything outside its directory.
func TestRootFSStaysInside(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx := t.Context()
	local := t.TempDir()
	dst := filepath.Join(local, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	unchanged := outsideDir(t, localSide(local), "outside")
	if err := os.Symlink("../outside", filepath.Join(dst, "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(local, "outside"), filepath.Join(dst, "abs")); err != nil {
		t.Fatal(err)
	}
	r, err := openRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.root.Close()
	for _, link := range []string{"up", "abs"} {
		in := filepath.Join(dst, link)
		if w, _, err := r.CreateTemp(ctx, in, "x"); err == nil {
			w.Close()
			t.Errorf("CreateTemp through %s succeeded", link)
		}
		if err := r.Mkdir(ctx, in+"/d", 0o700); err == nil {
			t.Errorf("Mkdir through %s succeeded", link)
		}
		if err := r.Chmod(ctx, in, 0o755); err == nil {
			t.Errorf("Chmod of %s succeeded", link)
		}
		if err := r.Chtimes(ctx, in, time.Now()); err == nil {
			t.Errorf("Chtimes of %s succeeded", link)
		}
		if err := r.Rename(ctx, in+"/victim", dst+"/stolen"); err == nil {
			t.Errorf("Rename through %s succeeded", link)
		}
	}
	if _, err := r.Stat(ctx, local+"/outside"); err == nil {
		t.Errorf("Stat of a path outside the root succeeded")
	}
	unchanged()
}

// setMode makes p with mode m (given as chmod takes it) and owner uid:gid.
func setMode(t *testing.T, p string, m uint32, uid int) {
	t.Helper()
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(p, m); err != nil { // os.Chmod's bits differ from chmod(2)'s
		t.Fatal(err)
	}
}

// TestSetIDBits checks which special mode bits copies get, in every
// direction: none without -p (cp clears them too), and with -p (or -r)
// setuid only where the copy's owner is the source's, setgid only where
// its group is, and sticky always. nfscp does not copy owners, so a
// setuid file of someone else's would otherwise become root's.
//
// knfsd reports owners as numbers ("4321": nfsd maps no IDs to names for
// AUTH_SYS clients by default), Ganesha as names ("root@localdomain");
// nfscp compares either with local IDs, and the bits come out the same.
func TestSetIDBits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give files other owners") // the CI job runs as root
	}
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		testutil.CheckLeaks(t) // here: knfsd.Shared's goroutines are not this test's
		const other = 4321
		b := s.second(t)
		local := t.TempDir()
		here := localSide(local)
		perm := func(m os.FileMode) os.FileMode { return m &^ processUmask() }
		suid := os.ModeSetuid | os.ModeSetgid

		// Files: root's and another user's, setuid and setgid.
		a.side.writeRandom(t, "mine", 100, 12)
		a.side.writeRandom(t, "theirs", 100, 13)
		a.side.setMode(t, "mine", 0o6755, 0)
		a.side.setMode(t, "theirs", 0o6755, other)
		localMine, localTheirs := filepath.Join(local, "mine"), filepath.Join(local, "theirs")
		writeRandom(t, localMine, 100, 14)
		writeRandom(t, localTheirs, 100, 15)
		setMode(t, localMine, 0o6755, 0)
		setMode(t, localTheirs, 0o6755, other)

		for _, c := range []struct {
			what string
			args []string
			side serverSide // where the copy is
			dst  string
			want os.FileMode
		}{
			{"NFS to local", []string{a.url + "/mine", local + "/plain"}, here, "plain", perm(0o755)},
			{"NFS to local -p", []string{"-p", a.url + "/mine", local + "/kept"}, here, "kept", suid | 0o755},
			{"NFS to local -p, another owner", []string{"-p", a.url + "/theirs", local + "/dropped"}, here, "dropped", 0o755},
			{"local to NFS", []string{localMine, b.url + "/plain"}, b.side, "plain", perm(0o755)},
			{"local to NFS -p", []string{"-p", localMine, b.url + "/kept"}, b.side, "kept", suid | 0o755},
			{"local to NFS -p, another owner", []string{"-p", localTheirs, b.url + "/dropped"}, b.side, "dropped", 0o755},
			{"NFS to NFS", []string{a.url + "/mine", b.url + "/nn-plain"}, b.side, "nn-plain", perm(0o755)},
			{"NFS to NFS -p", []string{"-p", a.url + "/mine", b.url + "/nn-kept"}, b.side, "nn-kept", suid | 0o755},
			{"NFS to NFS -p, another owner", []string{"-p", a.url + "/theirs", b.url + "/nn-dropped"}, b.side, "nn-dropped", 0o755},
		} {
			mustSucceed(t, nfscp(t, append([]string{"-q"}, c.args...)...))
			if got := c.side.mode(t, c.dst); got != c.want {
				t.Errorf("%s: mode %v, want %v", c.what, got, c.want)
			}
		}

		// Directories (-r implies -p): sticky kept, setgid kept for a
		// directory of root's group only.
		for _, d := range []string{"sticky", "sgid", "theirs"} {
			a.side.mkdirAll(t, "tree/"+d)
		}
		a.side.setMode(t, "tree/sticky", 0o1777, 0)
		a.side.setMode(t, "tree/sgid", 0o2775, 0)
		a.side.setMode(t, "tree/theirs", 0o2775, other)
		mustSucceed(t, nfscp(t, "-rq", a.url+"/tree", local+"/tree"))
		mustSucceed(t, nfscp(t, "-rq", a.url+"/tree", b.url+"/tree"))
		for _, c := range []struct {
			name string
			want os.FileMode
		}{
			{"sticky", os.ModeSticky | 0o777},
			{"sgid", os.ModeSetgid | 0o775},
			{"theirs", 0o775},
		} {
			for _, copied := range []struct {
				where string
				side  serverSide
			}{{"local", here}, {"NFS", b.side}} {
				if got := copied.side.mode(t, "tree/"+c.name); got != os.ModeDir|c.want {
					t.Errorf("%s copy of tree/%s: mode %v, want %v", copied.where, c.name, got, os.ModeDir|c.want)
				}
			}
		}
	})
}

// TestIDSame checks how owners from a server compare with local ones.
func TestIDSame(t *testing.T) {
	testutil.CheckLeaks(t)
	uid := func(n uint32) id { return id{n: n, num: true} }
	name := func(s string) id { return id{name: s} }
	for _, c := range []struct {
		a, b id
		want bool
	}{
		{uid(0), uid(0), true},
		{uid(0), uid(1000), false},
		{name("root@localdomain"), uid(0), true}, // looked up in /etc/passwd
		{uid(0), name("root@example.com"), true},
		{name("no-such-user-here@x"), uid(0), false},
		{name("alice@x"), name("alice@x"), true},
		{name("alice@x"), name("bob@x"), false},
		{name(""), name(""), false},
		{id{}, id{}, false},
		{uid(0), id{n: 0, num: true, group: true}, false},
	} {
		if got := c.a.same(c.b); got != c.want {
			t.Errorf("%+v.same(%+v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// evilName is a file name that sets the terminal's title and breaks the
// line, as a server (or a local file) may offer one.
const evilName = "evil\x1b]0;pwned\x07\n"

// noRawName fails t if out shows evilName's escape sequence or newline
// raw, rather than as \x1b]0;pwned\a\n.
func noRawName(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, "\x1b]") || strings.Contains(out, "pwned\x07") || strings.Contains(out, "\x07\n") {
		t.Errorf("%s shows the name raw: %q", what, out)
	}
}

// TestNamesQuotedForTerminal checks that names with control characters
// are written escaped, in Go's quoted form, in errors, warnings and the
// progress bar, and that ordinary names are written as they are.
func TestNamesQuotedForTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	forEachServer(t, nil, func(t *testing.T, _ testServer, a area) {
		testutil.CheckLeaks(t) // here: knfsd.Shared's goroutines are not this test's
		local := t.TempDir()
		a.side.mkdir(t, "tree")
		a.side.writeRandom(t, "tree/"+evilName, 6<<20, 16)

		// An error naming it: the local copy has a directory in its place.
		back := filepath.Join(local, "back")
		if err := os.MkdirAll(filepath.Join(back, "tree", evilName), 0o755); err != nil {
			t.Fatal(err)
		}
		r := nfscp(t, "-r", a.url+"/tree", back)
		noRawName(t, "the error", r.stderr)
		mustFail(t, r, 1, "nfscp: "+strconv.Quote(filepath.Join(back, "tree", evilName))+": file exists")

		// A warning naming a local file.
		src := filepath.Join(local, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(src, evilName), 0o644); err != nil {
			t.Fatal(err)
		}
		r = nfscp(t, "-r", src, a.url+"/up")
		noRawName(t, "the warning", r.stderr)
		if want := "nfscp: " + strconv.Quote(filepath.Join(src, evilName)) + ": skipping named pipe\n"; r.code != 0 || r.stderr != want {
			t.Errorf("exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
		}

		// The progress bar, on a terminal, while the file is copied.
		line := nfscpBin + " --bwlimit 6m -r '" + a.url + "/tree' '" + filepath.Join(local, "bar") + "'"
		r = runCmd(t, exec.Command("script", "-qefc", line, "/dev/null"))
		noRawName(t, "the progress bar", r.stdout)
		if r.code != 0 || !strings.Contains(r.stdout, `evil\x1b]0;pwned\a\n`) {
			t.Errorf("exit %d, no quoted name in the bar:\n%q", r.code, r.stdout)
		}
	})
}

func TestQuoteName(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, c := range []struct{ in, name, line string }{
		{"plain.txt", "plain.txt", "plain.txt"},
		{"with space/and \"quotes\"", "with space/and \"quotes\"", "with space/and \"quotes\""},
		{"héllo wörld ✓", "héllo wörld ✓", "héllo wörld ✓"},
		{evilName, `"evil\x1b]0;pwned\a\n"`, `evil\x1b]0;pwned\a\n`},
		{"tab\there", `"tab\there"`, `tab\there`},
		{"bad\xffutf8", `"bad\xffutf8"`, `bad\xffutf8`},
		{"rtl\u202eexe.txt", `"rtl\u202eexe.txt"`, `rtl\u202eexe.txt`},
	} {
		if got := quoteName(c.in); got != c.name {
			t.Errorf("quoteName(%q) = %s, want %s", c.in, got, c.name)
		}
		if got := termSafe(c.in); got != c.line {
			t.Errorf("termSafe(%q) = %s, want %s", c.in, got, c.line)
		}
	}
}
