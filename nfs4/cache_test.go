package nfs4

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Unit tests of the metadata cache's rules, driven with chosen times; the
// tests against real servers are in cache_server_test.go.

func testCache(t *testing.T, entries int) *attrCache {
	t.Helper()
	cfg, err := Config{CacheEntries: entries}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newAttrCache(cfg)
}

func fileAttr(change uint64) *Attr {
	return &Attr{Mask: MaskOf(AttrType, AttrChange), Type: TypeRegular, Change: change}
}

// The lifetime follows the kernel's: the minimum at first and after a
// change, doubled by each unchanged fetch after a whole lifetime, never
// past the maximum; directories have their own bounds.
func TestCacheLifetime(t *testing.T) {
	a := testCache(t, 0)
	fh := []byte{1}
	s := int64(time.Second)
	steps := []struct {
		at     int64 // seconds
		change uint64
		want   time.Duration
	}{
		{0, 1, 3 * time.Second},    // first fetch: acregmin
		{1, 1, 3 * time.Second},    // confirmed within its lifetime: kept
		{4, 1, 6 * time.Second},    // confirmed a whole lifetime (3s) after the last: doubled
		{10, 1, 12 * time.Second},  // 6s after: doubled
		{20, 1, 12 * time.Second},  // 10s after, less than 12: kept
		{40, 1, 24 * time.Second},  // 20s after: doubled
		{70, 1, 48 * time.Second},  // 30s after: doubled
		{200, 1, 60 * time.Second}, // capped at acregmax
		{300, 2, 3 * time.Second},  // changed: back to acregmin
	}
	for _, st := range steps {
		a.mu.Lock()
		n := a.nodeLocked(fh, fileAttr(st.change), a.begin(), st.at*s)
		a.mu.Unlock()
		if n.timeo != st.want {
			t.Errorf("at %ds, change %d: lifetime %v, want %v", st.at, st.change, n.timeo, st.want)
		}
	}
	dir := &Attr{Mask: MaskOf(AttrType, AttrChange), Type: TypeDirectory, Change: 1}
	a.mu.Lock()
	n := a.nodeLocked([]byte{2}, dir, a.begin(), 0)
	a.mu.Unlock()
	if n.timeo != DefaultACDirMin {
		t.Errorf("a directory's first lifetime: %v, want %v", n.timeo, DefaultACDirMin)
	}
}

// A fetch that an invalidation overtook is not used; nor is an entry past
// its lifetime.
func TestCacheInvalidation(t *testing.T) {
	a := testCache(t, 0)
	fh := []byte{1, 2, 3}
	g := a.begin()
	a.invalidateFH(fh) // a change of ours while the fetch was under way
	a.put("/x/f", fh, fileAttr(1), g)
	if _, _, ok := a.get("/x/f"); ok {
		t.Error("a fetch overtaken by an invalidation was cached as valid")
	}
	a.put("/x/f", fh, fileAttr(1), a.begin())
	if _, _, ok := a.get("/x/f"); !ok {
		t.Fatal("a fresh fetch was not cached")
	}
	if _, ok := a.getFH(fh); !ok {
		t.Error("the file's attributes are not cached by handle")
	}
	a.invalidateFH(fh)
	if _, _, ok := a.get("/x/f"); ok {
		t.Error("invalidateFH left the path valid")
	}
	a.put("/x/f", fh, fileAttr(1), a.begin())
	a.mu.Lock()
	a.names["/x/f"].node.fetched -= int64(time.Hour)
	a.mu.Unlock()
	if _, _, ok := a.get("/x/f"); ok {
		t.Error("an entry past its lifetime was used")
	}
}

