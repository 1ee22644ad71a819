package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
)

// makeFiles creates n files named prefix0 … prefix(n-1) in dir, behind
// the server's back. File i*step holds i bytes, so that a few entries
// have distinct sizes. It returns the names.
func makeFiles(t *testing.T, dir, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range n {
		names[i] = prefix + strconv.Itoa(i)
		var data []byte
		if i%1000 == 0 {
			data = make([]byte, i/1000)
		}
		if err := os.WriteFile(filepath.Join(dir, names[i]), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

func entryNames(ents []fs.DirEntry) []string {
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names
}

func TestReadDirLargeDirectoryPages(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	local := filepath.Join(srv.ExportDir(), "big")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	want := makeFiles(t, local, "e", n)
	slices.Sort(want) // "e0", "e1", "e10", …: not the creation order

	before := c.Stats().RPC.Calls
	ents, err := c.ReadDir(ctx, srv.Pseudo()+"/big")
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	calls := c.Stats().RPC.Calls - before
	if got := entryNames(ents); !slices.Equal(got, want) {
		t.Fatalf("ReadDir returned %d entries, want %d sorted by name; first %q", len(got), n, got[:min(5, len(got))])
	}
	// 10,000 entries with their attributes do not fit in one 128 KiB
	// reply: the listing must have gone on from cookies.
	if calls < 4 {
		t.Errorf("listing took %d calls; want a walk and several READDIRs", calls)
	}
	t.Logf("10,000 entries in %d calls", calls)

	// Info comes with the entry: no round trip, and it matches the file.
	before = c.Stats().RPC.Calls
	for _, name := range []string{"e0", "e1000", "e5000", "e9999"} {
		i, _ := slices.BinarySearch(want, name)
		fi, err := ents[i].Info()
		if err != nil {
			t.Fatalf("Info of %s: %v", name, err)
		}
		lfi, err := os.Stat(filepath.Join(local, name))
		if err != nil {
			t.Fatal(err)
		}
		attr := fi.Sys().(*Attr)
		if fi.Name() != name || fi.Size() != lfi.Size() || fi.Mode() != lfi.Mode() ||
			!fi.ModTime().Equal(lfi.ModTime()) || attr.FileID != lfi.Sys().(*syscall.Stat_t).Ino ||
			ents[i].Type() != 0 || ents[i].IsDir() {
			t.Errorf("entry %s: %v size %d mode %v mtime %v ino %d; local %v size %d mode %v mtime %v",
				name, ents[i], fi.Size(), fi.Mode(), fi.ModTime(), attr.FileID,
				lfi.Name(), lfi.Size(), lfi.Mode(), lfi.ModTime())
		}
	}
	if d := c.Stats().RPC.Calls - before; d != 0 {
		t.Errorf("Info made %d calls; want none", d)
	}

	// The same directory through File.ReadDir, in slices of 300.
	fh, _, err := c.lookup(ctx, srv.Pseudo()+"/big", true)
	if err != nil {
		t.Fatal(err)
	}
	f := newFile(c, srv.Pseudo()+"/big", fh, true)
	var got []string
	for range n/300 + 2 {
		ents, err := f.ReadDir(300)
		if err == io.EOF {
			if len(ents) != 0 {
				t.Fatalf("ReadDir(300) returned %d entries with io.EOF", len(ents))
			}
			break
		}
		if err != nil || len(ents) == 0 || len(ents) > 300 {
			t.Fatalf("ReadDir(300) after %d entries: %d entries, %v", len(got), len(ents), err)
		}
		got = append(got, entryNames(ents)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("File.ReadDir(300) returned %d entries, want each of %d once", len(got), n)
	}
	if ents, err := f.ReadDir(1); err != io.EOF || len(ents) != 0 {
		t.Errorf("ReadDir(1) at the end: %d entries, %v; want io.EOF", len(ents), err)
	}
	if ents, err := f.ReadDir(-1); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir(-1) at the end: %d entries, %v; want none and nil", len(ents), err)
	}
}

func TestFileReadDirSemantics(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	local := filepath.Join(srv.ExportDir(), "d")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	want := makeFiles(t, local, "f", 50)
	if err := os.Mkdir(filepath.Join(local, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f1", filepath.Join(local, "link")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sub", "link")
	slices.Sort(want)

	open := func(name string) *File {
		t.Helper()
		fh, attr, err := c.lookup(ctx, name, true)
		if err != nil {
			t.Fatal(err)
		}
		return newFile(c, name, fh, attr.Type == TypeDirectory)
	}
	f := open(srv.Pseudo() + "/d")
	first, err := f.ReadDir(7)
	if err != nil || len(first) != 7 {
		t.Fatalf("ReadDir(7): %d entries, %v", len(first), err)
	}
	rest, err := f.ReadDir(0)
	if err != nil {
		t.Fatalf("ReadDir(0) after ReadDir(7): %v", err)
	}
	got := append(entryNames(first), entryNames(rest)...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("ReadDir(7) then ReadDir(0) returned %q, want %q", got, want)
	}
	for _, e := range append(first, rest...) {
		var wantType fs.FileMode
		switch e.Name() {
		case "sub":
			wantType = fs.ModeDir
		case "link":
			wantType = fs.ModeSymlink
		}
		if e.Type() != wantType || e.IsDir() != (wantType == fs.ModeDir) {
			t.Errorf("entry %s: type %v, want %v", e.Name(), e.Type(), wantType)
		}
		if e.Name() == "sub" {
			if fi, _ := e.Info(); fi.Mode() != fs.ModeDir|0o700 {
				t.Errorf("sub: mode %v, want drwx------", fi.Mode())
			}
		}
	}
	if ents, err := f.ReadDir(5); err != io.EOF || len(ents) != 0 {
		t.Errorf("ReadDir(5) at the end: %d entries, %v; want io.EOF", len(ents), err)
	}

	// A regular file is not a directory.
	nf := open(srv.Pseudo() + "/d/f1")
	_, err = nf.ReadDir(-1)
	var pe *fs.PathError
	if !errors.Is(err, syscall.ENOTDIR) || !errors.As(err, &pe) || pe.Op != "readdir" || pe.Path != srv.Pseudo()+"/d/f1" {
		t.Errorf("File.ReadDir of a file: %v; want *fs.PathError readdir ENOTDIR", err)
	}
	// Nor through Client.ReadDir, which follows the link to the file.
	_, err = c.ReadDir(ctx, srv.Pseudo()+"/d/link")
	if !errors.Is(err, syscall.ENOTDIR) || !errors.As(err, &pe) || pe.Op != "readdir" {
		t.Errorf("ReadDir of a link to a file: %v; want ENOTDIR", err)
	}
	// A closed File reports fs.ErrClosed.
	f.closed = true
	if _, err := f.ReadDir(-1); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadDir of a closed File: %v; want fs.ErrClosed", err)
	}
	_, err = c.ReadDir(ctx, srv.Pseudo()+"/missing")
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" {
		t.Errorf("ReadDir of a missing directory: %v; want *fs.PathError open ENOENT", err)
	}
	// An empty directory, through a symlink.
	if err := os.Mkdir(filepath.Join(local, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("empty", filepath.Join(local, "elink")); err != nil {
		t.Fatal(err)
	}
	if ents, err := c.ReadDir(ctx, srv.Pseudo()+"/d/elink"); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir of an empty directory through a link: %v, %v", ents, err)
	}
}

func TestReadDirPermissionDenied(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, _ := dialGanesha(t, ganesha.Config{}, Config{})
	local := srv.ExportDir()
	if err := os.Mkdir(filepath.Join(local, "secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(local, "secret", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(local, "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	auth, err := rpc.NewAuthSys(rpc.SysCred{Machine: "gonfs-test", UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	user, err := Dial(ctx, srv.Addr(), Config{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	p := srv.Pseudo()

	checkDenied := func(what string, err error) {
		t.Helper()
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, syscall.EACCES) || !errors.As(err, &pe) {
			t.Errorf("%s as uid 1000: %v; want a *fs.PathError matching fs.ErrPermission and EACCES", what, err)
		}
	}
	_, err = user.ReadDir(ctx, p+"/secret")
	checkDenied("ReadDir of a root-owned 0700 directory", err)
	checkDenied("Mkdir in it", user.Mkdir(ctx, p+"/secret/x", 0o755))
	checkDenied("Mkdir in a root-owned 0755 directory", user.Mkdir(ctx, p+"/public/x", 0o755))
	checkDenied("Remove from it", user.Remove(ctx, p+"/secret/f"))
	// Only the owner may change the mode: EPERM, as chmod(2) says.
	if err := user.Chmod(ctx, p+"/public", 0o777); !errors.Is(err, fs.ErrPermission) || !errors.Is(err, syscall.EPERM) {
		t.Errorf("Chmod of a root-owned directory as uid 1000: %v; want EPERM", err)
	}
	if _, err := os.Stat(filepath.Join(local, "public", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the denied Mkdir made the directory: %v", err)
	}
	// Listing what is permitted still works as that user.
	if ents, err := user.ReadDir(ctx, p); err != nil || !slices.Equal(entryNames(ents), []string{"public", "secret"}) {
		t.Errorf("ReadDir of the export as uid 1000: %v, %v", ents, err)
	}
}

// TestNewDirEntry covers what Ganesha will not send on demand: entries
// without attributes, "." and "..", and names that are not path elements.
func TestNewDirEntry(t *testing.T) {
	testutil.CheckLeaks(t)
	ent := func(name string, typ FileType, st Status) *dirEntry {
		return &dirEntry{name: []byte(name), attr: Attr{Type: typ, RdattrError: st, Mode: 0o640}}
	}
	for _, name := range []string{".", ".."} {
		if e, err := newDirEntry("/d", ent(name, TypeDirectory, OK)); e != nil || err != nil {
			t.Errorf("%q: %v, %v; want it left out", name, e, err)
		}
	}
	for _, st := range []Status{ErrNoEnt, ErrStale} {
		if e, err := newDirEntry("/d", ent("gone", TypeRegular, st)); e != nil || err != nil {
			t.Errorf("entry with rdattr_error %v: %v, %v; want it left out", st, e, err)
		}
	}
	for _, name := range []string{"a/b", "../../etc", "x\x00y"} {
		if _, err := newDirEntry("/d", ent(name, TypeRegular, OK)); !errors.Is(err, errBadReply) {
			t.Errorf("%q: %v; want a malformed-reply error", name, err)
		}
	}
	e, err := newDirEntry("/d", ent("locked", TypeDirectory, ErrAccess))
	if err != nil || e == nil {
		t.Fatalf("entry with rdattr_error NFS4ERR_ACCESS: %v, %v; want it kept", e, err)
	}
	_, ierr := e.Info()
	var pe *fs.PathError
	if e.Name() != "locked" || !e.IsDir() || e.Type() != fs.ModeDir || !errors.Is(ierr, fs.ErrPermission) ||
		!errors.As(ierr, &pe) || pe.Path != "/d/locked" {
		t.Errorf("entry with rdattr_error: %v (dir %v, type %v), Info error %v", e, e.IsDir(), e.Type(), ierr)
	}
	if s := e.(interface{ String() string }).String(); !strings.Contains(s, "locked") {
		t.Errorf("String() = %q", s)
	}
	e, err = newDirEntry("/d", ent("ok", TypeRegular, OK))
	if fi, ierr := e.Info(); err != nil || ierr != nil || fi.Mode() != 0o640 || fi.Name() != "ok" {
		t.Errorf("plain entry: %v, %v, %v", fi, err, ierr)
	}
}
