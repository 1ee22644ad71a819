package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
)

// Copying trees. The goroutine that calls run walks the sources depth
// first, reading each directory dirBatch entries at a time; it creates
// every directory at the destination before anything goes into it and
// hands files and links to the -j workers through a queue of queueLen
// items. When the queue is full the walker waits, so a run holds the
// queue, the files being copied and one batch for each directory level
// being listed: its memory does not grow with the number of files, and the
// first files are copied while the walk goes on. A directory gets its mode
// and time once everything in it is done (see dirNode), since writing into
// it would change its time again and a mode without write permission would
// keep its contents out.

const (
	// queueLen is how many files and links the walker may have found
	// that no worker has taken yet.
	queueLen = 256
	// dirBatch is how many entries the walker reads from a directory at
	// once.
	dirBatch = 256
	// maxDepth bounds the directory nesting a tree copy descends into;
	// a server could otherwise describe an endless tree.
	maxDepth = 1024
	// maxDirEntries bounds the entries of one directory: a server whose
	// listing never ends must not keep a copy going for ever.
	maxDirEntries = 1 << 24
)

// dirNode is a directory of the tree whose mode and time wait for its
// contents. pending counts its entries handed out and not yet done, plus
// one while the walker lists it; whoever brings it to zero finishes the
// directory, then counts it done in its parent.
type dirNode struct {
	it      item // the directory's own item; it.parent is its parent's node
	pending atomic.Int64
}

// tree is the state one run shares between the walker and the workers.
type tree struct {
	*copier
	cancel context.CancelCauseFunc
	work   chan item

	once sync.Once
	err  error // the first failure, set through once

	stats runStats // counted by the walker
}

// run copies the items plan returned, each directory with everything
// below it: the walk in the calling goroutine, files and links in
// opts.jobs workers. The first failure ends the run: the walk stops, the
// workers finish the files they are copying (which fail too, if the
// failure was the run's end) and skip the rest.
func (c *copier) run(ctx context.Context, items []item) (runStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := &tree{copier: c, cancel: cancel, work: make(chan item, queueLen)}
	dirs := false
	for _, it := range items {
		if it.kind == itemDir {
			dirs = true
		} else {
			t.found(it)
		}
	}
	if !dirs {
		c.prog.WalkDone() // the command line named every file
	}
	var wg sync.WaitGroup
	for range max(c.opts.jobs, 1) {
		wg.Go(func() {
			for it := range t.work {
				if ctx.Err() == nil {
					if err := c.copyItem(ctx, it); err != nil {
						t.fail(err)
					}
				}
				t.done(ctx, it.parent)
			}
		})
	}
	t.walk(ctx, items)
	c.prog.WalkDone()
	close(t.work)
	wg.Wait()
	if t.err != nil {
		return t.stats, t.err
	}
	if err := ctx.Err(); err != nil {
		return t.stats, &opError{name: "", err: err}
	}
	return t.stats, nil
}

// fail records err as the run's failure, if it is the first, and ends the
// run.
func (t *tree) fail(err error) {
	t.once.Do(func() { t.err = err })
	t.cancel(err)
}

// walk copies the top-level items in order.
func (t *tree) walk(ctx context.Context, items []item) {
	for _, it := range items {
		var ok bool
		if it.kind == itemDir {
			ok = t.dir(ctx, it, 1)
		} else {
			ok = t.send(ctx, it)
		}
		if !ok {
			return
		}
	}
}

// found counts a file or link the walk has found.
func (t *tree) found(it item) {
	if it.kind == itemFile {
		t.stats.files++
		t.prog.Found(it.size)
	} else {
		t.stats.links++
	}
}

