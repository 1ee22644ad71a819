package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gonfs/nfs/internal/bufpool"
)

// File I/O: READ and WRITE in pieces of at most rsize and wsize bytes,
// UNSTABLE writes kept until a COMMIT proves them on stable storage, and
// CLOSE. The os.File methods' behaviour is copied where it applies: the
// same errors (EBADF for a write to a file opened read-only, EISDIR for a
// read of a directory, fs.ErrClosed after Close), each as an *fs.PathError
// with the Op os uses, and io.EOF returned bare.
//
// File methods take no context, to fit the io interfaces: each blocks as
// long as the Client's calls do (see Config.Soft), or until the Client is
// closed.

// fileIO is a regular file's open state and write-back.
type fileIO struct {
	// state is the open state, replaced as a whole by recovery
	// (recover.go); requests load it when they are encoded, so that one
	// sent again after a recovery carries the new stateid.
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
}

// readAheadSize is how much one READ fetches for a Read or ReadAt smaller
// than it, so that small sequential reads (a parser without bufio,
// byte-wise readers) cost one round trip per 64 KiB instead of one per
// call. Larger reads bypass it and go to the server in parallel pieces.
const readAheadSize = 64 << 10

// readCache holds the data of the file from off on, as of write count gen.
type readCache struct {
	buf []byte
	off int64
	gen uint64
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

// Read reads up to len(p) bytes from the file's offset and advances it, as
// os.File.Read does. At the end of the file it returns 0, io.EOF. A large
// p is read with up to Config.Window READs in flight.
func (f *File) Read(p []byte) (int, error) {
	if err := f.enter("read"); err != nil {
		return 0, err
	}
	defer f.exit()
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.readable(); err != nil {
		return 0, pathError("read", f.name, err)
	}
	f.io.pos.Lock()
	defer f.io.pos.Unlock()
	off := f.offsetNow()
	var n int
	var err error
	if len(p) < readAheadSize {
		n, err = f.readBuffered(p, off)
	} else {
		n, err = f.readAt(context.Background(), p, off)
	}
	f.setOffset(off + int64(n))
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, f.wrapErr("read", err)
}

// readBuffered serves a small read at off from the read-ahead, refilling it
// with one READ of readAheadSize when off falls outside it or a write has
// happened since. Like Read, it may return less than len(p) before the end.
func (f *File) readBuffered(p []byte, off int64) (int, error) {
	f.io.raMu.Lock()
	defer f.io.raMu.Unlock()
	ra := &f.io.ra
	gen := f.io.writes.Load()
	if gen != ra.gen || off < ra.off || off >= ra.off+int64(len(ra.buf)) {
		if ra.buf == nil {
			ra.buf = make([]byte, readAheadSize)
		}
		n, err := f.readAt(context.Background(), ra.buf[:readAheadSize], off)
		ra.buf, ra.off, ra.gen = ra.buf[:n], off, gen
		if n == 0 {
			return 0, err
		}
	}
	return copy(p, ra.buf[off-ra.off:]), nil
}

// ReadAt reads len(p) bytes at off, as os.File.ReadAt does: when it reads
// fewer it returns an error, io.EOF at the end of the file. It does not
// use or move the file's offset, and may be called from many goroutines at
// once; their READs are pipelined on the session.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.enter("read"); err != nil {
		return 0, err
	}
	defer f.exit()
	if off < 0 {
		return 0, pathError("readat", f.name, errNegativeOffset)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.readable(); err != nil {
		return 0, pathError("read", f.name, err)
	}
	if len(p) >= readAheadSize {
		n, err := f.readAt(context.Background(), p, off)
		return n, f.wrapErr("read", err)
	}
	n := 0
	for n < len(p) {
		m, err := f.readBuffered(p[n:], off+int64(n))
		n += m
		if m == 0 {
			return n, f.wrapErr("read", err)
		}
	}
	return n, nil
}

