package nfs4

import (
	"context"
	"io"

	"github.com/gonfs/nfs/internal/bufpool"
)

// READ and WRITE: Read, ReadAt, Write and WriteAt, in pieces of at most
// rsize and wsize bytes; small reads are served from a read-ahead. The
// data of UNSTABLE writes is kept by the File's writeBack until COMMIT.

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

// Read reads up to len(p) bytes from the file's offset and advances it, as
// os.File.Read does. At the end of the file it returns 0, io.EOF. A large
// p is read with up to Config.Window READs in flight.
//
// The end of the file is where the server's READ says it is, but data is
// never taken from past the file's size: the size known at open bounds
// the data, and a READ that returns data past it sends a GETATTR, which
// raises the bound to the file's new size or, if the data lies past that
// too, fails the read with an error matching ErrDataPastSize. So a file
// that grows while it is read is read to its new end, one GETATTR per
// READ that passes the last size seen, while a server whose READs never
// report the end cannot make a reader read forever. (A file truncated
// between a READ and that GETATTR fails the same way.) ReadAt, WriteTo
// and fs.ReadFile follow the same rule.
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
	if err := f.io.pos.lock(f.ctx); err != nil {
		return 0, pathError("read", f.name, err)
	}
	defer f.io.pos.unlock()
	off := f.offsetNow()
	var n int
	var err error
	if len(p) < readAheadSize {
		n, err = f.readBuffered(f.ctx, p, off)
	} else {
		n, err = f.readAt(f.ctx, p, off)
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
func (f *File) readBuffered(ctx context.Context, p []byte, off int64) (int, error) {
	if err := f.io.raMu.lock(ctx); err != nil {
		return 0, err
	}
	defer f.io.raMu.unlock()
	ra := &f.io.ra
	gen := f.io.writes.Load()
	if gen != ra.gen || off < ra.off || off >= ra.off+int64(len(ra.buf)) {
		if ra.buf == nil {
			ra.buf = make([]byte, readAheadSize)
		}
		n, err := f.readAt(ctx, ra.buf[:readAheadSize], off)
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
		n, err := f.readAt(f.ctx, p, off)
		return n, f.wrapErr("read", err)
	}
	n := 0
	for n < len(p) {
		m, err := f.readBuffered(f.ctx, p[n:], off+int64(n))
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
		q := readReq{fh: f.fh, io: &f.io, off: uint64(off) + uint64(n), count: len(p) - n, buf: p[n:]}
		if err := f.callState(ctx, &q); err != nil {
			return n, false, err
		}
		if q.n > 0 {
			if err := f.io.size.check(ctx, f, q.off, q.off+uint64(q.n)); err != nil {
				return n, false, err
			}
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

// readReq is a READ of count bytes at off, whose data is read into buf
// straight from the connection, or else copied from the reply. With pick
// set, buf is nil until the reply comes: pick then gives the buffer (bp),
// and buf is the first count bytes of it.
type readReq struct {
	fh    []byte
	io    *fileIO
	used  *openState // the state build sent
	off   uint64
	count int
	buf   []byte
	pick  func() *[]byte
	bp    *[]byte

	n   int  // bytes read
	eof bool // the read reached the end of the file
}

func (q *readReq) build(c *compound) {
	q.used = q.io.state.Load()
	c.putfh(q.fh)
	c.read(&q.used.ioSID, q.off, uint32(q.count))
}

func (q *readReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	data, eof, err := r.read(uint32(q.count))
	if err != nil {
		return err
	}
	q.n, q.eof = len(data), eof
	if len(data) > 0 {
		if buf := q.payloadBuffer(); &data[0] != &buf[0] {
			copy(buf, data) // not read straight into buf (payload.go)
		}
	}
	return nil
}

// payloadBuffer returns where the data goes, picking it first if need be.
// It runs on the connection's reader goroutine (payload.go) or, if the
// data was not read straight into it, the caller's.
func (q *readReq) payloadBuffer() []byte {
	if q.buf == nil && q.pick != nil {
		q.bp = q.pick()
		q.buf = (*q.bp)[:q.count]
	}
	return q.buf
}

func (q *readReq) sentState() *openState { return q.used }

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
	ctx := f.ctx
	if err := f.io.pos.lock(ctx); err != nil {
		return 0, pathError("write", f.name, err)
	}
	defer f.io.pos.unlock()
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
	n, err := f.writeAt(f.ctx, p, off)
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
	if err := wb.gate.rlock(ctx); err != nil {
		// Nothing was sent; Sync and Close report it as any failed write.
		wb.notWritten(off, len(p), err)
		return 0, false, err
	}
	defer wb.gate.runlock()
	n, st, err := f.writeChunk(ctx, p, off, f.io.stable)
	if err != nil {
		wb.notWritten(off+int64(n), len(p)-n, err)
	} else {
		wb.wrote(off, n)
	}
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
		err := f.callState(ctx, &q)
		f.c.cache.invalidateFH(f.fh) // size and times changed, or may have
		if err != nil {
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

func (q *writeReq) parse(r *reply) error {
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	return r.write(uint32(len(q.data)), &q.res)
}

func (q *writeReq) sentState() *openState { return q.used }
func (q *writeReq) unsettled() *opGroup   { return &q.io.wb.abandoned }
