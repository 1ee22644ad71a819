package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"syscall"
)

// Open files: a File's state, offset and life from open to Close (CLOSE);
// its READs and WRITEs are in readwrite.go, its write-back in
// writeback.go. The os.File methods' behaviour is copied where it applies:
// the same errors (EBADF for a write to a file opened read-only, EISDIR
// for a read of a directory, fs.ErrClosed after Close), each as an
// *fs.PathError with the Op os uses, and io.EOF returned bare.

// File is a file or directory opened with Client.Open, OpenFile or Create.
//
// File methods take no context, to fit the io interfaces. A File from Open
// runs its calls under context.Background(): each blocks as long as the
// Client's calls do (see Config.Soft), or until the Client is closed.
// WithContext returns a view of the File whose calls end with a context.
//
// A File is safe for concurrent use: ReadAt and WriteAt may run from many
// goroutines at once, and are pipelined on the session; Read, Write and
// Seek share one offset, guarded by a mutex.
type File struct {
	*fileCore
	ctx context.Context // every call of this view runs under it
}

// fileCore is an open file, shared by all views of it (File.WithContext).
type fileCore struct {
	c    *Client
	name string // as given to Open, for errors and FileInfo
	fh   []byte // immutable after open
	dir  bool   // a directory: no open state, ReadDir only

	mu     sync.Mutex // guards offset and closed
	offset int64
	closed bool

	io   fileIO   // open state, read-ahead and write-back
	list dirState // READDIR cursor of a directory; see dir.go
}

// newFile returns a File for fh, running its calls under
// context.Background().
func newFile(c *Client, name string, fh []byte, dir bool) *File {
	return &File{fileCore: &fileCore{c: c, name: name, fh: fh, dir: dir}, ctx: context.Background()}
}

// WithContext returns a view of f whose calls run under ctx: once ctx
// ends, a call waiting for the server (or for another call of the file)
// returns an error matching ctx's, context.Canceled or
// context.DeadlineExceeded. io.Copy through the view stops with it:
//
//	_, err := io.Copy(dst, f.WithContext(ctx)) // WriteTo: READs in flight
//	_, err = io.Copy(f.WithContext(ctx), src)  // ReadFrom: WRITEs in flight
//
// The view is f itself in all else: the same open state, offset,
// read-ahead and uncommitted data; closing either closes both. A File from
// Open runs under context.Background(), not the context given to Open,
// which bounds the open alone.
//
// A call that gives up leaves its request to the server: a READ's late
// reply is dropped, a WRITE's data is not counted as written but may
// still be (see Sync), a COMMIT's data stays held for the next Sync. The
// session slot the request holds is kept from other calls until the
// server's reply shows what became of it, or the session ends.
func (f *File) WithContext(ctx context.Context) *File {
	if ctx == nil {
		panic("nfs4: File.WithContext with a nil Context")
	}
	return &File{fileCore: f.fileCore, ctx: ctx}
}

// fileIO is a regular file's open state and write-back.
type fileIO struct {
	// state is the open state, replaced as a whole by recovery; requests
	// load it when they are encoded, so that one sent again after a
	// recovery carries the new stateid.
	state    atomic.Pointer[openState]
	reopenMu ctxMutex // serializes recoverOpen
	owner    []byte   // the File's open owner, for reclaim
	oo       *owner40 // NFSv4.0: the open owner's sequence; nil in 4.1
	mode     openMode
	stable   uint32 // stable_how4 of every WRITE

	ops opGroup // operations under way; Close waits for them
	// pos is held by Read, Write, Seek, ReadFrom and WriteTo from reading
	// the offset until it is updated, so that each sees the others' moves.
	pos ctxMutex
	wb  writeBack

	// ra is the read-ahead of small Reads and ReadAts, guarded by raMu.
	// writes counts WRITEs and size changes made through this File:
	// read-ahead filled before the latest one is not used.
	raMu   ctxMutex
	ra     readCache
	writes atomic.Uint64

	size sizeBound // how far READ data may go; see File.Read
}

// Errors of this file's operations.
var (
	errNegativeOffset = errors.New("nfs4: negative offset")
	// errWriteAtInAppendMode is os's error for WriteAt on an O_APPEND file.
	errWriteAtInAppendMode = errors.New("nfs4: invalid use of WriteAt on file opened with O_APPEND")
	errNoIOProgress        = errors.New("nfs4: server transferred no data and did not report end of file")
	errNotStable           = errors.New("nfs4: server did not write FILE_SYNC data to stable storage")
)

