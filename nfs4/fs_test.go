package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// writeFile creates name on the server with data, through the client.
func writeFile(t testing.TB, c *Client, name string, data []byte) {
	t.Helper()
	f, err := c.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkFile reads name back through the client and fails t unless it
// holds want.
func checkFile(t testing.TB, c *Client, name string, want []byte) {
	t.Helper()
	f, err := c.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	mustClose(t, f)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s read back as %q, %v; want %q", name, got, err, want)
	}
}

// TestFSPassesFstest: Client.FS over a tree the client created on the
// server passes testing/fstest.TestFS, which checks Open, Stat, ReadDir,
// ReadFile, Sub, Seek, ReadAt and directory listings against each other.
func TestFSPassesFstest(t *testing.T) { forEachServer(t, Config{}, testFstest) }

// testFstest is TestFSPassesFstest's test, also run over NFSv4.0.
func testFstest(t *testing.T, s testServer, c *Client) {
	{
		ctx := context.Background()
		root := s.dir + "/tree"
		for _, d := range []string{"a/b/c", "empty", "x"} {
			if err := c.MkdirAll(ctx, root+"/"+d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"top.txt", "a/one", "a/b/two", "a/b/c/three", "x/big"}
		for i, name := range want[:4] {
			writeFile(t, c, root+"/"+name, []byte(fmt.Sprintf("file %d: %s\n", i, name)))
		}
		big := make([]byte, 1<<20+17) // crosses an rsize boundary and many read-ahead windows
		for i := range big {
			big[i] = byte(i % 251)
		}
		writeFile(t, c, root+"/x/big", big)

		fsys := c.FS(root)
		if err := fstest.TestFS(fsys, want...); err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(fsys, "x/big")
		if err != nil || string(got) != string(big) {
			t.Fatalf("ReadFile x/big: %d bytes, %v", len(got), err)
		}
		sub, err := fs.Sub(fsys, "a/b")
		if err != nil {
			t.Fatal(err)
		}
		if b, err := fs.ReadFile(sub, "c/three"); err != nil || string(b) != "file 3: a/b/c/three\n" {
			t.Fatalf("Sub then ReadFile: %q, %v", b, err)
		}
		if _, err := fs.Stat(fsys, "nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat of a missing name: %v", err)
		}
		if _, err := fsys.Open("../escape"); !errors.Is(err, fs.ErrInvalid) {
			t.Fatalf("Open of an invalid name: %v", err)
		}
		var walked []string
		if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			walked = append(walked, p)
			return nil
		}); err != nil || len(walked) != 11 {
			t.Fatalf("WalkDir: %v, %v", walked, err)
		}
	}
}

// TestMixedOperationsFrom64Goroutines: 64 goroutines each build, write,
// read back, rename, list and remove files in their own directory while
// all of them also list and stat a shared one; every result is checked and
// the final tree on the server's disk is what the operations say.
func TestMixedOperationsFrom64Goroutines(t *testing.T) {
	forEachServer(t, Config{Slots: 32}, testMixed64)
}

// testMixed64 is TestMixedOperationsFrom64Goroutines's test, also run over
// NFSv4.0.
func testMixed64(t *testing.T, s testServer, c *Client) {
	{
		ctx := context.Background()
		base := s.dir + "/mixed"
		if err := c.MkdirAll(ctx, base+"/shared", 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, c, base+"/shared/readme", []byte("shared"))

		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- func() error {
					dir := fmt.Sprintf("%s/g%02d", base, g)
					if err := c.Mkdir(ctx, dir, 0o755); err != nil {
						return err
					}
					for i := 0; i < 5; i++ {
						name := fmt.Sprintf("%s/f%d", dir, i)
						data := []byte(fmt.Sprintf("goroutine %d file %d", g, i))
						f, err := c.Create(ctx, name)
						if err != nil {
							return err
						}
						if _, err := f.Write(data); err != nil {
							return err
						}
						if err := f.Close(); err != nil {
							return err
						}
						f, err = c.Open(ctx, name)
						if err != nil {
							return err
						}
						got, err := io.ReadAll(f)
						f.Close()
						if err != nil || string(got) != string(data) {
							return fmt.Errorf("read back %s: %q, %v", name, got, err)
						}
					}
					if err := c.Rename(ctx, dir+"/f0", dir+"/renamed"); err != nil {
						return err
					}
					if err := c.Remove(ctx, dir+"/f1"); err != nil {
						return err
					}
					ents, err := c.ReadDir(ctx, dir)
					if err != nil || len(ents) != 4 {
						return fmt.Errorf("ReadDir %s: %d entries, %v", dir, len(ents), err)
					}
					if _, err := c.ReadDir(ctx, base+"/shared"); err != nil {
						return err
					}
					if fi, err := c.Stat(ctx, base+"/shared/readme"); err != nil || fi.Size() != 6 {
						return fmt.Errorf("Stat shared: %v", err)
					}
					return nil
				}()
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		tree := s.side.tree(t, "mixed")
		for g := 0; g < 64; g++ {
			dir := fmt.Sprintf("g%02d/", g)
			var names []string
			for _, p := range tree {
				if rest, ok := strings.CutPrefix(p, dir); ok && rest != "" {
					names = append(names, rest)
				}
			}
			if len(names) != 4 || names[3] != "renamed" {
				t.Fatalf("on the server, %s holds %q; want 4 files, the last \"renamed\"", dir, names)
			}
		}
	}
}
