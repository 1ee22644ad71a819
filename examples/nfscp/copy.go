package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

// copyOptions are the flags that shape a copy.
type copyOptions struct {
	recursive bool        // -r: copy directory trees
	preserve  bool        // -p (implied by -r): exact modes and modification times
	jobs      int         // -j: files copied at once
	verify    bool        // --verify: read each copy back and compare sha256
	umask     fs.FileMode // applied to the modes of new files without preserve
}

// cleanupTimeout bounds the removal of a temporary file after a failure.
const cleanupTimeout = 5 * time.Second

type itemKind int

const (
	itemDir itemKind = iota
	itemFile
	itemLink
)

// item is one thing to create at the destination.
type item struct {
	kind   itemKind
	src    location
	dst    location
	srcFS  fileSystem
	dstFS  fileSystem
	size   int64       // files: bytes to copy
	mode   fs.FileMode // mode to give the copy, before finalMode
	mtime  time.Time   // modification time to give it, with preserve
	uid    id          // the source's owner, with preserve (see finalMode)
	gid    id          // the source's group, likewise
	parent *dirNode    // the directory of the tree it is in; nil at the top
}

// copier carries out one run's copies. Its methods are safe for concurrent
// use by the -j workers.
type copier struct {
	opts  copyOptions
	conns *conns
	prog  *progress
	limit *limiter // nil: no --bwlimit
	warn  func(string)

	copied    atomic.Int64 // bytes copied so far, holes and the server's copies included
	holes     atomic.Int64 // of them, holes left unwritten (see sparse.go)
	offloaded atomic.Int64 // of them, copied by the server (COPY, CLONE)
	root      *os.Root     // a local destination's directory (see rootFS); nil if none
}

// plan resolves srcs and dst into the top-level items to copy, one for
// each source, checking them all before anything is written. The contents
// of a directory are found later, by the walk (see tree.go).
func (c *copier) plan(ctx context.Context, srcs []location, dst location) ([]item, error) {
	dstFS, err := c.conns.fsFor(ctx, dst)
	if err != nil {
		return nil, err
	}
	dstInfo, err := dstFS.Stat(ctx, dst.path)
	dstIsDir := err == nil && dstInfo.IsDir()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &opError{name: dst.name(), err: err}
	}
	if len(srcs) > 1 && !dstIsDir {
		if err == nil {
			return nil, &opError{name: dst.name(), err: syscall.ENOTDIR}
		}
		return nil, &opError{name: dst.name(), err: errors.New("no such directory (copying several sources needs an existing directory)")}
	}
	if err == nil && !dstIsDir && dst.dirSyn {
		return nil, &opError{name: dst.name(), err: syscall.ENOTDIR}
	}
	var items []item
	for _, src := range srcs {
		srcFS, err := c.conns.fsFor(ctx, src)
		if err != nil {
			return nil, err
		}
		fi, err := srcFS.Stat(ctx, src.path)
		if err != nil {
			return nil, &opError{name: src.name(), err: missingHint(ctx, srcFS, src.path, err)}
		}
		base, err := baseName(src)
		if err != nil {
			return nil, &opError{name: src.name(), err: err}
		}
		to := dst
		to.dirSyn = false
		if dstIsDir {
			to = dst.child(base)
		} else if dst.dirSyn && !(fi.IsDir() && c.opts.recursive) {
			return nil, &opError{name: dst.name(), err: errors.New("no such directory")}
		}
		if sameLocation(src, to) {
			if tfi, err := dstFS.Stat(ctx, to.path); err == nil && srcFS.SameFile(fi, tfi) {
				return nil, &opError{name: src.name(), err: errors.New("source and destination are the same file")}
			}
		}
		switch {
		case fi.IsDir():
			if !c.opts.recursive {
				return nil, &opError{name: src.name(), err: errors.New("is a directory (use -r to copy directories)")}
			}
			if inside(src, to) {
				return nil, &opError{name: src.name(), err: errors.New("cannot copy a directory into itself")}
			}
			if tfi, err := dstFS.Stat(ctx, to.path); err == nil && !tfi.IsDir() {
				return nil, &opError{name: to.name(), err: errors.New("cannot overwrite a file with a directory")}
			}
			items = append(items, c.newItem(itemDir, src, to, srcFS, dstFS, fi))
		case fi.Mode().IsRegular():
			it := c.newItem(itemFile, src, to, srcFS, dstFS, fi)
			it.size = fi.Size()
			items = append(items, it)
		default:
			return nil, &opError{name: src.name(), err: errors.New("not a regular file or directory")}
		}
	}
	if dst.remote == nil && len(items) > 0 {
		// Everything is created below the directory the user named: dst,
		// or the directory holding it when dst is the copy's own name.
		dir := dst.path
		if !dstIsDir {
			dir = filepath.Dir(filepath.Clean(dst.path))
		}
		r, err := openRoot(dir)
		if err != nil {
			return nil, &opError{name: dst.name(), err: err}
		}
		c.root = r.root
		for i := range items {
			items[i].dstFS = r
		}
	}
	return items, nil
}

