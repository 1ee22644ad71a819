package nfs4

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

func TestStatFollowsSymlinksAcrossTheServer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	dir := srv.ExportDir()
	// A tree made behind the server's back; Attr_Expiration_Time = 0 makes
	// Ganesha see it at once.
	mustRun(t, "mkdir", "-p", dir+"/a/b/c/d/e/f/g/h/i/j/k/l/m")
	mustRun(t, "sh", "-c", "echo hello > "+dir+"/a/b/c/d/e/f/g/h/i/j/k/l/m/file")
	mustRun(t, "ln", "-s", "b/c/d", dir+"/a/link")
	mustRun(t, "ln", "-s", "/export/a/link/e", dir+"/abs")
	ctx := context.Background()
	p := srv.Pseudo()

	fi, err := c.Stat(ctx, p+"/a/b/c/d/e/f/g/h/i/j/k/l/m/file") // more components than one COMPOUND holds
	if err != nil || fi.Size() != 6 || fi.Name() != "file" || !fi.Mode().IsRegular() {
		t.Fatalf("Stat deep file: %v, %v", fi, err)
	}
	fi, err = c.Stat(ctx, p+"/a/link/e/f/g/h/i/j/k/l/m/file") // a relative link in the middle
	if err != nil || fi.Size() != 6 {
		t.Fatalf("Stat through a relative symlink: %v", err)
	}
	fi, err = c.Stat(ctx, p+"/abs") // an absolute link, last component
	if err != nil || !fi.IsDir() || fi.Name() != "abs" {
		t.Fatalf("Stat of an absolute symlink to a directory: %v, %v", fi, err)
	}
	fi, err = c.Lstat(ctx, p+"/abs")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("Lstat of a symlink: %v, %v", fi, err)
	}
	_, err = c.Stat(ctx, p+"/a/missing")
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "stat" || pe.Path != p+"/a/missing" {
		t.Fatalf("Stat of a missing file: %v", err)
	}
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestLookuppAndAccess: LOOKUPP from a directory lands on its parent, and
// ACCESS reports what AUTH_SYS root may do on the export.
func TestLookuppAndAccess(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	mustRun(t, "mkdir", srv.ExportDir()+"/child")
	parentFH, _, err := c.lookup(ctx, srv.Pseudo(), true)
	if err != nil {
		t.Fatal(err)
	}
	childFH, _, err := c.lookup(ctx, srv.Pseudo()+"/child", true)
	if err != nil {
		t.Fatal(err)
	}
	var upFH []byte
	var acc accessRes
	want := uint32(accessRead | accessLookup | accessModify | accessExtend | accessDelete)
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(childFH)
			cmp.lookupp()
			cmp.getfh()
			cmp.access(want)
		},
		p: func(r *reply) error {
			for _, op := range []uint32{opPutFH, opLookupP} {
				if err := r.statusOnly(op); err != nil {
					return err
				}
			}
			fh, err := r.getfh()
			upFH = append([]byte(nil), fh...)
			if err != nil {
				return err
			}
			return r.access(&acc)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(upFH) != string(parentFH) {
		t.Errorf("LOOKUPP of /export/child gave %x, want the handle of /export %x", upFH, parentFH)
	}
	if acc.supported != want || acc.access != want {
		t.Errorf("ACCESS for root on the export: supported %#x access %#x, want %#x", acc.supported, acc.access, want)
	}
}