// A directory's name leads to its handle (dirFH) for the name's lifetime
// even once a change of ours made its attributes out of date, or overtook
// the fetch that found it; not once a name changed meanwhile (drop) or the
// handle went stale, and never for a file.
func TestCacheDirNameOutlivesOwnChanges(t *testing.T) {
	a := testCache(t, 0)
	dir := &Attr{Mask: MaskOf(AttrType, AttrChange), Type: TypeDirectory, Change: 1}
	a.put("/d", []byte{1}, dir, a.begin())
	a.invalidateFH([]byte{1}) // we made an entry in /d
	if _, _, ok := a.get("/d"); ok {
		t.Error("get used /d's attributes after our change in it")
	}
	if fh, ok := a.dirFH("/d"); !ok || fh[0] != 1 {
		t.Errorf("dirFH(/d) after our change in it: %v, %v; want its handle", fh, ok)
	}

	g := a.begin()
	a.invalidateFH([]byte{9}) // a WRITE of ours elsewhere, while /e was looked up
	a.put("/e", []byte{2}, dir, g)
	if _, ok := a.dirFH("/e"); !ok {
		t.Error("dirFH(/e) missed: a lookup overtaken by a change of attributes alone keeps its name")
	}

	g = a.begin()
	a.drop("/x") // a rename or remove of ours, while /f was looked up
	a.put("/f", []byte{3}, dir, g)
	if _, ok := a.dirFH("/f"); ok {
		t.Error("dirFH(/f) hit: a lookup overtaken by a name change must not keep its name")
	}

	a.forgetFH([]byte{1})
	if _, ok := a.dirFH("/d"); ok {
		t.Error("dirFH(/d) hit after its handle went stale")
	}
	a.put("/file", []byte{4}, fileAttr(1), a.begin())
	if _, ok := a.dirFH("/file"); ok {
		t.Error("dirFH of a file")
	}
}

// drop forgets a path and everything below it, and nothing else.
func TestCacheDrop(t *testing.T) {
	a := testCache(t, 0)
	dir := &Attr{Mask: MaskOf(AttrType, AttrChange), Type: TypeDirectory}
	for i, p := range []string{"/d", "/d/a", "/d/a/b", "/dd", "/e"} {
		attr := fileAttr(1)
		if p == "/d" || p == "/d/a" {
			attr = dir
		}
		a.put(p, []byte{byte(i)}, attr, a.begin())
	}
	a.drop("/d")
	for _, p := range []string{"/d", "/d/a", "/d/a/b"} {
		if _, _, ok := a.get(p); ok {
			t.Errorf("%s still cached after drop of /d", p)
		}
	}
	for _, p := range []string{"/dd", "/e"} {
		if _, _, ok := a.get(p); !ok {
			t.Errorf("%s dropped with /d", p)
		}
	}
	a.forgetFH([]byte{4})
	if _, _, ok := a.get("/e"); ok {
		t.Error("/e still cached after its handle was forgotten")
	}
}

// The cache holds at most CacheEntries names and files, from many
// goroutines at once.
func TestCacheBounded(t *testing.T) {
	const bound = 64
	a := testCache(t, bound)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				p := fmt.Sprintf("/g%d/f%d", g, i)
				fh := []byte(p)
				a.put(p, fh, fileAttr(1), a.begin())
				a.get(p)
				a.getFH(fh)
				if i%10 == 0 {
					a.invalidateFH(fh)
					a.drop(p)
				}
			}
		}()
	}
	wg.Wait()
	st := a.stats()
	if st.Names > bound || st.Files > bound {
		t.Errorf("cache holds %d names and %d files, bound %d", st.Names, st.Files, bound)
	}
}

// A hit allocates nothing.
func TestCacheHitAllocs(t *testing.T) {
	a := testCache(t, 0)
	fh := []byte{9}
	a.put("/export/f", fh, fileAttr(1), a.begin())
	n := testing.AllocsPerRun(100, func() {
		if _, _, ok := a.get(cleanPath("/export/f")); !ok {
			t.Fatal("miss")
		}
		if _, ok := a.getFH(fh); !ok {
			t.Fatal("miss by handle")
		}
	})
	if n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
}