// newItem describes the copy of src, whose FileInfo is fi, to dst.
func (c *copier) newItem(kind itemKind, src, dst location, srcFS, dstFS fileSystem, fi fs.FileInfo) item {
	it := item{kind: kind, src: src, dst: dst, srcFS: srcFS, dstFS: dstFS, mode: c.mode(fi.Mode()), mtime: fi.ModTime()}
	if c.opts.preserve {
		it.uid, it.gid = owners(fi)
	}
	return it
}

// mode is the mode a copy of a file with mode m gets: without preserve
// its permission bits less the umask, as cp gives; with preserve also its
// setuid, setgid and sticky bits, of which finalMode keeps those that
// remain safe on the copy.
func (c *copier) mode(m fs.FileMode) fs.FileMode {
	if c.opts.preserve {
		return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	return m.Perm() &^ c.opts.umask
}

// finalMode returns the mode to give name, the copy of it on fsys: it.mode
// without setuid unless the copy's owner is the source's, and without
// setgid unless its group is the source's. nfscp does not copy owners (the
// copy belongs to whoever runs nfscp, or whom the destination server makes
// of that user), and a set-ID bit that moved to another owner would run
// the program as someone it never ran as: root, when root copies. GNU cp
// -p drops the bits likewise when it cannot keep the owner.
func finalMode(ctx context.Context, fsys fileSystem, name string, it item) (fs.FileMode, error) {
	m := it.mode
	if m&(fs.ModeSetuid|fs.ModeSetgid) == 0 {
		return m, nil
	}
	fi, err := fsys.Lstat(ctx, name)
	if err != nil {
		return 0, err
	}
	uid, gid := owners(fi)
	if !uid.same(it.uid) {
		m &^= fs.ModeSetuid
	}
	if !gid.same(it.gid) {
		m &^= fs.ModeSetgid
	}
	return m, nil
}

// errLinkInWay is the reason a directory of a tree is not copied over a
// symbolic link at the destination. Following it would let the source
// write wherever a link left by an earlier copy points (a server can list
// "d" as a link to /etc in one run and as a directory in the next); GNU cp
// refuses the same.
const errLinkInWay = plainError("is a symbolic link (nfscp does not follow links inside the destination)")

// mkdir creates a directory of the tree, writable by its owner until
// finishDir gives it its mode. An existing directory is used as it is; a
// symbolic link is not followed, so that every directory the copy writes
// into is one it created or found as a directory.
func (c *copier) mkdir(ctx context.Context, it item) error {
	err := it.dstFS.Mkdir(ctx, it.dst.path, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, serr := it.dstFS.Lstat(ctx, it.dst.path)
		switch {
		case serr != nil:
			err = serr
		case fi.IsDir():
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			err = errLinkInWay
		default:
			err = syscall.ENOTDIR
		}
	}
	if err != nil {
		return &opError{name: it.dst.name(), err: err}
	}
	return nil
}

// copyItem creates one file or symbolic link under a temporary name and
// renames it into place, so that the destination never holds a partial copy
// under its own name. On failure the temporary file is removed.
func (c *copier) copyItem(ctx context.Context, it item) error {
	dir, base := path.Split(it.dst.path)
	if dir == "" {
		dir = "."
	}
	var tmp string
	var err error
	if it.kind == itemLink {
		target, err := it.srcFS.Readlink(ctx, it.src.path)
		if err != nil {
			return c.fail(ctx, it, "", sideErr(true, err))
		}
		tmp = path.Join(dir, tempName(base))
		if err = it.dstFS.Symlink(ctx, target, tmp); err != nil {
			return c.fail(ctx, it, "", err)
		}
	} else {
		c.prog.Start(it.dst.path)
		if tmp, err = c.copyFile(ctx, it, dir, base); err != nil {
			return c.fail(ctx, it, tmp, err)
		}
	}
	if err := it.dstFS.Rename(ctx, tmp, it.dst.path); err != nil {
		return c.fail(ctx, it, tmp, err)
	}
	return nil
}

// copyFile writes the data of it.src to a new temporary file in dir and
// gives it its mode and time, returning its path.
func (c *copier) copyFile(ctx context.Context, it item, dir, base string) (string, error) {
	r, err := it.srcFS.Open(ctx, it.src.path)
	if err != nil {
		return "", sideErr(true, err)
	}
	defer r.Close()
	w, tmp, err := it.dstFS.CreateTemp(ctx, dir, base)
	if err != nil {
		return "", err
	}
	var h hash.Hash
	if c.opts.verify {
		h = sha256.New()
	}
	err = c.transfer(ctx, w, r, it.size, h)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return tmp, err
	}
	if h != nil {
		if err := c.verify(ctx, it.dstFS, tmp, h.Sum(nil)); err != nil {
			return tmp, err
		}
	}
	mode, err := finalMode(ctx, it.dstFS, tmp, it)
	if err != nil {
		return tmp, err
	}
	if err := it.dstFS.Chmod(ctx, tmp, mode); err != nil {
		return tmp, err
	}
	if c.opts.preserve {
		if err := it.dstFS.Chtimes(ctx, tmp, it.mtime); err != nil {
			return tmp, err
		}
	}
	return tmp, nil
}

