package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// readLocal returns the content of a file in the export, read behind the
// server's back.
func readLocal(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeLocal creates a file in the export behind the server's back.
func writeLocal(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustClose closes f and fails the test on error.
func mustClose(t testing.TB, f *File) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("Close %s: %v", f.Name(), err)
	}
}

// isPathError reports whether err is an *fs.PathError for op on name
// matching target.
func isPathError(err error, op, name string, target error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == op && pe.Path == name && errors.Is(err, target)
}

func TestOpenFlags(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	dir, p := srv.ExportDir(), srv.Pseudo()

	t.Run("missing", func(t *testing.T) {
		_, err := c.Open(ctx, p+"/missing")
		if !isPathError(err, "open", p+"/missing", fs.ErrNotExist) {
			t.Fatalf("Open of a missing file: %v", err)
		}
		_, err = c.OpenFile(ctx, p+"/nodir/f", os.O_RDWR|os.O_CREATE, 0o644)
		if !isPathError(err, "open", p+"/nodir/f", fs.ErrNotExist) {
			t.Fatalf("create in a missing directory: %v", err)
		}
	})

	t.Run("create", func(t *testing.T) {
		f, err := c.Create(ctx, p+"/created")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		mustClose(t, f)
		if got := readLocal(t, dir+"/created"); got != "hello" {
			t.Fatalf("content %q", got)
		}
		if fi, err := os.Stat(dir + "/created"); err != nil || fi.Mode().Perm() != 0o666 {
			t.Fatalf("mode after Create: %v, %v", fi.Mode(), err)
		}
		// Create of an existing file truncates it and keeps its mode.
		os.Chmod(dir+"/created", 0o600)
		f, err = c.Create(ctx, p+"/created")
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, f)
		if fi, err := os.Stat(dir + "/created"); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("after Create of an existing file: %v, %v", fi, err)
		}
	})

	t.Run("exclusive", func(t *testing.T) {
		f, err := c.OpenFile(ctx, p+"/excl", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, f)
		if fi, err := os.Stat(dir + "/excl"); err != nil || fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode after an exclusive create: %v, %v", fi.Mode(), err)
		}
		_, err = c.OpenFile(ctx, p+"/excl", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if !isPathError(err, "open", p+"/excl", fs.ErrExist) {
			t.Fatalf("exclusive create of an existing file: %v", err)
		}
	})

	t.Run("truncate", func(t *testing.T) {
		writeLocal(t, dir+"/trunc", "some data")
		f, err := c.OpenFile(ctx, p+"/trunc", os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, f)
		if got := readLocal(t, dir+"/trunc"); got != "" {
			t.Fatalf("O_TRUNC left %q", got)
		}
		// Without O_TRUNC nothing is lost.
		writeLocal(t, dir+"/trunc", "some data")
		f, err = c.OpenFile(ctx, p+"/trunc", os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("SOME"))
		mustClose(t, f)
		if got := readLocal(t, dir+"/trunc"); got != "SOME data" {
			t.Fatalf("overwrite without O_TRUNC gave %q", got)
		}
	})

	t.Run("append", func(t *testing.T) {
		writeLocal(t, dir+"/log", "a")
		f, err := c.OpenFile(ctx, p+"/log", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, f)
		f.Write([]byte("b"))
		// Someone else appends; the next Write still goes to the end.
		lf, err := os.OpenFile(dir+"/log", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		lf.WriteString("c")
		lf.Close()
		f.Seek(0, io.SeekStart)
		if _, err := f.Write([]byte("d")); err != nil {
			t.Fatal(err)
		}
		if got := readLocal(t, dir+"/log"); got != "abcd" {
			t.Fatalf("appends gave %q", got)
		}
		if off, _ := f.Seek(0, io.SeekCurrent); off != 4 {
			t.Fatalf("offset after an append is %d, want 4", off)
		}
		_, err = f.WriteAt([]byte("x"), 0)
		if !errors.Is(err, errWriteAtInAppendMode) {
			t.Fatalf("WriteAt in append mode: %v", err)
		}
		// io.Copy appends too.
		if _, err := io.Copy(f, strings.NewReader("ef")); err != nil {
			t.Fatal(err)
		}
		if got := readLocal(t, dir+"/log"); got != "abcdef" {
			t.Fatalf("io.Copy in append mode gave %q", got)
		}
	})

	t.Run("directory", func(t *testing.T) {
		os.Mkdir(dir+"/d", 0o755)
		f, err := c.Open(ctx, p+"/d")
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || !fi.IsDir() {
			t.Fatalf("Stat of an open directory: %v, %v", fi, err)
		}
		_, err = f.Read(make([]byte, 1))
		if !isPathError(err, "read", p+"/d", syscall.EISDIR) {
			t.Fatalf("Read of a directory: %v", err)
		}
		mustClose(t, f)
		for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_RDONLY | os.O_CREATE} {
			_, err = c.OpenFile(ctx, p+"/d", flag, 0o644)
			if !isPathError(err, "open", p+"/d", syscall.EISDIR) {
				t.Errorf("OpenFile of a directory with flags %#x: %v", flag, err)
			}
		}
	})

	t.Run("symlinks", func(t *testing.T) {
		writeLocal(t, dir+"/target", "via link")
		os.Symlink("target", dir+"/link")
		f, err := c.Open(ctx, p+"/link")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		mustClose(t, f)
		if string(b) != "via link" || err != nil {
			t.Fatalf("read through a symlink: %q, %v", b, err)
		}
		// Creating through a dangling link creates its target, as Linux does.
		os.Symlink("sub/new", dir+"/dangling")
		os.Mkdir(dir+"/sub", 0o755)
		f, err = c.OpenFile(ctx, p+"/dangling", os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("made"))
		mustClose(t, f)
		if f.Name() != p+"/dangling" {
			t.Errorf("Name of a file created through a symlink: %q", f.Name())
		}
		if got := readLocal(t, dir+"/sub/new"); got != "made" {
			t.Fatalf("create through a dangling symlink: %q", got)
		}
		_, err = c.OpenFile(ctx, p+"/link", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("exclusive create of a symlink: %v", err)
		}
	})

	t.Run("sync", func(t *testing.T) {
		// O_SYNC writes are on stable storage when Write returns: nothing
		// is held for a COMMIT. Without it they are held until one.
		for _, tc := range []struct {
			flag int
			held bool
		}{{os.O_WRONLY | os.O_CREATE, true}, {os.O_WRONLY | os.O_CREATE | os.O_SYNC, false}} {
			f, err := c.OpenFile(ctx, p+"/synced", tc.flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("durable")); err != nil {
				t.Fatal(err)
			}
			if _, b := f.io.wb.held(); (b > 0) != tc.held {
				t.Errorf("flags %#x: %d bytes held for COMMIT after a Write", tc.flag, b)
			}
			mustClose(t, f)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		_, err := c.OpenFile(ctx, p+"/created", os.O_WRONLY|os.O_RDWR, 0)
		if !isPathError(err, "open", p+"/created", syscall.EINVAL) {
			t.Fatalf("access mode 3: %v", err)
		}
	})
}