// init sets up the open state sid, of client ID epoch epoch, of a file
// opened by owner with mode m.
func (s *fileIO) init(c *Client, sid stateID, epoch uint64, owner []byte, m openMode) {
	s.state.Store(s.newState(sid, epoch))
	s.owner, s.mode = owner, m
	s.stable = unstable4
	if c.cfg.FileSync || m.sync {
		s.stable = fileSync4
	}
}

// enter starts an operation: it fails with fs.ErrClosed once the file is
// closed, and otherwise makes Close wait until exit.
func (f *File) enter(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return pathError(op, f.name, fs.ErrClosed)
	}
	if st := f.io.state.Load(); st != nil && st.lost != nil {
		return pathError(op, f.name, st.lost)
	}
	f.io.ops.add()
	return nil
}

// exit ends an operation begun by enter.
func (f *File) exit() { f.io.ops.done() }

func (f *File) offsetNow() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offset
}

func (f *File) setOffset(off int64) {
	f.mu.Lock()
	f.offset = off
	f.mu.Unlock()
}

// readable reports why f cannot be read, in os's terms.
func (f *File) readable() error {
	switch {
	case f.dir:
		return ErrIsDir
	case !f.io.mode.read:
		return syscall.EBADF
	}
	return nil
}

// writable reports why f cannot be written, in os's terms: a directory is
// open read-only.
func (f *File) writable() error {
	if f.dir || !f.io.mode.write {
		return syscall.EBADF
	}
	return nil
}

// wrapErr wraps err for op, leaving nil and io.EOF as they are.
func (f *File) wrapErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return pathError(op, f.name, err)
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Stat returns the file's attributes: from the metadata cache while they
// are valid there (Config.ACRegMin), otherwise from the server. Open
// fetched them, and writes and size changes through any File of this
// Client invalidate them.
func (f *File) Stat() (fs.FileInfo, error) {
	if err := f.checkOpen("stat"); err != nil {
		return nil, err
	}
	if attr, ok := f.c.cache.getFH(f.fh); ok {
		return newFileInfo(f.name, attr), nil
	}
	var attr Attr
	fh := f.fh
	mask := f.c.mask(statMask)
	g := f.c.cache.begin()
	err := f.c.call(f.ctx, funcRequest{
		b: func(cmp *compound) { cmp.putfh(fh); cmp.getattr(mask) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.getattr(&attr)
		},
	})
	if err != nil {
		return nil, pathError("stat", f.name, err)
	}
	f.c.cache.putFH(fh, &attr, g)
	return newFileInfo(f.name, attr), nil
}

// checkOpen returns fs.ErrClosed, wrapped for op, once the file is closed.
func (f *File) checkOpen(op string) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return pathError(op, f.name, fs.ErrClosed)
	}
	return nil
}

// Seek sets the offset for the next Read or Write, as os.File.Seek does:
// whence is io.SeekStart, io.SeekCurrent or io.SeekEnd (which reads the
// size from the server). A resulting negative offset is an error matching
// syscall.EINVAL. Over NFSv4.2, whence may also be SeekData or SeekHole,
// which ask the server (SEEK) for the next data or hole at or after
// offset, as lseek(2)'s SEEK_DATA and SEEK_HOLE do; over 4.1 and 4.0 they
// fail with ErrNeedsV42.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if err := f.enter("seek"); err != nil {
		return 0, err
	}
	defer f.exit()
	if err := f.io.pos.lock(f.ctx); err != nil {
		return 0, pathError("seek", f.name, err)
	}
	defer f.io.pos.unlock()
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.offsetNow()
	case io.SeekEnd:
		size, err := f.size(f.ctx)
		if err != nil {
			return 0, pathError("seek", f.name, err)
		}
		base = size
	case SeekData, SeekHole:
		off, err := f.seekData(f.ctx, offset, whence)
		if err != nil {
			return 0, pathError("seek", f.name, err)
		}
		f.setOffset(off)
		return off, nil
	default:
		return 0, pathError("seek", f.name, syscall.EINVAL)
	}
	off := base + offset
	if off < 0 || (offset > 0 && off < base) {
		return 0, pathError("seek", f.name, syscall.EINVAL)
	}
	f.setOffset(off)
	return off, nil
}

// size reads the file's size from the server.
func (f *File) size(ctx context.Context) (int64, error) {
	var attr Attr
	err := f.c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putfh(f.fh); cmp.getattr(MaskOf(AttrSize)) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.getattr(&attr)
		},
	})
	if err != nil {
		return 0, err
	}
	if !attr.Mask.Has(AttrSize) || attr.Size > 1<<63-1 {
		return 0, errors.New("nfs4: server did not report a usable file size")
	}
	return int64(attr.Size), nil
}

