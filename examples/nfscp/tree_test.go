package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// watch counts what a copy does through watchFS: the files its walk has
// listed and the copies renamed into place. It is safe for concurrent use.
type watch struct {
	top string // the source directory whose listing ends the walk

	mu       sync.Mutex
	listed   int    // files listed so far
	placed   int    // files and links renamed into place so far
	peakHeld int    // the most files listed but not yet placed, seen at a listing
	walkDone bool   // the listing of top has ended
	atEnd    int    // placed when it ended
	heapAt   func() // called after each listing, if not nil
}

// watchFS is a fileSystem that reports to a watch.
type watchFS struct {
	fileSystem
	w *watch
}

func (f watchFS) OpenDir(ctx context.Context, name string) (dirReader, error) {
	d, err := f.fileSystem.OpenDir(ctx, name)
	if err != nil {
		return nil, err
	}
	return &watchDir{dirReader: d, w: f.w, top: name == f.w.top}, nil
}

func (f watchFS) Rename(ctx context.Context, oldname, newname string) error {
	err := f.fileSystem.Rename(ctx, oldname, newname)
	if err == nil {
		f.w.mu.Lock()
		f.w.placed++
		f.w.mu.Unlock()
	}
	return err
}

type watchDir struct {
	dirReader
	w   *watch
	top bool
}

func (d *watchDir) ReadDir(n int) ([]fs.DirEntry, error) {
	es, err := d.dirReader.ReadDir(n)
	w := d.w
	w.mu.Lock()
	for _, e := range es {
		if e.Type().IsRegular() {
			w.listed++
		}
	}
	w.peakHeld = max(w.peakHeld, w.listed-w.placed)
	if d.top && err == io.EOF {
		w.walkDone, w.atEnd = true, w.placed
	}
	heapAt := w.heapAt
	w.mu.Unlock()
	if heapAt != nil {
		heapAt()
	}
	return es, err
}

