package nfs4

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// NFSv4.2's operations on a file's data (RFC 7862), as File methods: Seek
// with SeekData and SeekHole (SEEK), Allocate (ALLOCATE), PunchHole
// (DEALLOCATE), CopyRange (COPY) and CloneRange (CLONE). Each needs a
// Client whose session is NFSv4.2 (Config.Version, VersionAny by default,
// negotiates it where the server has it); on NFSv4.1 or 4.0 they fail with
// ErrNeedsV42 without asking the server.

// Whence values of File.Seek beyond io.SeekStart, io.SeekCurrent and
// io.SeekEnd, with the values and meaning of Linux's lseek(2) SEEK_DATA and
// SEEK_HOLE. Both need NFSv4.2.
const (
	// SeekData moves to the first byte of data at or after the offset
	// given (an absolute offset). With no data there, Seek fails with an
	// error matching syscall.ENXIO, as lseek does.
	SeekData = 3
	// SeekHole moves to the first byte of a hole at or after the offset
	// given (an absolute offset). The end of the file counts as a hole,
	// so a file without holes yields its size.
	SeekHole = 4
)

// ErrNeedsV42 is the error, wrapped in an *fs.PathError, of an NFSv4.2
// operation on a Client whose session is NFSv4.1 or 4.0: the server did
// not offer 4.2, or Config.Version ruled it out. Like a server's own
// refusal of an operation (NFS4ERR_NOTSUPP), it matches ErrNotSupp and
// errors.ErrUnsupported.
var ErrNeedsV42 = fmt.Errorf("nfs4: the operation needs NFSv4.2, and this Client's session is an earlier minor version: %w", ErrNotSupp)

// ErrCopyRefused is matched by the errors of CopyRange and CloneRange that
// mean the server did not, and will not, do the copy for the client: it
// lacks the operation (NFS4ERR_NOTSUPP, ErrNeedsV42), cannot copy
// synchronously (NFS4ERR_OFFLOAD_NO_REQS) or at all (NFS4ERR_OFFLOAD_DENIED,
// NFS4ERR_XDEV; CLONE also NFS4ERR_INVAL, for offsets its file system cannot
// clone at), or the files belong to different Clients. The caller copies
// the data itself (reads and writes), from where the copy stopped. The
// server's status stays matchable too (errors.Is(err, ErrOffloadNoReqs)).
var ErrCopyRefused = errors.New("nfs4: the server does not copy these files itself")

// has42 reports whether the Client's session is NFSv4.2.
func (c *Client) has42() bool { return !c.v40 && c.minor >= 2 }

// seekData is Seek's SeekData and SeekHole: SEEK from off.
func (f *File) seekData(ctx context.Context, off int64, whence int) (int64, error) {
	if f.dir {
		return 0, syscall.EINVAL
	}
	if off < 0 {
		return 0, syscall.ENXIO // lseek's answer for an offset before the start
	}
	if !f.c.has42() {
		return 0, ErrNeedsV42
	}
	q := seekReq{fh: f.fh, io: &f.io, off: uint64(off), what: contentData}
	if whence == SeekHole {
		q.what = contentHole
	}
	if err := f.callState(ctx, &q); err != nil {
		return 0, err
	}
	if q.res.eof && q.what == contentData {
		// Nothing but a hole from off to the end (RFC 7862 §15.11.3); the
		// Linux client answers lseek likewise.
		return 0, ErrNXIO
	}
	if q.res.off > 1<<63-1 {
		return 0, fmt.Errorf("%w: SEEK offset %d", errBadReply, q.res.off)
	}
	return int64(q.res.off), nil
}

// seekReq is a SEEK under the File's open state.
type seekReq struct {
	fh   []byte
	io   *fileIO
	used *openState
	off  uint64
	what uint32
	res  seekRes
}

func (q *seekReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.seek(&q.used.ioSID, q.off, q.what)
}

func (q *seekReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.seek(&q.res)
}

func (q *seekReq) sentState() *openState { return q.used }

// Allocate makes sure that the n bytes at off have space on the server's
// storage, as fallocate(2) with mode 0 does: later writes there cannot
// fail for lack of space, and the file grows to off+n if it was smaller.
// The data already there is unchanged; a hole allocated reads as zeros.
// It needs NFSv4.2 (ErrNeedsV42) and a file open for writing.
func (f *File) Allocate(off, n int64) error {
	return f.allocate("allocate", opAllocate, off, n)
}

// PunchHole deallocates the n bytes at off (DEALLOCATE): they read as zeros
// afterwards and no longer take space on the server, as fallocate(2) with
// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE does; the file's size does not
// change. Data written through the File and not yet committed is committed
// first, so that a server restart cannot bring it back into the hole. It
// needs NFSv4.2 (ErrNeedsV42) and a file open for writing; a server whose
// file system cannot punch holes answers NFS4ERR_NOTSUPP (ErrNotSupp).
func (f *File) PunchHole(off, n int64) error {
	return f.allocate("punchhole", opDeallocate, off, n)
}

// allocate is Allocate and PunchHole: op is opAllocate or opDeallocate.
func (f *File) allocate(name string, op uint32, off, n int64) error {
	if err := f.enter(name); err != nil {
		return err
	}
	defer f.exit()
	if err := f.writable(); err != nil {
		return pathError(name, f.name, err)
	}
	if off < 0 || n <= 0 || off+n < off {
		return pathError(name, f.name, syscall.EINVAL)
	}
	if !f.c.has42() {
		return pathError(name, f.name, ErrNeedsV42)
	}
	if err := f.settle(f.ctx); err != nil {
		return pathError(name, f.name, err)
	}
	f.io.writes.Add(1)
	defer f.c.cache.invalidateFH(f.fh)
	return pathError(name, f.name, f.callState(f.ctx, &allocateReq{fh: f.fh, io: &f.io, op: op, off: uint64(off), n: uint64(n)}))
}

// settle commits the File's written data, after waiting for WRITEs whose
// callers gave up, as Truncate does before changing the size: no WRITE
// sent before can land, or be sent again, after what follows.
func (f *File) settle(ctx context.Context) error {
	if err := f.io.wb.abandoned.wait(ctx); err != nil {
		return err
	}
	return f.flush(ctx, 0)
}

// allocateReq is an ALLOCATE or DEALLOCATE under the File's open state.
type allocateReq struct {
	fh     []byte
	io     *fileIO
	used   *openState
	op     uint32
	off, n uint64
}

func (q *allocateReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.allocate(q.op, &q.used.ioSID, q.off, q.n)
}

func (q *allocateReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.statusOnly(q.op)
}

func (q *allocateReq) cacheThis() bool       { return true }
func (q *allocateReq) sentState() *openState { return q.used }
func (q *allocateReq) unsettled() *opGroup   { return &q.io.wb.abandoned }