// A create that is sent again — after a reconnect, when the server's reply
// cache no longer has the answer — must find the file it made itself, not
// fail with EXIST: the verifier tells the two apart.
func TestExclusiveCreateReplaySucceeds(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	name := srv.Pseudo() + "/replayed"
	m, err := parseFlags(os.O_RDWR | os.O_CREATE | os.O_EXCL)
	if err != nil {
		t.Fatal(err)
	}
	dirFH, base, err := c.lookupParent(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	mine := verifier{1, 2, 3, 4, 5, 6, 7, 8}
	first, err := c.open(ctx, name, m, createReq(dirFH, base, m, 0o600, mine))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, first)
	again, err := c.open(ctx, name, m, createReq(dirFH, base, m, 0o600, mine))
	if err != nil {
		t.Fatalf("the same exclusive create sent again: %v", err)
	}
	mustClose(t, again)
	_, err = c.open(ctx, name, m, createReq(dirFH, base, m, 0o600, verifier{9}))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("another client's exclusive create: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(srv.ExportDir(), "replayed")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode of the exclusively created file: %v, %v", fi, err)
	}
}

// Two Files of the same file have open state of their own: closing one
// leaves the other usable, as with file descriptors.
func TestOpensOfOneFileAreIndependent(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	writeLocal(t, srv.ExportDir()+"/shared", "0123456789")
	name := srv.Pseudo() + "/shared"
	r, err := c.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, r)
	w, err := c.OpenFile(ctx, name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("AB"), 0); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	buf := make([]byte, 4)
	if _, err := r.ReadAt(buf, 0); err != nil || string(buf) != "AB23" {
		t.Fatalf("read after the other File closed: %q, %v", buf, err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	name := srv.Pseudo() + "/closed"
	f, err := c.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, f)
	if got := readLocal(t, srv.ExportDir()+"/closed"); got != "data" {
		t.Fatalf("content after Close: %q", got)
	}
	buf := make([]byte, 4)
	for _, tc := range []struct {
		op  string
		err error
	}{
		{"close", f.Close()},
		{"read", second(f.Read(buf))},
		{"read", second(f.ReadAt(buf, 0))},
		{"write", second(f.Write(buf))},
		{"write", second(f.WriteAt(buf, 0))},
		{"seek", second(f.Seek(0, io.SeekStart))},
		{"stat", second(f.Stat())},
		{"sync", f.Sync()},
		{"truncate", f.Truncate(0)},
		{"write", second(f.ReadFrom(strings.NewReader("x")))},
		{"read", second(f.WriteTo(io.Discard))},
	} {
		if !isPathError(tc.err, tc.op, name, fs.ErrClosed) {
			t.Errorf("%s after Close: %v", tc.op, tc.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestGuardedCreate: the GUARDED4 OPEN used when a server refuses
// EXCLUSIVE4_1 creates a file with the asked mode, and refuses an
// existing one with EXIST.
func TestGuardedCreate(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	dirFH, _, err := c.lookup(ctx, srv.Pseudo(), true)
	if err != nil {
		t.Fatal(err)
	}
	m := openMode{access: shareAccessBoth, read: true, write: true, create: true, excl: true}
	f, err := c.open(ctx, "guarded", m, guardedReq(dirFH, "guarded", 0o640))
	if err != nil {
		t.Fatalf("GUARDED4 create: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(srv.ExportDir(), "guarded"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("created file on disk: %v, %v", fi, err)
	}
	if _, err := c.open(ctx, "guarded", m, guardedReq(dirFH, "guarded", 0o640)); !errors.Is(err, ErrExist) {
		t.Fatalf("GUARDED4 create of an existing file: %v, want NFS4ERR_EXIST", err)
	}
}