// copyWatched copies the tree src to dst in-process with -r and jobs
// workers, its file systems wrapped to report to w, and returns what
// --stats would count.
func copyWatched(t *testing.T, src, dst string, jobs int, w *watch) runStats {
	t.Helper()
	ctx := t.Context()
	var locs []location
	for _, a := range []string{src, dst} {
		l, err := parseLocation(a, defaultSettings(), nil)
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, l)
	}
	w.top = locs[0].path
	prog := newProgress(false, io.Discard, io.Discard)
	cs := newConns(dialOptions{quiet: true}, prog)
	defer cs.closeAll(context.Background())
	c := &copier{opts: copyOptions{recursive: true, preserve: true, jobs: jobs}, conns: cs, prog: prog, warn: func(string) {}}
	items, err := c.plan(ctx, locs[:1], locs[1])
	if c.root != nil {
		defer c.root.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		items[i].srcFS = watchFS{items[i].srcFS, w}
		items[i].dstFS = watchFS{items[i].dstFS, w}
	}
	rs, err := c.run(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// makeFlatTree creates dirs directories of files empty files each under
// root, with old modification times.
func makeFlatTree(t *testing.T, root string, dirs, files int) {
	t.Helper()
	old := time.Date(2011, 2, 3, 4, 5, 6, 0, time.UTC)
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, old, old.Add(time.Duration(d)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// sameDirTimes fails t unless every directory below a has its
// modification time at the same path below b: a directory's time is set
// after everything in it was written.
func sameDirTimes(t *testing.T, a, b string) {
	t.Helper()
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == a {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		ai, err := os.Stat(p)
		if err != nil {
			return err
		}
		bi, err := os.Stat(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if !ai.ModTime().Equal(bi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, bi.ModTime(), ai.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// held is the most files the walk may have listed and not yet copied: the
// queue, one file in each worker, and one batch for each directory level
// being listed (the trees here are two levels deep).
const held = queueLen + 4 + 2*dirBatch

// TestWalkAndCopyOverlap copies trees of 2,000 files, local to local and
// from a server, and checks that files were in place before the walk
// ended, that the files the walk had listed and not yet copied never
// exceeded the queue and batches, and that every directory got its
// source's time although its files were written after its listing.
func TestWalkAndCopyOverlap(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, c := range []struct {
		name   string
		server bool
	}{{"local", false}, {"from server", true}} {
		t.Run(c.name, func(t *testing.T) {
			local := t.TempDir()
			src, srcArg := filepath.Join(local, "src"), filepath.Join(local, "src")
			if c.server {
				needServer(t)
				a := newArea(t, srvA)
				src, srcArg = filepath.Join(a.disk, "src"), a.url+"/src"
			}
			makeFlatTree(t, src, 4, 500)
			dst := filepath.Join(local, "dst")
			w := &watch{}
			rs := copyWatched(t, srcArg, dst, 4, w)
			if rs.files != 2000 || rs.dirs != 5 {
				t.Fatalf("copied %d files, %d directories; want 2000 and 5", rs.files, rs.dirs)
			}
			if !w.walkDone || w.atEnd == 0 {
				t.Errorf("no file was in place when the walk ended (walk ended: %t)", w.walkDone)
			}
			if w.peakHeld > held {
				t.Errorf("the walk was up to %d files ahead of the copy, want at most %d", w.peakHeld, held)
			}
			sameDirTimes(t, src, dst)
			noLeftovers(t, dst)
		})
	}
}

// TestTreeMemoryBounded copies trees of 500 and 50,000 files, local to
// local: the files the walk holds stay within the same bound, and the heap
// does not grow with the tree. The heap is sampled after a collection each
// time the walk lists a batch; the workers go on allocating meanwhile, so
// single samples are noisy (a few MiB either way) and the test compares
// medians. Holding 50,000 items (248 bytes each, and their two paths)
// takes some 17 MiB, so a run that kept them would raise its median by
// about half that.
func TestTreeMemoryBounded(t *testing.T) {
	testutil.CheckLeaks(t)
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		// tmpfs: the copy fsyncs every file, which a disk makes slow.
		dir, err := os.MkdirTemp("/dev/shm", "nfscp-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		base = dir
	}
	medianHeap := func(dirs, files int) (held int, heap uint64) {
		src := filepath.Join(base, fmt.Sprint(dirs*files), "src")
		makeFlatTree(t, src, dirs, files)
		w := &watch{}
		var samples []uint64
		w.heapAt = func() {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, ms.HeapAlloc)
		}
		copyWatched(t, src, filepath.Join(base, fmt.Sprint(dirs*files), "dst"), 4, w)
		if err := os.RemoveAll(filepath.Dir(src)); err != nil {
			t.Fatal(err)
		}
		slices.Sort(samples)
		return w.peakHeld, samples[len(samples)/2]
	}
	smallHeld, smallHeap := medianHeap(5, 100)
	bigHeld, bigHeap := medianHeap(100, 500)
	t.Logf("files held: %d for 500 files, %d for 50,000; median heap %d KiB and %d KiB", smallHeld, bigHeld, smallHeap>>10, bigHeap>>10)
	if bigHeld > held {
		t.Errorf("the walk of 50,000 files was up to %d files ahead of the copy, want at most %d", bigHeld, held)
	}
	if bigHeap > smallHeap+4<<20 {
		t.Errorf("median heap %d KiB while copying 50,000 files, %d KiB for 500", bigHeap>>10, smallHeap>>10)
	}
}

// TestTreeProgressOnTerminal copies a tree of 600 files under script(1):
// while the walk goes on, the display counts the files found so far with a
// "+"; once the walk has ended, the run's files and bytes. Since the total
// is not known when the display starts, it never shows a percentage. The
// walk cannot end before most files are copied, since it waits for the
// workers whenever the queue is full.
func TestTreeProgressOnTerminal(t *testing.T) {
	needServer(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	a := newArea(t, srvA)
	src := filepath.Join(a.disk, "tree")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%03d", i)), 4<<10, uint64(i))
	}
	line := nfscpBin + " -r --bwlimit 1m '" + a.url + "/tree' '" + filepath.Join(t.TempDir(), "copy") + "'"
	r := runCmd(t, exec.Command("script", "-qefc", line, "/dev/null"))
	if r.code != 0 {
		t.Fatalf("exit %d, output:\n%q", r.code, r.stdout)
	}
	walking := regexp.MustCompile(`\[\d+/\d+\+\] f\d{3} \(\d`).FindStringIndex(r.stdout)
	if walking == nil {
		t.Fatalf("no count of the files found so far while walking in:\n%q", r.stdout)
	}
	if !regexp.MustCompile(`\[\d+/600, 2\.3 MiB\] f\d{3} `).MatchString(r.stdout[walking[0]:]) {
		t.Errorf("no total once the walk ended in:\n%q", r.stdout)
	}
	if strings.Contains(r.stdout, "%") {
		t.Errorf("a percentage of a total that was not known when the display started:\n%q", r.stdout)
	}
}

// TestTreeTooDeep copies a tree nested one level deeper than nfscp
// descends: the run fails with one line naming the directory too deep,
// and does not create it.
func TestTreeTooDeep(t *testing.T) {
	local := t.TempDir()
	src := filepath.Join(local, "src")
	deepest := src
	for range maxDepth {
		deepest = filepath.Join(deepest, "d")
	}
	if err := os.MkdirAll(deepest, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(local, "dst")
	mustFail(t, nfscp(t, "-rq", src, dst), 1,
		"nfscp: "+deepest+": directories nested more than 1024 deep")
	rel, _ := filepath.Rel(src, deepest)
	if _, err := os.Lstat(filepath.Join(dst, rel)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directory too deep was created (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, filepath.Dir(rel))); err != nil {
		t.Errorf("its parent, 1024 deep, was not: %v", err)
	}
}

// TestServerGoneMidWalk kills the server for good while nfscp lists a
// directory of 50,000 named pipes (which it skips, so the walk is all
// there is): the walk, waiting for a READDIR that will never be answered,
// gives up at --timeout like a copy does, with one line.
func TestServerGoneMidWalk(t *testing.T) {
	needServer(t)
	srv := ganesha.Start(t, ganesha.Config{})
	a := newArea(t, srv)
	src := filepath.Join(a.disk, "pipes")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 50000 {
		if err := syscall.Mkfifo(filepath.Join(src, fmt.Sprintf("p%05d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "copy")
	wait := startCopy(t, "-rq", "--timeout", "3s", a.url+"/pipes", dst)
	waitFor(t, time.Minute, "walk under way", func() bool {
		_, err := os.Stat(dst)
		return err == nil
	})
	srv.Kill()
	r := wait()
	if want := "nfscp: " + a.url + "/pipes: timed out after 3s (--timeout)\n"; r.code != 1 || r.stderr != want {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
}