// verify reads the file tmp back and compares its sha256 with want.
func (c *copier) verify(ctx context.Context, fsys fileSystem, tmp string, want []byte) error {
	r, err := fsys.Open(ctx, tmp)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	w := &dstWriter{ctx: ctx, w: h}
	if wt, ok := r.(io.WriterTo); ok {
		_, err = wt.WriteTo(w)
	} else {
		_, err = io.Copy(w, r)
	}
	if err != nil {
		return err
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("verify failed: sha256 of the copy (%x) differs from the source (%x)", got, want)
	}
	return nil
}

// pump copies r to w on the pipelined paths of package nfs4: an NFS source
// is drained with File.WriteTo (READs running ahead), an NFS destination
// filled with File.ReadFrom (WRITEs in flight); NFS to NFS runs both through
// a pipe. Bytes are counted, rate-limited and hashed (h, if not nil) as they
// pass. Errors from the source are marked as such (see sideErr).
func (c *copier) pump(ctx context.Context, w io.Writer, r io.Reader, h hash.Hash) (int64, error) {
	nr, srcNFS := r.(*nfs4.File)
	nw, dstNFS := w.(*nfs4.File)
	switch {
	case srcNFS && dstNFS:
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := nr.WriteTo(&dstWriter{ctx: ctx, w: pw, c: c, h: h})
			if err != nil && !isDstSide(err) {
				err = sideErr(true, err)
			}
			pw.CloseWithError(err)
			done <- err
		}()
		n, werr := nw.ReadFrom(pr)
		pr.CloseWithError(errStopped)
		if rerr := <-done; rerr != nil && !isDstSide(rerr) {
			return n, rerr
		}
		return n, werr
	case srcNFS:
		n, err := nr.WriteTo(&dstWriter{ctx: ctx, w: w, c: c, h: h})
		if err != nil && !isDstSide(err) {
			err = sideErr(true, err)
		}
		return n, err
	default:
		return io.Copy(w, &srcReader{ctx: ctx, r: r, c: c, h: h})
	}
}

// errStopped ends the reading side of a pipe whose writer has stopped.
var errStopped = errors.New("destination stopped")

