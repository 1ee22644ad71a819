package nfs4

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

func TestChmodChownChtimesTruncate(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	p := srv.Pseudo()
	local := srv.ExportDir()
	if err := os.WriteFile(filepath.Join(local, "f"), []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(local, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(local, "link")); err != nil {
		t.Fatal(err)
	}
	both := func(name string) (fs.FileInfo, fs.FileInfo) {
		t.Helper()
		fi, err := c.Stat(ctx, p+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		lfi, err := os.Stat(filepath.Join(local, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi, lfi
	}

	// Chmod, through a symlink, and with the special bits.
	for _, m := range []fs.FileMode{0o600, 0o755 | fs.ModeSetuid, 0o640 | fs.ModeSetgid} {
		if err := c.Chmod(ctx, p+"/link", m); err != nil {
			t.Fatalf("Chmod %v: %v", m, err)
		}
		fi, lfi := both("f")
		if fi.Mode() != m || lfi.Mode() != m {
			t.Errorf("after Chmod %v: client %v, disk %v", m, fi.Mode(), lfi.Mode())
		}
	}
	if err := c.Chmod(ctx, p+"/d", fs.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	if fi, lfi := both("d"); fi.Mode() != fs.ModeDir|fs.ModeSticky|0o777 || lfi.Mode() != fi.Mode() {
		t.Errorf("after Chmod of a directory to sticky 0777: client %v, disk %v", fi.Mode(), lfi.Mode())
	}

	// Chown with numeric IDs; -1 leaves one alone.
	ids := func() (uint32, uint32, uint32, uint32) {
		fi, lfi := both("f")
		attr := fi.Sys().(*Attr)
		uid, _ := attr.UID()
		gid, _ := attr.GID()
		st := lfi.Sys().(*syscall.Stat_t)
		return uid, gid, st.Uid, st.Gid
	}
	if err := c.Chown(ctx, p+"/f", 1000, 1001); err != nil {
		t.Fatalf("Chown: %v", err)
	}
	if u, g, lu, lg := ids(); u != 1000 || g != 1001 || lu != 1000 || lg != 1001 {
		t.Errorf("after Chown 1000:1001: client %d:%d, disk %d:%d", u, g, lu, lg)
	}
	if err := c.Chown(ctx, p+"/f", -1, 1002); err != nil {
		t.Fatalf("Chown -1:1002: %v", err)
	}
	if u, g, lu, lg := ids(); u != 1000 || g != 1002 || lu != 1000 || lg != 1002 {
		t.Errorf("after Chown -1:1002: client %d:%d, disk %d:%d", u, g, lu, lg)
	}
	if err := c.Chown(ctx, p+"/link", 0, -1); err != nil {
		t.Fatalf("Chown through a link: %v", err)
	}
	if u, g, lu, lg := ids(); u != 0 || g != 1002 || lu != 0 || lg != 1002 {
		t.Errorf("after Chown 0:-1: client %d:%d, disk %d:%d", u, g, lu, lg)
	}

	// Chtimes with the client's times, to the nanosecond; a zero time
	// leaves that one alone.
	atime := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	mtime := time.Date(2002, 3, 4, 5, 6, 7, 987654321, time.UTC)
	if err := c.Chtimes(ctx, p+"/f", atime, mtime); err != nil {
		t.Fatalf("Chtimes: %v", err)
	}
	fi, lfi := both("f")
	latime := func(fi fs.FileInfo) time.Time {
		st := fi.Sys().(*syscall.Stat_t)
		return time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	if !fi.ModTime().Equal(mtime) || !fi.Sys().(*Attr).AccessTime.Equal(atime) ||
		!lfi.ModTime().Equal(mtime) || !latime(lfi).Equal(atime) {
		t.Errorf("after Chtimes: client atime %v mtime %v, disk atime %v mtime %v",
			fi.Sys().(*Attr).AccessTime, fi.ModTime(), latime(lfi), lfi.ModTime())
	}
	mtime2 := time.Unix(1e9, 0)
	if err := c.Chtimes(ctx, p+"/link", time.Time{}, mtime2); err != nil {
		t.Fatalf("Chtimes of mtime only: %v", err)
	}
	if fi, lfi := both("f"); !fi.ModTime().Equal(mtime2) || !latime(lfi).Equal(atime) {
		t.Errorf("after Chtimes of mtime only: mtime %v (want %v), atime %v (want %v)", fi.ModTime(), mtime2, latime(lfi), atime)
	}

	// Truncate shrinks and extends with zeros.
	if err := c.Truncate(ctx, p+"/link", 5); err != nil {
		t.Fatalf("Truncate to 5: %v", err)
	}
	if fi, _ := both("f"); fi.Size() != 5 {
		t.Errorf("size after Truncate to 5: %d", fi.Size())
	}
	if err := c.Truncate(ctx, p+"/f", 8); err != nil {
		t.Fatalf("Truncate to 8: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(local, "f")); err != nil || !bytes.Equal(b, []byte("hello\x00\x00\x00")) {
		t.Errorf("after Truncate to 5 then 8: %q, %v", b, err)
	}
}