// readAt fills p from off, returning io.EOF if the file ends first.
func (f *File) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if len(p) > f.c.rsize {
		return f.readPieces(ctx, p, off)
	}
	n, _, err := f.readChunk(ctx, p, off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// readChunk fills p, at most rsize bytes, from off, sending READ again
// after a short read. It returns fewer bytes than len(p) only at the end
// of the file (eof) or with an error.
func (f *File) readChunk(ctx context.Context, p []byte, off int64) (n int, eof bool, err error) {
	for n < len(p) {
		q := readReq{fh: f.fh, io: &f.io, off: uint64(off) + uint64(n), buf: p[n:]}
		if err := f.callState(ctx, &q); err != nil {
			return n, false, err
		}
		n += q.n
		if q.eof {
			return n, true, nil
		}
		if q.n == 0 {
			return n, false, errNoIOProgress
		}
	}
	return n, false, nil
}

// readReq is a READ of len(buf) bytes at off, whose data is copied into
// buf straight from the reply.
type readReq struct {
	fh   []byte
	io   *fileIO
	used *openState // the state build sent
	off  uint64
	buf  []byte

	n   int  // bytes read
	eof bool // the read reached the end of the file
}

func (q *readReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.read(&q.used.ioSID, q.off, uint32(len(q.buf)))
}

func (q *readReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	data, eof, err := r.read(uint32(len(q.buf)))
	if err != nil {
		return err
	}
	q.n, q.eof = copy(q.buf, data), eof
	return nil
}

// Write writes p at the file's offset and advances it, as os.File.Write
// does; with O_APPEND, at the end of the file, read from the server first.
// A large p is written with up to Config.Window WRITEs in flight.
func (f *File) Write(p []byte) (int, error) {
	if err := f.enter("write"); err != nil {
		return 0, err
	}
	defer f.exit()
	if err := f.writable(); err != nil {
		return 0, pathError("write", f.name, err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	ctx := context.Background()
	f.io.pos.Lock()
	defer f.io.pos.Unlock()
	off := f.offsetNow()
	if f.io.mode.appendMode {
		size, err := f.size(ctx)
		if err != nil {
			return 0, pathError("write", f.name, err)
		}
		off = size
	}
	n, err := f.writeAt(ctx, p, off)
	f.setOffset(off + int64(n))
	return n, f.wrapErr("write", err)
}

// WriteAt writes p at off, as os.File.WriteAt does; it fails on a file
// opened with O_APPEND. It does not use or move the file's offset, and may
// be called from many goroutines at once.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.enter("write"); err != nil {
		return 0, err
	}
	defer f.exit()
	if f.io.mode.appendMode {
		return 0, pathError("writeat", f.name, errWriteAtInAppendMode)
	}
	if off < 0 {
		return 0, pathError("writeat", f.name, errNegativeOffset)
	}
	if err := f.writable(); err != nil {
		return 0, pathError("write", f.name, err)
	}
	n, err := f.writeAt(context.Background(), p, off)
	return n, f.wrapErr("write", err)
}

// writeAt writes p at off. When the data kept for COMMIT outgrows its
// bound, it commits before returning.
func (f *File) writeAt(ctx context.Context, p []byte, off int64) (int, error) {
	var n int
	var err error
	if len(p) > f.c.wsize {
		n, err = f.writePieces(ctx, p, off)
	} else {
		n, _, err = f.writeKeep(ctx, p, off, nil)
	}
	if ferr := f.flush(ctx, maxUncommitted); err == nil {
		err = ferr
	}
	return n, err
}

// writeKeep writes p, at most wsize bytes, at off, and keeps what the
// server wrote UNSTABLE until a COMMIT: owned, the pooled buffer p lies in
// (kept then reports that the write-back took it over), or else a copy.
func (f *File) writeKeep(ctx context.Context, p []byte, off int64, owned *[]byte) (n int, kept bool, err error) {
	wb := &f.io.wb
	wb.gate.RLock()
	defer wb.gate.RUnlock()
	n, st, err := f.writeChunk(ctx, p, off, f.io.stable)
	if n > 0 && st.unstable {
		buf := owned
		if buf == nil {
			buf = bufpool.Get(n)
			copy(*buf, p[:n])
		}
		wb.add(span{off: off, buf: buf, n: n, verf: st.verf, mixed: st.mixed})
		kept = owned != nil
	}
	return n, kept, err
}

// writeState sums up the WRITE results of one piece.
type writeState struct {
	unstable bool     // some part awaits COMMIT
	verf     verifier // the first part's write verifier
	mixed    bool     // parts came with different verifiers
	seen     bool
}

// writeChunk writes p, at most wsize bytes, at off with the given
// stable_how4, sending WRITE again for what a short write left.
func (f *File) writeChunk(ctx context.Context, p []byte, off int64, stable uint32) (n int, st writeState, err error) {
	for n < len(p) {
		q := writeReq{fh: f.fh, io: &f.io, off: uint64(off) + uint64(n), stable: stable, data: p[n:]}
		f.io.writes.Add(1)
		if err := f.callState(ctx, &q); err != nil {
			return n, st, err
		}
		if q.res.count == 0 {
			return n, st, errNoIOProgress
		}
		n += int(q.res.count)
		if q.res.committed == unstable4 {
			st.unstable = true
		}
		switch {
		case !st.seen:
			st.verf, st.seen = q.res.verf, true
		case q.res.verf != st.verf:
			st.mixed = true
		}
	}
	return n, st, nil
}

// writeReq is a WRITE of data at off.
type writeReq struct {
	fh     []byte
	io     *fileIO
	used   *openState // the state build sent
	off    uint64
	stable uint32
	data   []byte

	res writeRes
}

func (q *writeReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.write(&q.used.ioSID, q.off, q.stable, q.data)
}

func (q *readReq) sentState() *openState  { return q.used }
func (q *writeReq) sentState() *openState { return q.used }

// stateRequest is a request that carries the File's open stateid, loaded
// when it is encoded; sentState is the state its latest encoding sent.
type stateRequest interface {
	request
	sentState() *openState
}

// callState runs q, and if the server refuses the stateid it carried
// (revoked, expired, unknown), re-establishes the File's open state and
// runs q again, at most maxStateRetries times.
func (f *File) callState(ctx context.Context, q stateRequest) error {
	for refused := 0; ; refused++ {
		err := f.c.call(ctx, q)
		if err == nil || refused == maxStateRetries || !stateRefused(err) {
			return err
		}
		if err := f.c.recoverOpen(ctx, f, q.sentState(), err); err != nil {
			return err
		}
	}
}

// maxStateRetries bounds how often one READ, WRITE or SETATTR is sent
// again after the server refused the File's stateid and it was recovered.
const maxStateRetries = 2

func (q *writeReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.write(uint32(len(q.data)), &q.res)
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

// flush commits the uncommitted data if there is more than above bytes.
func (f *File) flush(ctx context.Context, above int) error {
	resent, err := f.io.wb.flush(ctx, above, f)
	if resent > 0 {
		f.c.rstats.resentBytes.Add(uint64(resent))
		f.c.log.Warn("nfs4: write verifier changed, uncommitted data written again",
			"file", f.name, "bytes", resent)
	}
	return err
}

// sendCommit sends COMMIT of the whole file and returns its verifier.
func (f *File) sendCommit(ctx context.Context) (verifier, error) {
	var verf verifier
	err := f.c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putfh(f.fh); cmp.commit(0, 0) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.commit(&verf)
		},
	})
	return verf, err
}

