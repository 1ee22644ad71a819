package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// The metadata cache against real servers: what it saves, and what a
// caller sees of changes, its own and another client's (docs/consistency.md).

// longCache keeps every entry for the whole test.
var longCache = Config{ACRegMin: 10 * time.Minute, ACRegMax: 10 * time.Minute, ACDirMin: 10 * time.Minute, ACDirMax: 10 * time.Minute}

// calls returns how many RPCs (COMPOUNDs, here) c has sent.
func calls(c *Client) uint64 { return c.Stats().RPC.Calls }

// writeOther writes data as name's whole content through the Client o.
func writeOther(t *testing.T, o *Client, name, data string) {
	t.Helper()
	ctx := context.Background()
	f, err := o.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustStat(t *testing.T, c *Client, name string) fs.FileInfo {
	t.Helper()
	fi, err := c.Stat(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// A cached Client.Stat and File.Stat send nothing, and a cached
// Client.Stat allocates only its FileInfo; a missing file is asked for
// every time.
func TestCacheStatFromCache(t *testing.T) {
	forEachServer(t, longCache, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		s.side.writeFile(t, "f", []byte("hello"))
		name := s.dir + "/f"
		if fi := mustStat(t, c, name); fi.Size() != 5 {
			t.Fatalf("size %d, want 5", fi.Size())
		}
		before := calls(c)
		for range 100 {
			if fi := mustStat(t, c, name); fi.Size() != 5 {
				t.Fatalf("cached size %d, want 5", fi.Size())
			}
		}
		if n := calls(c) - before; n != 0 {
			t.Errorf("100 cached Stats sent %d calls", n)
		}
		allocs := testing.AllocsPerRun(100, func() { c.Stat(ctx, name) })
		if allocs > 1 {
			t.Errorf("a cached Stat allocates %v times, want at most 1 (its FileInfo)", allocs)
		}

		f, err := c.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		before = calls(c)
		for range 100 {
			if fi, err := f.Stat(); err != nil || fi.Size() != 5 {
				t.Fatalf("File.Stat: %v, %v", fi, err)
			}
		}
		if n := calls(c) - before; n != 0 {
			t.Errorf("100 cached File.Stats sent %d calls", n)
		}

		before = calls(c)
		for range 3 {
			if _, err := c.Stat(ctx, s.dir+"/missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat of a missing file: %v", err)
			}
		}
		if n := calls(c) - before; n != 3 {
			t.Errorf("3 Stats of a missing file sent %d calls, want 3 (failures are not cached)", n)
		}
		if st := c.Stats().Cache; st.Hits < 200 || st.Names == 0 || st.Files == 0 {
			t.Errorf("cache stats %+v", st)
		}
	})
}

// With NoAC every Stat and File.Stat goes to the server.
func TestCacheNoAC(t *testing.T) {
	forEachServer(t, Config{NoAC: true}, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		s.side.writeFile(t, "f", []byte("hello"))
		name := s.dir + "/f"
		before := calls(c)
		for range 5 {
			mustStat(t, c, name)
		}
		if n := calls(c) - before; n != 5 {
			t.Errorf("5 Stats with NoAC sent %d calls, want 5", n)
		}
		f, err := c.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		before = calls(c)
		for range 5 {
			if _, err := f.Stat(); err != nil {
				t.Fatal(err)
			}
		}
		if n := calls(c) - before; n != 5 {
			t.Errorf("5 File.Stats with NoAC sent %d calls, want 5", n)
		}
		if st := c.Stats().Cache; st != (CacheStats{}) {
			t.Errorf("cache stats with NoAC: %+v", st)
		}
	})
}

