package nfs4

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Server-side copies (NFSv4.2): CopyRange sends COPY, CloneRange CLONE,
// each from the saved filehandle (the source) to the current one (the
// destination) in one COMPOUND: PUTFH src, SAVEFH, PUTFH dst, COPY. The data
// never crosses the network.
//
// Only the intra-server, synchronous COPY is sent. The asynchronous form
// ends with the server's CB_OFFLOAD callback, and this client offers the
// server no callback channel (CREATE_SESSION's back channel is never
// bound); a copy between two servers (COPY_NOTIFY) needs both sessions.
// A server that will not copy synchronously answers
// NFS4ERR_OFFLOAD_NO_REQS, which CopyRange reports as ErrCopyRefused.

// maxCopyRedos bounds how often CopyRange copies a range again because
// the server's write verifier changed (it restarted) before the copy was
// committed.
const maxCopyRedos = 2

// beforeCopyCommit, when set (by tests), runs between CopyRange's COPYs
// and its COMMIT.
var beforeCopyCommit func()

// CopyRange copies n bytes of src, from srcOff, to f at dstOff on the
// server (COPY), as copy_file_range(2) does, and returns the number of
// bytes copied: fewer than n only at the end of src, or with an error. Both
// Files must belong to this Client (one session); src open for reading, f
// for writing. A server copies synchronously in pieces (Linux's nfsd at
// most 4 MiB per COPY), each a round trip of a few dozen bytes.
//
// What the server copied UNSTABLE is committed before CopyRange returns,
// and copied again if the server's write verifier changed meanwhile, as
// for WRITE. Data written through either File and not yet committed is
// committed first.
//
// A server that does not copy (no NFSv4.2, NFS4ERR_NOTSUPP,
// NFS4ERR_OFFLOAD_NO_REQS and the like) makes it fail with an error
// matching ErrCopyRefused, after copying nothing or the returned number of
// bytes: the caller copies the rest itself, from srcOff+n.
func (f *File) CopyRange(src *File, srcOff, dstOff, n int64) (int64, error) {
	const op = "copy"
	if err := f.enterPair(op, src); err != nil {
		return 0, err
	}
	defer f.exit()
	defer src.exit()
	if err := f.checkPair(src, srcOff, dstOff, n); err != nil {
		return 0, pathError(op, f.name, err)
	}
	if n == 0 {
		return 0, nil
	}
	ctx := f.ctx
	if err := src.settle(ctx); err != nil {
		return 0, pathError(op, src.name, err)
	}
	if err := f.settle(ctx); err != nil {
		return 0, pathError(op, f.name, err)
	}
	f.io.writes.Add(1)
	defer f.c.cache.invalidateFH(f.fh)
	for redo := 0; ; redo++ {
		done, verfs, err := f.copyPieces(ctx, src, srcOff, dstOff, n)
		if err == nil && len(verfs) > 0 {
			if beforeCopyCommit != nil {
				beforeCopyCommit()
			}
			var ok bool
			ok, err = f.commitCopy(ctx, verfs)
			if err == nil && !ok {
				if redo < maxCopyRedos {
					f.c.rstats.resentBytes.Add(uint64(done))
					f.c.log.Warn("nfs4: write verifier changed before a COPY was committed; copying again",
						"file", f.name, "bytes", done)
					continue
				}
				err = errors.New("nfs4: the server's write verifier kept changing before COPY's data was committed")
				done = 0
			}
		}
		return done, pathError(op, f.name, err)
	}
}

// copyPieces sends COPYs until n bytes are copied or the source ends. It
// returns the bytes copied and the write verifiers of those copied
// UNSTABLE (each once), which a COMMIT must confirm.
func (f *File) copyPieces(ctx context.Context, src *File, srcOff, dstOff, n int64) (int64, []verifier, error) {
	var done int64
	var verfs []verifier
	for done < n {
		q := copyReq{src: src, dst: f, args: copyArgs{srcOff: uint64(srcOff + done), dstOff: uint64(dstOff + done), count: uint64(n - done)}}
		err := f.callPair(ctx, src, &q)
		if err == nil && q.res.async {
			// Asked for a synchronous copy, the server started an
			// asynchronous one: it will complete without us, writing what
			// a fallback would write.
			err = fmt.Errorf("nfs4: the server made the COPY asynchronous, which needs a callback channel this client does not have: %w", ErrCopyRefused)
		}
		if err != nil {
			return done, verfs, copyErr(err, false)
		}
		if q.res.count == 0 {
			break // the end of the source
		}
		done += int64(q.res.count)
		if q.res.committed == unstable4 && (len(verfs) == 0 || verfs[len(verfs)-1] != q.res.verf) {
			verfs = append(verfs, q.res.verf)
		}
	}
	return done, verfs, nil
}

// commitCopy commits f and reports whether every verifier in verfs, those
// of the copies made UNSTABLE, is the COMMIT's.
func (f *File) commitCopy(ctx context.Context, verfs []verifier) (bool, error) {
	verf, err := f.sendCommit(ctx)
	if err != nil {
		return false, err
	}
	for _, v := range verfs {
		if v != verf {
			return false, nil
		}
	}
	return true, nil
}