// sendStable writes data at off FILE_SYNC.
func (f *File) sendStable(ctx context.Context, off int64, data []byte) error {
	for len(data) > 0 {
		p := data[:min(len(data), f.c.wsize)]
		_, st, err := f.writeChunk(ctx, p, off, fileSync4)
		if err != nil {
			return err
		}
		if st.unstable {
			return errNotStable
		}
		data, off = data[len(p):], off+int64(len(p))
	}
	return nil
}

// maxUncommitted bounds the data a File keeps for COMMIT: a write that
// takes it past this commits first.
const maxUncommitted = 64 << 20

// stableStore is the server side of the write-back: COMMIT, and a
// FILE_SYNC write for data whose UNSTABLE write the server may have lost.
// *File implements it; tests supply their own.
type stableStore interface {
	sendCommit(ctx context.Context) (verifier, error)
	sendStable(ctx context.Context, off int64, data []byte) error
}

// writeBack keeps the data of UNSTABLE writes, and the verifier each
// WRITE returned, until a COMMIT whose verifier matches them all shows the
// data on stable storage. A server that restarted in between returns a
// different verifier and may have lost the data, which is then written
// again FILE_SYNC: nothing acknowledged is lost. A writeBack is safe for
// concurrent use.
type writeBack struct {
	// gate is held shared by each write from sending its WRITE until its
	// data is recorded, and exclusively while data is written again, so
	// that no newer write can be overtaken by the older data.
	gate sync.RWMutex
	// flushing serializes commits.
	flushing sync.Mutex

	mu    sync.Mutex // guards spans and bytes
	spans []span     // in the order their WRITEs completed
	bytes int        // the data held in spans
}

