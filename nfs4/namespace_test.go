package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// localTree lists every path under root, relative to it, with a suffix
// telling its type: "/" for a directory, "@" for a symlink.
func localTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&fs.ModeSymlink != 0:
			rel += "@"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clientTree is localTree through the client's ReadDir.
func clientTree(t *testing.T, c *Client, root string) []string {
	t.Helper()
	var out []string
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		ents, err := c.ReadDir(context.Background(), dir)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", dir, err)
		}
		for _, e := range ents {
			name := rel + e.Name()
			switch {
			case e.IsDir():
				out = append(out, name+"/")
				walk(dir+"/"+e.Name(), name+"/")
			case e.Type()&fs.ModeSymlink != 0:
				out = append(out, name+"@")
			default:
				out = append(out, name)
			}
		}
	}
	walk(root, "")
	return out
}

// checkTree checks the tree under the test directory's rel through the
// client and on the server's side.
func checkTree(t *testing.T, s testServer, c *Client, rel string, want []string) {
	t.Helper()
	if got := clientTree(t, c, s.dir+"/"+rel); !slices.Equal(got, want) {
		t.Errorf("tree through the client:\n got %q\nwant %q", got, want)
	}
	if got := s.side.tree(t, rel); !slices.Equal(got, want) {
		t.Errorf("tree on the server:\n got %q\nwant %q", got, want)
	}
}

func TestTreeCreateListRenameRemove(t *testing.T) {
	forEachServer(t, Config{}, testTree)
}