// Truncate changes the file's size, as os.File.Truncate does. Data
// written before it is committed first, and WRITEs whose callers gave up
// settled, so that neither a server restart nor a late WRITE can make it
// reappear past the new end.
func (f *File) Truncate(size int64) error {
	if err := f.enter("truncate"); err != nil {
		return err
	}
	defer f.exit()
	if size < 0 || f.writable() != nil {
		return pathError("truncate", f.name, syscall.EINVAL)
	}
	if err := f.io.wb.abandoned.wait(f.ctx); err != nil {
		return pathError("truncate", f.name, err)
	}
	if err := f.flush(f.ctx, 0); err != nil {
		return pathError("truncate", f.name, err)
	}
	return pathError("truncate", f.name, f.setSize(f.ctx, size))
}

// setSize sends SETATTR of the size under the open stateid.
func (f *File) setSize(ctx context.Context, size int64) error {
	f.io.writes.Add(1)
	defer f.c.cache.invalidateFH(f.fh)
	return f.callState(ctx, &setSizeReq{fh: f.fh, io: &f.io, size: sattr{mask: MaskOf(AttrSize), size: uint64(size)}})
}

// setSizeReq is a SETATTR of the size, under the File's open state.
type setSizeReq struct {
	fh   []byte
	io   *fileIO
	used *openState // the state build sent
	size sattr
}

func (q *setSizeReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.setattr(&q.used.ioSID, &q.size)
}

func (q *setSizeReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	var set AttrMask
	return r.setattr(&set)
}

func (q *setSizeReq) cacheThis() bool       { return true }
func (q *setSizeReq) sentState() *openState { return q.used }
func (q *setSizeReq) unsettled() *opGroup   { return &q.io.wb.abandoned }

// Sync commits the file's written data to the server's stable storage, as
// os.File.Sync (fsync) does. Data whose WRITE and COMMIT verifiers differ,
// because the server restarted in between, is written again, FILE_SYNC.
// Without uncommitted data it sends nothing.
//
// A write through the File that failed or gave up (its context ended)
// since the last Sync, and whose bytes no later write through the File
// wrote again, is reported by this one, once, with an error matching
// ErrNotWritten, after the rest was committed. Sync first waits
// until the server has answered, or can no longer carry out, every WRITE
// whose caller gave up: once Sync returns, none of them can land later and
// overwrite newer data.
func (f *File) Sync() error {
	if err := f.enter("sync"); err != nil {
		return err
	}
	defer f.exit()
	return pathError("sync", f.name, f.sync(f.ctx))
}

// sync is Sync's work, and Close's first step.
func (f *File) sync(ctx context.Context) error {
	if err := f.io.wb.abandoned.wait(ctx); err != nil {
		return err
	}
	if err := f.flush(ctx, 0); err != nil {
		return err
	}
	return f.io.wb.takeLost()
}

// Close commits the file's written data, as Sync does, then releases its
// open state (CLOSE). It waits for the file's operations under way to end
// first; operations after it fail with fs.ErrClosed, as does a second
// Close. The first error is returned; the open state is released even
// when the commit failed.
//
// If the File's context (WithContext) ends first, Close returns its error
// and the file is closed all the same: data not yet committed is not known
// to be on stable storage, and the open state is released in the
// background, once the operations under way have ended and the server
// answers, or when the Client is closed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return pathError("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	f.mu.Unlock()
	if f.dir {
		return nil
	}
	ctx := f.ctx
	err := f.io.ops.wait(ctx)
	if err == nil {
		err = f.sync(ctx)
		if ctx.Err() == nil {
			if rerr := f.release(ctx); err == nil {
				err = rerr
			}
		}
	}
	if ctx.Err() != nil && !f.c.spawn(func() { f.release(f.c.bgCtx) }) {
		f.c.unregister(f)
		f.io.wb.discard()
	}
	return pathError("close", f.name, err)
}

// release ends the open state of f, closed, once its operations under way
// have ended: CLOSE, unless recovery lost the state. It drops the data held
// for COMMIT. A CLOSE sent again, after one whose caller gave up, finds the
// state gone, which is no error.
func (f *File) release(ctx context.Context) error {
	if err := f.io.ops.wait(ctx); err != nil {
		return err
	}
	f.c.unregister(f)
	defer f.io.wb.discard()
	if st := f.io.state.Load(); st.lost != nil {
		// Nothing to release on the server; if data was still held, it
		// is reported lost by the commit before.
		return st.lost
	}
	return f.c.closeFile(ctx, f)
}