// span is the data of one write awaiting COMMIT.
type span struct {
	off   int64
	buf   *[]byte // from bufpool; the data is (*buf)[:n]
	n     int
	verf  verifier // the WRITE's verifier
	mixed bool     // written under several verifiers: matches none
}

func (w *writeBack) add(s span) {
	w.mu.Lock()
	w.spans = append(w.spans, s)
	w.bytes += s.n
	w.mu.Unlock()
}

// held returns the number of spans and bytes awaiting COMMIT.
func (w *writeBack) held() (spans, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.spans), w.bytes
}

// flush commits the held data if there is more than above bytes of it,
// returning how many bytes had to be written again.
func (w *writeBack) flush(ctx context.Context, above int, st stableStore) (resent int, err error) {
	if _, b := w.held(); b == 0 || b <= above {
		return 0, nil
	}
	w.flushing.Lock()
	defer w.flushing.Unlock()
	n, b := w.held()
	if n == 0 || b <= above {
		return 0, nil // another flush did it
	}
	// The first n spans were recorded before COMMIT is sent, so it
	// covers them; spans added meanwhile wait for the next one.
	verf, err := st.sendCommit(ctx)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	match := true
	for _, s := range w.spans[:n] {
		if s.mixed || s.verf != verf {
			match = false
			break
		}
	}
	if match {
		w.dropLocked(n)
		w.mu.Unlock()
		return 0, nil
	}
	w.mu.Unlock()
	return w.resend(ctx, st, verf)
}

// resend writes held spans again, FILE_SYNC, oldest first, with no other
// write in flight, and drops each once written. A span written with the
// verifier that the COMMIT just returned is stable already and is skipped,
// unless it overlaps an older span that is written again: its newer data
// must land last.
func (w *writeBack) resend(ctx context.Context, st stableStore, committed verifier) (resent int, err error) {
	w.gate.Lock()
	defer w.gate.Unlock()
	w.mu.Lock()
	spans := w.spans
	w.mu.Unlock()
	// No span is added while gate is held, and flushing keeps other
	// flushes out, so spans stays the head of w.spans throughout.
	var again ranges
	for i, s := range spans {
		end := s.off + int64(s.n)
		if !s.mixed && s.verf == committed && !again.overlaps(s.off, end) {
			continue // the COMMIT that returned committed made it stable
		}
		again.add(s.off, end)
		if err := st.sendStable(ctx, s.off, (*s.buf)[:s.n]); err != nil {
			w.mu.Lock()
			w.dropLocked(i)
			w.mu.Unlock()
			return resent, err
		}
		resent += s.n
	}
	w.mu.Lock()
	w.dropLocked(len(spans))
	w.mu.Unlock()
	return resent, nil
}

// dropLocked releases the first n spans.
func (w *writeBack) dropLocked(n int) {
	for i := range w.spans[:n] {
		w.bytes -= w.spans[i].n
		bufpool.Put(w.spans[i].buf)
		w.spans[i] = span{}
	}
	rest := copy(w.spans, w.spans[n:])
	clear(w.spans[rest:])
	w.spans = w.spans[:rest]
}

// ranges is a set of byte ranges, kept sorted and merged.
type ranges []struct{ start, end int64 }

// overlaps reports whether [start, end) overlaps the set.
func (r ranges) overlaps(start, end int64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].end > start })
	return i < len(r) && r[i].start < end
}

// add puts [start, end) into the set.
func (r *ranges) add(start, end int64) {
	s := *r
	i := sort.Search(len(s), func(i int) bool { return s[i].end >= start })
	j := i
	for j < len(s) && s[j].start <= end {
		start, end = min(start, s[j].start), max(end, s[j].end)
		j++
	}
	s = slices.Replace(s, i, j, struct{ start, end int64 }{start, end})
	*r = s
}

// discard releases every span, committed or not.
func (w *writeBack) discard() {
	w.mu.Lock()
	w.dropLocked(len(w.spans))
	w.mu.Unlock()
}