func testTree(t *testing.T, s testServer, c *Client) {
	ctx := context.Background()
	p := s.dir + "/t"

	for _, d := range []string{"", "/a", "/a/b", "/a/b/c", "/z"} {
		if err := c.Mkdir(ctx, p+d, 0o755); err != nil {
			t.Fatalf("Mkdir: %v", err)
		}
	}
	for _, f := range []string{"a/f1", "a/b/f2", "z/f3"} {
		s.side.writeFile(t, "t/"+f, []byte(f))
	}
	if err := c.Symlink(ctx, "b/c", p+"/a/l"); err != nil {
		t.Fatalf("Symlink: %v", err)
	}
	checkTree(t, s, c, "t", []string{"a/", "a/b/", "a/b/c/", "a/b/f2", "a/f1", "a/l@", "z/", "z/f3"})

	// Renames within a directory, across directories, of a directory, and
	// over an existing file.
	for _, r := range [][2]string{
		{"/a/b", "/a/b2"},
		{"/a/f1", "/a/b2/c/f1"},
		{"/a/b2", "/z/b3"},
		{"/z/f3", "/z/b3/f2"},
	} {
		if err := c.Rename(ctx, p+r[0], p+r[1]); err != nil {
			t.Fatalf("Rename: %v", err)
		}
	}
	checkTree(t, s, c, "t", []string{"a/", "a/l@", "z/", "z/b3/", "z/b3/c/", "z/b3/c/f1", "z/b3/f2"})
	if b := s.side.readFile(t, "t/z/b3/f2"); string(b) != "z/f3" {
		t.Errorf("the file renamed over another holds %q; want the renamed file's data", b)
	}
	// The link's target moved away: the link dangles but is still listed.
	if _, err := c.Stat(ctx, p+"/a/l"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a dangling link: %v; want ErrNotExist", err)
	}

	for _, r := range []string{"/a/l", "/z/b3/c/f1", "/z/b3/c", "/z/b3/f2", "/z/b3", "/z", "/a"} {
		if err := c.Remove(ctx, p+r); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	checkTree(t, s, c, "t", nil)
}

func TestNamespaceErrors(t *testing.T) {
	forEachServer(t, Config{}, testNamespaceErrors)
}

func testNamespaceErrors(t *testing.T, s testServer, c *Client) {
	ctx := context.Background()
	p := s.dir
	s.side.mkdirAll(t, "d/sub")
	s.side.writeFile(t, "file", []byte("x"))

	// checkPath checks a *fs.PathError with op and path, matching both
	// the io/fs sentinel (if any) and the errno.
	checkPath := func(what string, err error, op, path string, sentinel error, errno syscall.Errno) {
		t.Helper()
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Op != op || pe.Path != path {
			t.Errorf("%s: %#v; want *fs.PathError{Op: %q, Path: %q}", what, err, op, path)
			return
		}
		if (sentinel != nil && !errors.Is(err, sentinel)) || !errors.Is(err, errno) {
			t.Errorf("%s: %v; want %v (%v)", what, err, errno, sentinel)
		}
	}
	checkLink := func(what string, err error, op, old, new string, sentinel error, errno syscall.Errno) {
		t.Helper()
		var le *os.LinkError
		if !errors.As(err, &le) || le.Op != op || le.Old != old || le.New != new {
			t.Errorf("%s: %#v; want *os.LinkError{Op: %q, Old: %q, New: %q}", what, err, op, old, new)
			return
		}
		if (sentinel != nil && !errors.Is(err, sentinel)) || !errors.Is(err, errno) {
			t.Errorf("%s: %v; want %v (%v)", what, err, errno, sentinel)
		}
	}

	_, err := c.Stat(ctx, p+"/missing")
	checkPath("Stat of a missing file", err, "stat", p+"/missing", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Remove of a missing file", c.Remove(ctx, p+"/missing"), "remove", p+"/missing", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Remove in a missing directory", c.Remove(ctx, p+"/missing/x"), "remove", p+"/missing/x", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Mkdir of an existing directory", c.Mkdir(ctx, p+"/d", 0o755), "mkdir", p+"/d", fs.ErrExist, syscall.EEXIST)
	checkPath("Mkdir of an existing file", c.Mkdir(ctx, p+"/file", 0o755), "mkdir", p+"/file", fs.ErrExist, syscall.EEXIST)
	checkPath("Mkdir under a file", c.Mkdir(ctx, p+"/file/x", 0o755), "mkdir", p+"/file/x", nil, syscall.ENOTDIR)
	checkPath("Mkdir in a missing directory", c.Mkdir(ctx, p+"/missing/x", 0o755), "mkdir", p+"/missing/x", fs.ErrNotExist, syscall.ENOENT)
	_, err = c.ReadDir(ctx, p+"/file")
	checkPath("ReadDir of a file", err, "readdir", p+"/file", nil, syscall.ENOTDIR)
	checkPath("Remove of a directory that is not empty", c.Remove(ctx, p+"/d"), "remove", p+"/d", nil, syscall.ENOTEMPTY)
	_, err = c.Readlink(ctx, p+"/file")
	checkPath("Readlink of a file", err, "readlink", p+"/file", fs.ErrInvalid, syscall.EINVAL)
	checkPath("Chmod of a missing file", c.Chmod(ctx, p+"/missing", 0o644), "chmod", p+"/missing", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Chown of a missing file, changing nothing", c.Chown(ctx, p+"/missing", -1, -1), "chown", p+"/missing", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Chown to a negative uid", c.Chown(ctx, p+"/file", -2, -1), "chown", p+"/file", fs.ErrInvalid, syscall.EINVAL)
	checkPath("Chtimes of a missing file, changing nothing", c.Chtimes(ctx, p+"/missing", time.Time{}, time.Time{}), "chtimes", p+"/missing", fs.ErrNotExist, syscall.ENOENT)
	checkPath("Truncate of a directory", c.Truncate(ctx, p+"/d", 0), "truncate", p+"/d", nil, syscall.EISDIR)
	checkPath("Truncate to a negative size", c.Truncate(ctx, p+"/file", -1), "truncate", p+"/file", fs.ErrInvalid, syscall.EINVAL)
	checkPath("Mkdir with a name too long", c.Mkdir(ctx, p+"/"+strings.Repeat("n", 256), 0o755), "mkdir", p+"/"+strings.Repeat("n", 256), nil, syscall.ENAMETOOLONG)

	checkLink("Rename of a missing file", c.Rename(ctx, p+"/missing", p+"/new"), "rename", p+"/missing", p+"/new", fs.ErrNotExist, syscall.ENOENT)
	s.side.mkdirAll(t, "e")
	checkLink("Rename of a directory over a non-empty one", c.Rename(ctx, p+"/e", p+"/d"), "rename", p+"/e", p+"/d", fs.ErrExist, syscall.ENOTEMPTY)
	checkLink("Rename of a file over a directory", c.Rename(ctx, p+"/file", p+"/e"), "rename", p+"/file", p+"/e", nil, syscall.EISDIR)
	checkLink("Link to an existing name", c.Link(ctx, p+"/file", p+"/d"), "link", p+"/file", p+"/d", fs.ErrExist, syscall.EEXIST)
	checkLink("Link of a missing file", c.Link(ctx, p+"/missing", p+"/l"), "link", p+"/missing", p+"/l", fs.ErrNotExist, syscall.ENOENT)
	checkLink("Symlink over an existing name", c.Symlink(ctx, "x", p+"/file"), "symlink", "x", p+"/file", fs.ErrExist, syscall.EEXIST)
	checkLink("Symlink under a file", c.Symlink(ctx, "x", p+"/file/l"), "symlink", "x", p+"/file/l", nil, syscall.ENOTDIR)

	// Nothing above changed the tree.
	if got := s.side.tree(t, ""); !slices.Equal(got, []string{"d/", "d/sub/", "e/", "file"}) {
		t.Errorf("failed operations changed the tree: %q", got)
	}
}

func TestMkdirAllRemoveAllDeepTree(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	p := srv.Pseudo()
	local := srv.ExportDir()

	var comps []string
	for i := range 100 {
		comps = append(comps, fmt.Sprintf("d%d", i))
	}
	deep := p + "/" + strings.Join(comps, "/")
	before := c.Stats().RPC.Calls
	if err := c.MkdirAll(ctx, deep, 0o750); err != nil {
		t.Fatalf("MkdirAll of 100 levels: %v", err)
	}
	calls := c.Stats().RPC.Calls - before
	fi, err := os.Stat(filepath.Join(local, filepath.Join(comps...)))
	if err != nil || fi.Mode() != fs.ModeDir|0o750 {
		t.Fatalf("the deepest directory on disk: %v, %v", fi, err)
	}
	// One CREATE per COMPOUND would take 100 calls for the CREATEs alone.
	if calls >= 100 {
		t.Errorf("MkdirAll of 100 new levels took %d calls", calls)
	}
	t.Logf("MkdirAll of 100 new levels: %d calls", calls)

	if err := c.MkdirAll(ctx, deep, 0o750); err != nil {
		t.Errorf("MkdirAll of an existing tree: %v", err)
	}
	// Half exists: only the other half is made, through a symlink.
	if err := os.Symlink(filepath.Join(comps[:50]...), filepath.Join(local, "half")); err != nil {
		t.Fatal(err)
	}
	more := p + "/half/" + strings.Join(comps[50:], "/") + "/x/y/z"
	if err := c.MkdirAll(ctx, more, 0o700); err != nil {
		t.Fatalf("MkdirAll below a symlink: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(local, filepath.Join(comps...), "x/y/z")); err != nil || fi.Mode() != fs.ModeDir|0o700 {
		t.Fatalf("MkdirAll below a symlink made %v, %v", fi, err)
	}

	// A file in the way is ENOTDIR, named by its own path.
	mid := filepath.Join(append([]string{local}, comps[:10]...)...)
	if err := os.WriteFile(filepath.Join(mid, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	midP := p + "/" + strings.Join(comps[:10], "/")
	for _, name := range []string{midP + "/file", midP + "/file/a/b/c"} {
		err := c.MkdirAll(ctx, name, 0o755)
		var pe *fs.PathError
		if !errors.Is(err, syscall.ENOTDIR) || !errors.As(err, &pe) || pe.Op != "mkdir" {
			t.Errorf("MkdirAll(%s) with a file in the way: %v; want ENOTDIR", name, err)
		}
	}

	// Some files at many levels, and a wide directory of more entries
	// than one COMPOUND of REMOVEs holds.
	for i := 0; i < 100; i += 7 {
		dir := filepath.Join(append([]string{local}, comps[:i+1]...)...)
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/nowhere", filepath.Join(dir, "dangling")); err != nil {
			t.Fatal(err)
		}
	}
	makeFiles(t, filepath.Join(local, "d0"), "w", 300)
	// A symlink into the tree from outside: RemoveAll of the link must
	// leave the tree alone.
	if err := c.RemoveAll(ctx, p+"/half"); err != nil {
		t.Fatalf("RemoveAll of a symlink to a directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(local, "half")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the link survived RemoveAll: %v", err)
	}
	if _, err := os.Stat(filepath.Join(local, filepath.Join(comps[:50]...))); err != nil {
		t.Fatalf("RemoveAll of a link removed its target: %v", err)
	}

	var pe *fs.PathError
	if err := c.RemoveAll(ctx, p+"/d0/."); !errors.Is(err, syscall.EINVAL) || !errors.As(err, &pe) {
		t.Errorf("RemoveAll of a path ending in \".\": %v; want EINVAL", err)
	}
	if err := c.RemoveAll(ctx, midP+"/file/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("RemoveAll below a file: %v; want ENOTDIR as os.RemoveAll", err)
	}
	if err := c.RemoveAll(ctx, p+"/d0"); err != nil {
		t.Fatalf("RemoveAll of the tree: %v", err)
	}
	if got := localTree(t, local); len(got) != 0 {
		t.Errorf("RemoveAll left %d paths, first %q", len(got), got[:min(3, len(got))])
	}
	if err := c.RemoveAll(ctx, p+"/d0"); err != nil {
		t.Errorf("RemoveAll of a missing path: %v; want nil", err)
	}
	if err := c.RemoveAll(ctx, p+"/missing/a/b"); err != nil {
		t.Errorf("RemoveAll below a missing directory: %v; want nil", err)
	}
	if err := os.WriteFile(filepath.Join(local, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveAll(ctx, p+"/plain"); err != nil {
		t.Errorf("RemoveAll of a file: %v", err)
	}
}

func TestRemoveAllRefusesTooDeepTree(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	local := srv.ExportDir()
	dir := filepath.Join(local, "deep")
	for range maxRemoveDepth + 5 {
		dir = filepath.Join(dir, "d")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := c.RemoveAll(context.Background(), srv.Pseudo()+"/deep")
	var pe *fs.PathError
	if err == nil || !errors.As(err, &pe) || strings.Count(strings.TrimPrefix(pe.Path, srv.Pseudo()+"/deep"), "/d") != maxRemoveDepth {
		t.Fatalf("RemoveAll of a tree %d deep: %v; want an error naming the directory %d deep", maxRemoveDepth+6, err, maxRemoveDepth)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the refused RemoveAll removed the deepest directory: %v", err)
	}
}

func TestSymlinkReadlinkLink(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	p := srv.Pseudo()
	local := srv.ExportDir()
	if err := os.WriteFile(filepath.Join(local, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, target := range []string{"f", "../export/f", "/export/f", "dangling/target", strings.Repeat("x/", 1000) + "y"} {
		if err := c.Symlink(ctx, target, p+"/s"); err != nil {
			t.Fatalf("Symlink to %.20q: %v", target, err)
		}
		got, err := c.Readlink(ctx, p+"/s")
		if err != nil || got != target {
			t.Errorf("Readlink: %.20q, %v; want %.20q", got, err, target)
		}
		if got, err := os.Readlink(filepath.Join(local, "s")); err != nil || got != target {
			t.Errorf("os.Readlink: %.20q, %v; want %.20q", got, err, target)
		}
		fi, err := c.Lstat(ctx, p+"/s")
		if err != nil || fi.Mode().Type() != fs.ModeSymlink {
			t.Errorf("Lstat of the link: %v, %v", fi, err)
		}
		if err := c.Remove(ctx, p+"/s"); err != nil {
			t.Fatalf("Remove of the link: %v", err)
		}
	}
	// Readlink reads the last link only, through links before it.
	if err := c.Symlink(ctx, ".", p+"/self"); err != nil {
		t.Fatal(err)
	}
	if err := c.Symlink(ctx, "f", p+"/s"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Readlink(ctx, p+"/self/self/s"); err != nil || got != "f" {
		t.Errorf("Readlink through links: %q, %v", got, err)
	}

	if err := c.Link(ctx, p+"/f", p+"/hard"); err != nil {
		t.Fatalf("Link: %v", err)
	}
	fi, err := c.Stat(ctx, p+"/f")
	if err != nil || fi.Sys().(*Attr).NumLinks != 2 {
		t.Fatalf("Stat after Link: %v, %v; want 2 links", fi, err)
	}
	a, errA := os.Stat(filepath.Join(local, "f"))
	b, errB := os.Stat(filepath.Join(local, "hard"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("the hard link is not the same file on disk: %v, %v", errA, errB)
	}
	// Link of a symlink links the symlink itself, as os.Link does.
	if err := c.Link(ctx, p+"/s", p+"/s2"); err != nil {
		t.Fatalf("Link of a symlink: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(local, "s2")); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Link of a symlink made %v, %v; want a symlink", fi, err)
	}
	if err := c.Remove(ctx, p+"/f"); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat(ctx, p+"/hard"); err != nil || fi.Sys().(*Attr).NumLinks != 1 || fi.Size() != 5 {
		t.Errorf("Stat of the remaining link: %v, %v", fi, err)
	}
}

// TestConcurrentNamespaceOperations runs 64 goroutines, each making,
// renaming, listing and removing names in its own directory, on one
// Client.
// Mkdir through symbolic links, by a Client whose cache holds nothing of
// the path (its one-COMPOUND walk meets the link and hands over to the
// path resolution, which follows it): the link as the parent, and in the
// middle of the path.
func TestMkdirThroughSymlinks(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		p := s.dir + "/ml"
		if err := c.Mkdir(ctx, p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.Mkdir(ctx, p+"/real", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.Symlink(ctx, "real", p+"/l"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"/l/x", "/l/x/y"} {
			fresh := s.dial(t, s.addr, Config{})
			if err := fresh.Mkdir(ctx, p+name, 0o755); err != nil {
				t.Errorf("Mkdir %s: %v", name, err)
			}
		}
		if got, want := s.side.tree(t, "ml"), []string{"l@", "real/", "real/x/", "real/x/y/"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("tree %v; want %v", got, want)
		}
	})
}

func TestConcurrentNamespaceOperations(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p := s.dir + "/c"
		if err := c.Mkdir(ctx, p, 0o755); err != nil {
			t.Fatal(err)
		}
		const workers, rounds = 64, 6
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := namespaceWorker(ctx, c, fmt.Sprintf("%s/g%02d", p, g), rounds); err != nil {
					t.Errorf("worker %d: %v", g, err)
					cancel()
				}
			}()
		}
		wg.Wait()
		var want []string
		for g := range workers {
			want = append(want, fmt.Sprintf("g%02d/", g))
			for i := 0; i < rounds; i += 2 {
				want = append(want, fmt.Sprintf("g%02d/r%d/", g, i), fmt.Sprintf("g%02d/r%d/sub/", g, i))
			}
		}
		slices.Sort(want)
		checkTree(t, s, c, "c", want)
	})
}

// namespaceWorker makes dir and, in each round i, a directory with a
// subdirectory and a symlink to it, renames the directory, checks it
// through Stat and ReadDir, and removes the link, and every odd round's
// directory. It leaves r0/sub, r2/sub, ….
func namespaceWorker(ctx context.Context, c *Client, dir string, rounds int) error {
	if err := c.Mkdir(ctx, dir, 0o755); err != nil {
		return err
	}
	for i := range rounds {
		d, r, l := fmt.Sprintf("%s/d%d", dir, i), fmt.Sprintf("%s/r%d", dir, i), fmt.Sprintf("%s/l%d", dir, i)
		if err := c.MkdirAll(ctx, d+"/sub", 0o755); err != nil {
			return err
		}
		if err := c.Symlink(ctx, fmt.Sprintf("r%d", i), l); err != nil {
			return err
		}
		if err := c.Rename(ctx, d, r); err != nil {
			return err
		}
		if fi, err := c.Stat(ctx, l+"/sub"); err != nil || !fi.IsDir() {
			return fmt.Errorf("Stat through the link: %v, %v", fi, err)
		}
		ents, err := c.ReadDir(ctx, dir)
		if err != nil {
			return err
		}
		want := []string{fmt.Sprintf("l%d", i), fmt.Sprintf("r%d", i)}
		for j := 0; j < i; j += 2 {
			want = append(want, fmt.Sprintf("r%d", j))
		}
		slices.Sort(want)
		if got := entryNames(ents); !slices.Equal(got, want) {
			return fmt.Errorf("round %d: ReadDir %q, want %q", i, got, want)
		}
		if err := c.Remove(ctx, l); err != nil {
			return err
		}
		if i%2 == 1 {
			if err := c.RemoveAll(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}