// CloneRange makes the n bytes of f at dstOff share the storage of src's
// n bytes at srcOff (CLONE), as the FICLONERANGE ioctl does on a local
// file system with reflinks (Btrfs, XFS); n 0 means to the end of src.
// Nothing is copied, on the server or over the network. The server
// commits the result to stable storage before CloneRange returns. File
// systems without reflinks (ext4) refuse with NFS4ERR_NOTSUPP, and those
// that have them want offsets aligned to their block size (NFS4ERR_INVAL
// otherwise): both match ErrCopyRefused, as for CopyRange, and CopyRange
// is the next thing to try.
func (f *File) CloneRange(src *File, srcOff, dstOff, n int64) error {
	const op = "clone"
	if err := f.enterPair(op, src); err != nil {
		return err
	}
	defer f.exit()
	defer src.exit()
	if err := f.checkPair(src, srcOff, dstOff, n); err != nil {
		return pathError(op, f.name, err)
	}
	ctx := f.ctx
	if err := src.settle(ctx); err != nil {
		return pathError(op, src.name, err)
	}
	if err := f.settle(ctx); err != nil {
		return pathError(op, f.name, err)
	}
	f.io.writes.Add(1)
	defer f.c.cache.invalidateFH(f.fh)
	q := copyReq{src: src, dst: f, clone: true, args: copyArgs{srcOff: uint64(srcOff), dstOff: uint64(dstOff), count: uint64(n)}}
	return pathError(op, f.name, copyErr(f.callPair(ctx, src, &q), true))
}

// enterPair enters f and src for op (see File.enter); the caller exits both.
func (f *File) enterPair(op string, src *File) error {
	if src == nil {
		return pathError(op, f.name, syscall.EBADF)
	}
	if err := f.enter(op); err != nil {
		return err
	}
	if err := src.enter(op); err != nil {
		f.exit()
		return err
	}
	return nil
}

// checkPair checks the arguments of a copy from src to f.
func (f *File) checkPair(src *File, srcOff, dstOff, n int64) error {
	switch {
	case f.writable() != nil, src.readable() != nil:
		return syscall.EBADF
	case srcOff < 0 || dstOff < 0 || n < 0 || srcOff+n < srcOff || dstOff+n < dstOff:
		return syscall.EINVAL
	case f.c != src.c:
		return fmt.Errorf("nfs4: the files belong to different Clients: %w", ErrCopyRefused)
	case !f.c.has42():
		return fmt.Errorf("%w (%w)", ErrNeedsV42, ErrCopyRefused)
	}
	return nil
}

// copyErr marks the server's refusals to copy as ErrCopyRefused.
func copyErr(err error, clone bool) error {
	if err == nil || errors.Is(err, ErrCopyRefused) {
		return err
	}
	for _, s := range []Status{ErrNotSupp, ErrOpIllegal, ErrOffloadNoReqs, ErrOffloadDenied, ErrXDev} {
		if errors.Is(err, s) {
			return fmt.Errorf("%w: %w", ErrCopyRefused, err)
		}
	}
	if clone && errors.Is(err, ErrInval) {
		return fmt.Errorf("%w: %w", ErrCopyRefused, err)
	}
	return err
}

// callPair runs q, which carries the open stateids of src and dst, and if
// the server refuses one, re-establishes both Files' open state (the
// reply does not say which) and runs q again, at most maxStateRetries
// times.
func (f *File) callPair(ctx context.Context, src *File, q *copyReq) error {
	for refused := 0; ; refused++ {
		err := f.c.call(ctx, q)
		if err == nil || refused == maxStateRetries || !stateRefused(err) {
			return err
		}
		if err := f.c.recoverOpen(ctx, src, q.usedSrc, err); err != nil {
			return err
		}
		if err := f.c.recoverOpen(ctx, f, q.usedDst, err); err != nil {
			return err
		}
	}
}

// copyReq is a COPY or CLONE from src to dst under their open states.
type copyReq struct {
	src, dst         *File
	clone            bool
	args             copyArgs
	usedSrc, usedDst *openState
	res              copyRes
}

func (q *copyReq) build(c *compound) {
	q.usedSrc, q.usedDst = q.src.io.state.Load(), q.dst.io.state.Load()
	q.args.src, q.args.dst = &q.usedSrc.ioSID, &q.usedDst.ioSID
	c.putfh(q.src.fh)
	c.savefh()
	c.putfh(q.dst.fh)
	if q.clone {
		c.clone(&q.args)
		c.commit(0, 0)
	} else {
		c.copyRange(&q.args)
	}
}

func (q *copyReq) parse(r *reply) error {
	for _, op := range [...]uint32{opPutFH, opSaveFH, opPutFH} {
		if err := r.statusOnly(op); err != nil {
			return err
		}
	}
	if !q.clone {
		q.res = copyRes{}
		return r.copyRange(q.args.count, &q.res)
	}
	if err := r.statusOnly(opClone); err != nil {
		return err
	}
	var verf verifier
	return r.commit(&verf)
}

func (q *copyReq) cacheThis() bool     { return true }
func (q *copyReq) unsettled() *opGroup { return &q.dst.io.wb.abandoned }