// Another client's change is seen within ACRegMax of it, and at once by
// the next Open (close-to-open), also when the name now holds another
// file.
func TestCacheOtherClientVisible(t *testing.T) {
	const lo, hi = time.Second, 2 * time.Second
	cfg := Config{ACRegMin: lo, ACRegMax: hi, ACDirMin: lo, ACDirMax: hi}
	forEachServer(t, cfg, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		o := s.dial(t, s.addr, Config{NoAC: true})
		name := s.dir + "/f"
		writeOther(t, o, name, "12345")
		fetched := time.Now()
		mustStat(t, c, name)

		// Within the bound: changed by the other client, the cached
		// attributes may still be seen; past it, the new ones must be.
		writeOther(t, o, name, "1234567890")
		changed := time.Now()
		if fi := mustStat(t, c, name); time.Since(fetched) < lo-100*time.Millisecond && fi.Size() != 5 {
			t.Errorf("within ACRegMin of the fetch, Stat saw size %d, not the cached 5", fi.Size())
		}
		deadline := changed.Add(hi + time.Second) // the bound, and a second for the calls
		seen := false
		for i := 0; i < 200 && time.Now().Before(deadline); i++ {
			if mustStat(t, c, name).Size() == 10 {
				seen = true
				t.Logf("another client's change seen %v after it", time.Since(changed).Round(time.Millisecond))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !seen {
			t.Fatalf("another client's change not seen within ACRegMax (%v)", hi)
		}

		// At the next Open: the new size, and the new file when the name
		// was replaced, whatever the cache held.
		c2 := s.dial(t, s.addr, longCache)
		mustStat(t, c2, name)
		f, err := c2.Open(ctx, name) // caches the handle and attributes for long
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		writeOther(t, o, name, "abcdefghijklmnopqrstuvwxyz")
		f, err = c2.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 26 {
			t.Errorf("File.Stat after Open: %v, %v; want size 26", fi, err)
		}
		f.Close()
		if fi := mustStat(t, c2, name); fi.Size() != 26 {
			t.Errorf("Stat after Open: size %d, want 26", fi.Size())
		}
		if err := o.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
		writeOther(t, o, name, "replaced")
		f, err = c2.Open(ctx, name)
		if err != nil {
			t.Fatalf("Open of a name replaced by another client: %v", err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != "replaced" {
			t.Errorf("Open of a replaced name read %q, %v; want the new file", b, err)
		}
	})
}

// Our own changes are seen at once, however long the cache keeps
// entries: attributes, sizes written, names made, removed and renamed,
// and the parent directory's attributes.
func TestCacheOwnChangesAtOnce(t *testing.T) {
	forEachServer(t, longCache, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		d := s.dir + "/d"
		if err := c.Mkdir(ctx, d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirChange := func() uint64 { return mustStat(t, c, d).Sys().(*Attr).Change }
		ch := dirChange()
		name := d + "/f"
		f, err := c.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ch2 := dirChange(); ch2 == ch {
			t.Error("the directory's change attribute is the cached one after a Create in it")
		} else {
			ch = ch2
		}
		if _, err := f.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if fi := mustStat(t, c, name); fi.Size() != 10 {
			t.Errorf("Stat after a Write of 10 bytes, before Close: size %d", fi.Size())
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 10 {
			t.Errorf("File.Stat after a Write of 10 bytes: %v, %v", fi, err)
		}
		if err := f.Truncate(4); err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 4 {
			t.Errorf("File.Stat after Truncate(4): %v, %v", fi, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Chmod(ctx, name, 0o600); err != nil {
			t.Fatal(err)
		}
		if fi := mustStat(t, c, name); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode after Chmod 0600: %v", fi.Mode())
		}
		if err := c.Truncate(ctx, name, 2); err != nil {
			t.Fatal(err)
		}
		if fi := mustStat(t, c, name); fi.Size() != 2 {
			t.Errorf("size after Truncate to 2: %d", fi.Size())
		}
		mtime := time.Unix(1e9, 0)
		if err := c.Chtimes(ctx, name, time.Time{}, mtime); err != nil {
			t.Fatal(err)
		}
		if fi := mustStat(t, c, name); !fi.ModTime().Equal(mtime) {
			t.Errorf("mtime after Chtimes: %v", fi.ModTime())
		}

		// Rename of a directory whose contents are cached.
		if err := c.Rename(ctx, d, s.dir+"/e"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a name renamed away: %v", err)
		}
		if _, err := c.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a directory renamed away: %v", err)
		}
		moved := s.dir + "/e/f"
		if fi := mustStat(t, c, moved); fi.Size() != 2 {
			t.Errorf("size after the rename: %d", fi.Size())
		}
		if err := c.Mkdir(ctx, s.dir+"/e/sub", 0o755); err != nil {
			t.Fatal(err)
		}
		if fi := mustStat(t, c, s.dir+"/e/sub"); !fi.IsDir() {
			t.Error("a directory made is not one")
		}
		if err := c.Remove(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(ctx, moved); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a removed file: %v", err)
		}
		if err := c.RemoveAll(ctx, s.dir+"/e"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{s.dir + "/e", s.dir + "/e/sub"} {
			if _, err := c.Stat(ctx, p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat of %s after RemoveAll: %v", strings.TrimPrefix(p, s.dir), err)
			}
		}
	})
}

// A handle the server calls stale (another client removed the file or a
// directory on the way) is forgotten and the path walked again, once:
// the operation reaches what the name holds now.
func TestCacheStaleHandleWalksAgain(t *testing.T) {
	forEachServer(t, longCache, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		o := s.dial(t, s.addr, Config{NoAC: true})
		d, name := s.dir+"/d", s.dir+"/d/f"
		if err := o.Mkdir(ctx, d, 0o777); err != nil {
			t.Fatal(err)
		}
		writeOther(t, o, name, "old")
		mustStat(t, c, d)
		mustStat(t, c, name)

		// The file replaced: a SETATTR on the cached handle is stale.
		if err := o.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
		writeOther(t, o, name, "new file")
		if err := c.Chmod(ctx, name, 0o600); err != nil {
			t.Fatalf("Chmod of a name another client replaced: %v", err)
		}
		fi, err := o.Stat(ctx, name)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the new file after Chmod: %v, %v; want mode 0600", fi, err)
		}
		if fi := mustStat(t, c, name); fi.Size() != 8 || fi.Mode().Perm() != 0o600 {
			t.Errorf("Stat after the Chmod: size %d mode %v, want the new file's 8, 0600", fi.Size(), fi.Mode())
		}

		// The directory replaced: a walk from its cached handle is stale.
		if err := o.RemoveAll(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := o.Mkdir(ctx, d, 0o777); err != nil {
			t.Fatal(err)
		}
		writeOther(t, o, d+"/g", "in the new directory")
		if fi, err := c.Stat(ctx, d+"/g"); err != nil || fi.Size() != 20 {
			t.Errorf("Stat below a directory another client replaced: %v, %v", fi, err)
		}
		if err := c.Mkdir(ctx, d+"/h", 0o755); err != nil {
			t.Errorf("Mkdir in a directory another client replaced: %v", err)
		}
		t.Logf("stale handles forgotten: %d", c.Stats().Cache.Stale)
	})
}

// A server that lost our client ID (it crashed, or another one took its
// address) may have files that changed while we could not see them: the
// recovery empties the cache, so a Stat after it sees the change at once,
// not after the attributes' lifetime.
func TestCacheClearedWhenClientIDLost(t *testing.T) {
	forEachServer(t, longCache, func(t *testing.T, s testServer, c *Client) {
		ctx := context.Background()
		name := s.dir + "/changed-while-down"
		s.side.writeFile(t, "changed-while-down", []byte("ten bytes!"))
		if fi, err := c.Stat(ctx, name); err != nil || fi.Size() != 10 {
			t.Fatalf("Stat before: %v, %v; want 10 bytes", fi, err)
		}
		s.stop(t)
		s.side.writeFile(t, "changed-while-down", []byte("twenty bytes, now!!!"))
		s.start(t)
		// A call that reaches the server finds the client ID gone.
		if _, err := c.ReadDir(ctx, s.dir); err != nil {
			t.Fatalf("ReadDir after the restart: %v", err)
		}
		if st := c.Stats().Recovery; st.ClientIDResets == 0 {
			t.Fatalf("no client ID reset after the restart: %+v", st)
		}
		fi, err := c.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 20 {
			t.Errorf("Stat after the recovery: %d bytes, the cached size; want the 20 written while the server was down", fi.Size())
		}
	})
}

// Entries made one after another in one directory cost one call each: the
// first Mkdir looks the directory up in the same COMPOUND as its CREATE,
// and our own CREATE invalidates the directory's attributes, not the name
// that leads to it (its handle does not change). The directory's
// attributes are fetched again at the next Stat. With NoAC each Mkdir
// looks its directory up first.
func TestCacheParentOfOwnChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want uint64 // calls per Mkdir
	}{{"cache", Config{}, 1}, {"noac", Config{NoAC: true}, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			forEachServer(t, tc.cfg, func(t *testing.T, s testServer, c *Client) {
				ctx := context.Background()
				d := s.dir + "/many"
				if err := c.Mkdir(ctx, d, 0o755); err != nil {
					t.Fatal(err)
				}
				// The first Mkdir in it finds it in the same COMPOUND.
				for i := range 5 {
					before := calls(c)
					if err := c.Mkdir(ctx, fmt.Sprintf("%s/e%d", d, i), 0o755); err != nil {
						t.Fatal(err)
					}
					if n := calls(c) - before; n != tc.want {
						t.Errorf("Mkdir %d in the same directory sent %d calls, want %d", i, n, tc.want)
					}
				}
				before := calls(c)
				fi := mustStat(t, c, d)
				if n := calls(c) - before; n != 1 {
					t.Errorf("Stat of the directory after our Mkdirs sent %d calls, want 1 (its attributes refetched)", n)
				}
				if got := s.side.tree(t, "many"); len(got) != 5 {
					t.Errorf("the server's directory holds %v, want the 5 made", got)
				}
				t.Logf("directory after: %v", fi.ModTime())
			})
		})
	}
}