// send hands a file or link to the workers, waiting while the queue is
// full. It returns false if the run has ended.
func (t *tree) send(ctx context.Context, it item) bool {
	if it.parent != nil {
		it.parent.pending.Add(1)
	}
	select {
	case t.work <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// done counts one entry of d done (nothing if d is nil); the last one
// finishes d, and so on up the tree.
func (t *tree) done(ctx context.Context, d *dirNode) {
	for d != nil && d.pending.Add(-1) == 0 {
		t.finishDir(ctx, d)
		d = d.it.parent
	}
}

// finishDir gives the directory d, whose contents are all done, its mode
// and (with preserve) its modification time. A run that has failed leaves
// its directories as mkdir made them.
func (t *tree) finishDir(ctx context.Context, d *dirNode) {
	if ctx.Err() != nil {
		return
	}
	it := d.it
	mode, err := finalMode(ctx, it.dstFS, it.dst.path, it)
	if err == nil {
		err = it.dstFS.Chmod(ctx, it.dst.path, mode)
	}
	if err == nil && t.opts.preserve {
		err = it.dstFS.Chtimes(ctx, it.dst.path, it.mtime)
	}
	if err != nil {
		t.fail(&opError{name: it.dst.name(), err: err})
	}
}

// dir creates the directory it at the destination and walks its source;
// depth is its nesting, 1 for a directory named on the command line. It
// returns false if the run has ended.
func (t *tree) dir(ctx context.Context, it item, depth int) bool {
	if depth > maxDepth {
		t.fail(&opError{name: it.src.name(), err: fmt.Errorf("directories nested more than %d deep", maxDepth)})
		return false
	}
	if err := t.mkdir(ctx, it); err != nil {
		t.fail(err)
		return false
	}
	t.stats.dirs++
	if it.parent != nil {
		it.parent.pending.Add(1)
	}
	d := &dirNode{it: it}
	d.pending.Store(1) // the listing, below
	ok := t.list(ctx, d, depth)
	t.done(ctx, d)
	return ok
}

// list reads the source directory of d a batch at a time, sending its
// files and links to the workers and walking its subdirectories as it
// meets them. It returns false if the run has ended.
func (t *tree) list(ctx context.Context, d *dirNode, depth int) bool {
	src := d.it.src
	dr, err := d.it.srcFS.OpenDir(ctx, src.path)
	if err != nil {
		t.fail(&opError{name: src.name(), err: err})
		return false
	}
	defer dr.Close()
	for seen := 0; ; {
		if err := ctx.Err(); err != nil {
			// The run ended between batches: the walk was here (a
			// failure recorded first keeps its own name).
			t.fail(&opError{name: src.name(), err: err})
			return false
		}
		entries, err := dr.ReadDir(dirBatch)
		if seen += len(entries); seen > maxDirEntries {
			err = fmt.Errorf("directory has more than %d entries", maxDirEntries)
		}
		for _, e := range entries {
			if !t.entry(ctx, d, e, depth) {
				return false
			}
		}
		switch {
		case err == io.EOF:
			return true
		case err != nil:
			t.fail(&opError{name: src.name(), err: err})
			return false
		}
	}
}

// entry walks one entry of the directory d.
func (t *tree) entry(ctx context.Context, d *dirNode, e fs.DirEntry, depth int) bool {
	name := e.Name()
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		t.fail(&opError{name: d.it.src.name(), err: fmt.Errorf("invalid entry name %q", name)})
		return false
	}
	s, dst := d.it.src.child(name), d.it.dst.child(name)
	fi, err := e.Info()
	if err != nil {
		t.fail(&opError{name: s.name(), err: err})
		return false
	}
	it := t.newItem(itemDir, s, dst, d.it.srcFS, d.it.dstFS, fi)
	it.parent = d
	switch m := fi.Mode(); {
	case m.IsDir():
		return t.dir(ctx, it, depth+1)
	case m.IsRegular():
		it.kind, it.size = itemFile, fi.Size()
	case m&fs.ModeSymlink != 0:
		it.kind = itemLink
	default:
		t.warn(fmt.Sprintf("%s: skipping %s", s.name(), kindName(m)))
		return true
	}
	t.found(it)
	return t.send(ctx, it)
}