// srcReader reads the source for the destination's ReadFrom: it counts,
// paces, hashes and stops when ctx ends.
type srcReader struct {
	ctx context.Context
	r   io.Reader
	c   *copier
	h   hash.Hash
}

func (s *srcReader) Read(p []byte) (int, error) {
	if err := context.Cause(s.ctx); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	if n > 0 {
		s.c.account(p[:n], s.h)
		if werr := s.c.limit.wait(s.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil && err != io.EOF {
		err = sideErr(true, err)
	}
	return n, err
}

// dstWriter takes the source's data from its WriteTo; as srcReader, and
// marks the errors of the writer it wraps as the destination's.
type dstWriter struct {
	ctx context.Context
	w   io.Writer
	c   *copier // nil: no counting (verify)
	h   hash.Hash
}

func (d *dstWriter) Write(p []byte) (int, error) {
	if err := context.Cause(d.ctx); err != nil {
		return 0, err
	}
	if d.c != nil {
		d.c.account(p, d.h)
		if err := d.c.limit.wait(d.ctx, len(p)); err != nil {
			return 0, err
		}
	}
	n, err := d.w.Write(p)
	if err != nil {
		err = sideErr(false, err)
	}
	return n, err
}

func (c *copier) account(p []byte, h hash.Hash) {
	if h != nil {
		h.Write(p)
	}
	c.copied.Add(int64(len(p)))
	c.prog.Add(int64(len(p)))
}

// fail turns err, met while copying it, into the run's error and removes
// the temporary file tmp (if any), with a fresh, bounded context since ctx
// may have ended.
func (c *copier) fail(ctx context.Context, it item, tmp string, err error) error {
	if tmp != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		it.dstFS.Remove(rctx, tmp)
		cancel()
	}
	name := it.dst.name()
	switch {
	case ctx.Err() != nil:
		// The run is ending (--timeout, a signal, another file's failure):
		// whatever the library returned, say why.
		if it.dst.remote == nil && it.src.remote != nil {
			name = it.src.name()
		}
		err = context.Cause(ctx)
	case isSrcSide(err):
		name = it.src.name()
	}
	return &opError{name: name, err: err}
}

// sideError marks an error as the source's or the destination's, so that
// the message names the right file.
type sideError struct {
	src bool
	err error
}

func (e *sideError) Error() string { return e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }

func sideErr(src bool, err error) error {
	var se *sideError
	if errors.As(err, &se) {
		return err
	}
	return &sideError{src: src, err: err}
}

func isSrcSide(err error) bool {
	var se *sideError
	return errors.As(err, &se) && se.src
}

func isDstSide(err error) bool {
	var se *sideError
	return errors.As(err, &se) && !se.src
}

// baseName is the name a source gets inside a destination directory.
func baseName(l location) (string, error) {
	p := l.path
	if l.remote == nil {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		p = abs
	}
	b := path.Base(path.Clean(p))
	if b == "/" || b == "." || b == ".." {
		return "", errors.New("cannot copy the root directory; name a directory inside it")
	}
	return b, nil
}

// sameServer reports whether a and b are on the same file system: both
// local, or both on one server address.
func sameServer(a, b location) bool {
	if a.remote == nil || b.remote == nil {
		return a.remote == b.remote
	}
	return a.remote.addr == b.remote.addr
}

// inside reports whether dst is src or lies below it.
func inside(src, dst location) bool {
	if !sameServer(src, dst) {
		return false
	}
	sp, dp := src.path, dst.path
	if src.remote == nil {
		var err1, err2 error
		sp, err1 = filepath.Abs(sp)
		dp, err2 = filepath.Abs(dp)
		if err1 != nil || err2 != nil {
			return false
		}
	}
	return dp == sp || strings.HasPrefix(dp, strings.TrimSuffix(sp, "/")+"/")
}

// sameLocation reports whether a and b might be the same file, which
// SameFile then decides.
func sameLocation(a, b location) bool {
	if a.remote == nil || b.remote == nil {
		return a.remote == b.remote
	}
	return a.remote.key() == b.remote.key()
}

// kindName describes a file type that a copy skips.
func kindName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device file"
	}
	return "special file"
}
