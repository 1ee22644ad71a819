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
//
// File methods take no context, to fit the io interfaces: each blocks as
// long as the Client's calls do (see Config.Soft), or until the Client is
// closed.

// File is a file or directory opened with Client.Open, OpenFile or Create.
//
// A File is safe for concurrent use: ReadAt and WriteAt may run from many
// goroutines at once, and are pipelined on the session; Read, Write and
// Seek share one offset, guarded by a mutex.
type File struct {
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

// fileIO is a regular file's open state and write-back.
type fileIO struct {
	// state is the open state, replaced as a whole by recovery; requests
	// load it when they are encoded, so that one sent again after a
	// recovery carries the new stateid.
	state    atomic.Pointer[openState]
	reopenMu sync.Mutex // serializes recoverOpen
	owner    []byte     // the File's open owner, for reclaim
	mode     openMode
	stable   uint32 // stable_how4 of every WRITE

	ops sync.WaitGroup // operations under way; Close waits for them
	// pos is held by Read, Write, Seek, ReadFrom and WriteTo from reading
	// the offset until it is updated, so that each sees the others' moves.
	pos sync.Mutex
	wb  writeBack

	// ra is the read-ahead of small Reads and ReadAts, guarded by raMu.
	// writes counts WRITEs and size changes made through this File:
	// read-ahead filled before the latest one is not used.
	raMu   sync.Mutex
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
	s.state.Store(newOpenState(sid, epoch))
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
	f.io.ops.Add(1)
	return nil
}

// exit ends an operation begun by enter.
func (f *File) exit() { f.io.ops.Done() }

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

// Stat returns the file's current attributes from the server.
func (f *File) Stat() (fs.FileInfo, error) {
	if err := f.checkOpen("stat"); err != nil {
		return nil, err
	}
	var attr Attr
	fh := f.fh
	mask := f.c.mask(statMask)
	err := f.c.call(context.Background(), funcRequest{
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
// syscall.EINVAL.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if err := f.enter("seek"); err != nil {
		return 0, err
	}
	defer f.exit()
	f.io.pos.Lock()
	defer f.io.pos.Unlock()
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.offsetNow()
	case io.SeekEnd:
		size, err := f.size(context.Background())
		if err != nil {
			return 0, pathError("seek", f.name, err)
		}
		base = size
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
// written before it is committed first, so that a server restart cannot
// make it reappear past the new end.
func (f *File) Truncate(size int64) error {
	if err := f.enter("truncate"); err != nil {
		return err
	}
	defer f.exit()
	if size < 0 || f.writable() != nil {
		return pathError("truncate", f.name, syscall.EINVAL)
	}
	ctx := context.Background()
	if err := f.flush(ctx, 0); err != nil {
		return pathError("truncate", f.name, err)
	}
	return pathError("truncate", f.name, f.setSize(ctx, size))
}

// setSize sends SETATTR of the size under the open stateid.
func (f *File) setSize(ctx context.Context, size int64) error {
	f.io.writes.Add(1)
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

// Sync commits the file's written data to the server's stable storage, as
// os.File.Sync (fsync) does. Data whose WRITE and COMMIT verifiers differ,
// because the server restarted in between, is written again, FILE_SYNC.
// Without uncommitted data it sends nothing.
func (f *File) Sync() error {
	if err := f.enter("sync"); err != nil {
		return err
	}
	defer f.exit()
	return pathError("sync", f.name, f.flush(context.Background(), 0))
}

// Close commits the file's written data, as Sync does, then releases its
// open state (CLOSE). It waits for the file's operations under way to end
// first; operations after it fail with fs.ErrClosed, as does a second
// Close. The first error is returned; the open state is released even
// when the commit failed.
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
	f.io.ops.Wait()
	ctx := context.Background()
	err := f.flush(ctx, 0)
	f.c.unregister(f)
	if st := f.io.state.Load(); st.lost != nil {
		// Nothing to release on the server; if data was still held, it
		// is reported lost by the flush above.
		if err == nil {
			err = st.lost
		}
	} else if cerr := f.c.closeFile(ctx, f); err == nil {
		err = cerr
	}
	f.io.wb.discard()
	return pathError("close", f.name, err)
}
