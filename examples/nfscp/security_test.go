package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
)

// The tests in this file play a hostile server (the test writes the
// export on disk between runs, so Ganesha lists what an attacker would)
// against nfscp run as root.

// outsideDir makes a directory that a copy must never touch, holding one
// file, and returns a function that fails t if either changed.
func outsideDir(t *testing.T, dir string) (unchanged func()) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	sum := writeRandom(t, victim, 1000, 7)
	old := time.Date(2005, 6, 7, 8, 9, 10, 0, time.UTC)
	for _, p := range []string{victim, dir} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		if got := sha256File(t, victim); got != sum {
			t.Errorf("%s was overwritten", victim)
		}
		if names := listDir(t, dir); len(names) != 1 {
			t.Errorf("%s holds %q, want only victim", dir, names)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != os.ModeDir|0o700 || !fi.ModTime().Equal(old) {
			t.Errorf("%s: mode %v, mtime %v; want drwx------ and %v", dir, fi.Mode(), fi.ModTime(), old)
		}
	}
}

// linkThenDir makes first/link a symbolic link to target, runs copy of
// first, then makes second/link a directory holding "victim" and "new", as
// a server would that wants the next copy (of second, which has the same
// base name) written through the link the first one left. (Ganesha keeps
// the handles of a directory it has listed: a name that changes type
// under it reads as stale, so the second tree is a new directory.)
func linkThenDir(t *testing.T, first, second, target string, copy func(src string) result) {
	t.Helper()
	if err := os.MkdirAll(first, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(first, "link")); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, copy(first))
	link := filepath.Join(second, "link")
	if err := os.MkdirAll(link, 0o777); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(link, "victim"), 100, 8)
	writeRandom(t, filepath.Join(link, "new"), 100, 9)
}

// TestTreeDoesNotFollowLinksInDestination copies a tree from the server
// twice into one local directory. The first time the server lists "link"
// as a symbolic link out of the destination, the second as a directory
// holding files: the second copy must not write through the link it left,
// whether the link is absolute or climbs out with "..".
func TestTreeDoesNotFollowLinksInDestination(t *testing.T) {
	testutil.CheckLeaks(t)
	needServer(t)
	for _, c := range []struct {
		name   string
		target func(outside string) string
	}{
		{"absolute", func(outside string) string { return outside }},
		{"dotdot", func(string) string { return "../../outside" }}, // from backup/dir
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newArea(t, srvA)
			local := t.TempDir()
			backup := filepath.Join(local, "backup")
			if err := os.Mkdir(backup, 0o755); err != nil {
				t.Fatal(err)
			}
			unchanged := outsideDir(t, filepath.Join(local, "outside"))
			target := c.target(filepath.Join(local, "outside"))
			linkThenDir(t, filepath.Join(a.disk, "1/dir"), filepath.Join(a.disk, "2/dir"), target, func(string) result {
				return nfscp(t, "-r", a.url+"/1/dir", backup+"/")
			})
			if got, err := os.Readlink(filepath.Join(backup, "dir/link")); err != nil || got != target {
				t.Fatalf("first copy: link %q, %v", got, err)
			}
			r := nfscp(t, "-r", a.url+"/2/dir", backup+"/")
			unchanged()
			mustFail(t, r, 1, "nfscp: "+backup+"/dir/link: is a symbolic link (nfscp does not follow links inside the destination)")
			noLeftovers(t, local)
		})
	}
}

// TestTreeDoesNotFollowLinksOnServer is the same for a tree copied to an
// NFS destination: package nfs4 resolves symbolic links in paths, and a
// link on the destination server must not lead the copy elsewhere in the
// server's namespace.
func TestTreeDoesNotFollowLinksOnServer(t *testing.T) {
	testutil.CheckLeaks(t)
	needServer(t)
	a := newArea(t, srvA)
	local := t.TempDir()
	unchanged := outsideDir(t, filepath.Join(a.disk, "outside"))
	// As the server resolves it: an absolute path in its namespace.
	target := srvA.Pseudo() + "/" + filepath.Base(a.disk) + "/outside"
	if err := os.Mkdir(filepath.Join(a.disk, "backup"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(src string) result { return nfscp(t, "-r", src, a.url+"/backup/") }
	linkThenDir(t, filepath.Join(local, "1/dir"), filepath.Join(local, "2/dir"), target, run)
	r := run(filepath.Join(local, "2/dir"))
	unchanged()
	mustFail(t, r, 1, "nfscp: "+a.url+"/backup/dir/link: is a symbolic link (nfscp does not follow links inside the destination)")
	noLeftovers(t, a.disk)
}

// TestUserGivenLinksAreFollowed checks the other side of the rule: links
// in the destination the user named are the user's choice and followed,
// for a single file and for a tree.
func TestUserGivenLinksAreFollowed(t *testing.T) {
	testutil.CheckLeaks(t)
	needServer(t)
	a := newArea(t, srvA)
	sum := writeRandom(t, filepath.Join(a.disk, "f"), 3000, 10)
	if err := os.MkdirAll(filepath.Join(a.disk, "dir/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(a.disk, "dir/sub/g"), 100, 11)
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
		if got := sha256File(t, filepath.Join(real, p)); got != sum {
			t.Errorf("%s: sha256 %s, want %s", p, got, sum)
		}
	}
	if _, err := os.Stat(filepath.Join(real, "dir/sub/g")); err != nil {
		t.Errorf("the tree did not arrive through the link: %v", err)
	}
	if fi, err := os.Lstat(via); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is no longer a link: %v, %v", via, fi, err)
	}
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
	unchanged := outsideDir(t, filepath.Join(local, "outside"))
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
