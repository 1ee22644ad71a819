package main

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"syscall"

	"github.com/gonfs/nfs/nfs4"
)

// Holes and server-side copies. A file with holes (a sparse file) is
// copied as its data alone: the source's data and holes are found with
// SEEK over NFSv4.2 or lseek's SEEK_DATA and SEEK_HOLE locally, only the
// data is read and written, and the copy is given the source's size, which
// leaves its holes unallocated. A file copied within one NFS server (one
// connection, as nfs://a/x to nfs://a/y is) is copied by the server: CLONE
// where its file system shares blocks, else COPY, data range by data
// range; a server that refuses both gets the data streamed through nfscp.

// sparseSource is a source whose data and holes can be found: *os.File,
// and *nfs4.File over NFSv4.2. nfs4.SeekData and nfs4.SeekHole are Linux's
// SEEK_DATA and SEEK_HOLE.
type sparseSource interface {
	io.ReaderAt
	io.Seeker
}

// sparseDest is a destination written at offsets and sized at the end,
// which leaves what was never written a hole: *os.File and *nfs4.File.
type sparseDest interface {
	io.WriterAt
	Truncate(size int64) error
}

// sectionBuffer is the most one ReadAt or WriteAt of a data range moves:
// over NFS, a few READs or WRITEs in flight (nfs4's Window).
const sectionBuffer = 4 << 20

// transfer copies the data of r, size bytes (as the source's Stat said),
// to w: by the server if r and w are files of one NFS client, as data and
// holes if r has holes, and by pump otherwise.
func (c *copier) transfer(ctx context.Context, w io.Writer, r io.Reader, size int64, h hash.Hash) error {
	src, ok1 := r.(sparseSource)
	dst, ok2 := w.(sparseDest)
	if !ok1 || !ok2 || size <= 0 {
		_, err := c.pump(ctx, w, r, h)
		return err
	}
	// The first hole: the end of the file if it has none.
	firstHole, err := src.Seek(0, nfs4.SeekHole)
	sparse := err == nil && firstHole < size
	if err != nil && ctx.Err() != nil {
		return sideErr(true, err)
	}
	nr, srcNFS := r.(*nfs4.File)
	nw, dstNFS := w.(*nfs4.File)
	if srcNFS && dstNFS {
		done, err := c.offload(ctx, nw, nr, size, sparse, h)
		if done || err != nil {
			return err
		}
	}
	if !sparse {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return sideErr(true, err)
		}
		_, err := c.pump(ctx, w, r, h)
		return err
	}
	skip := func(n int64) { c.skipHole(n, h) }
	return c.copySparse(ctx, dst, src, size, skip, func(off, n int64) error {
		return c.copySection(ctx, dst, src, off, n, h)
	})
}

// copySparse walks src's data and holes up to size: move copies each data
// range, hole is told of each hole skipped, and dst is given the size at
// the end.
func (c *copier) copySparse(ctx context.Context, dst sparseDest, src sparseSource, size int64, hole func(n int64), move func(off, n int64) error) error {
	for off := int64(0); off < size; {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		data, err := src.Seek(off, nfs4.SeekData)
		if errors.Is(err, syscall.ENXIO) {
			data = size // only a hole from off to the end
		} else if err != nil {
			return sideErr(true, err)
		}
		data = min(data, size)
		end := size
		if data < size {
			if end, err = src.Seek(data, nfs4.SeekHole); err != nil {
				return sideErr(true, err)
			}
			end = min(end, size)
		}
		if data < off || (data < size && end <= data) {
			return sideErr(true, fmt.Errorf("data at %d and a hole at %d do not follow %d", data, end, off))
		}
		if data > off {
			hole(data - off)
		}
		if data < size {
			if err := move(data, end-data); err != nil {
				return err
			}
		}
		off = end
	}
	if err := dst.Truncate(size); err != nil {
		return sideErr(false, err)
	}
	return nil
}

// skipHole counts a hole of n bytes as copied, and hashes its zeros.
func (c *copier) skipHole(n int64, h hash.Hash) {
	if h != nil {
		var zeros [64 << 10]byte
		for left := n; left > 0; left -= int64(len(zeros)) {
			h.Write(zeros[:min(left, int64(len(zeros)))])
		}
	}
	c.holes.Add(n)
	c.copied.Add(n)
	c.prog.Add(n)
}

// copySection reads n bytes of src at off and writes them to dst at off,
// counted, paced and hashed as pump's are.
func (c *copier) copySection(ctx context.Context, dst sparseDest, src sparseSource, off, n int64, h hash.Hash) error {
	buf := make([]byte, min(n, sectionBuffer))
	for n > 0 {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		p := buf[:min(n, int64(len(buf)))]
		k, err := src.ReadAt(p, off)
		if k < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the source shrank while copied
			}
			return sideErr(true, err)
		}
		c.account(p, h)
		if err := c.limit.wait(ctx, len(p)); err != nil {
			return err
		}
		if _, err := dst.WriteAt(p, off); err != nil {
			return sideErr(false, err)
		}
		off += int64(len(p))
		n -= int64(len(p))
	}
	return nil
}

// offload has the server copy src to dst, size bytes, and reports whether
// it did: CLONE of the whole file, or COPY of each data range (of the
// whole file unless sparse). A server that refuses both leaves the copy
// to the caller (false, nil), which writes again whatever it copied;
// --stats shows how much the server copied. With --verify (h), the
// source is read once to hash it.
func (c *copier) offload(ctx context.Context, dst, src *nfs4.File, size int64, sparse bool, h hash.Hash) (bool, error) {
	err := dst.CloneRange(src, 0, 0, 0)
	if err == nil {
		c.offloaded.Add(size)
		c.copied.Add(size)
		c.prog.Add(size)
		return true, c.hashSource(ctx, src, h)
	}
	if !errors.Is(err, nfs4.ErrCopyRefused) {
		return false, err
	}
	var done, holes int64 // by COPY, and skipped: counted as copied once all is
	copyRange := func(off, n int64) error {
		k, err := dst.CopyRange(src, off, off, n)
		if err == nil && k < n {
			err = sideErr(true, io.ErrUnexpectedEOF) // the source shrank while copied
		}
		done += k
		c.prog.Add(k)
		return err
	}
	if sparse {
		hole := func(n int64) { holes += n; c.prog.Add(n) }
		err = c.copySparse(ctx, dst, src, size, hole, copyRange)
	} else {
		err = copyRange(0, size)
	}
	if errors.Is(err, nfs4.ErrCopyRefused) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.offloaded.Add(done)
	c.holes.Add(holes)
	c.copied.Add(done + holes)
	if h != nil {
		return true, c.hashSource(ctx, src, h)
	}
	return true, nil
}

// hashSource reads src from its start into h, for --verify of a copy
// whose data did not pass through nfscp.
func (c *copier) hashSource(ctx context.Context, src *nfs4.File, h hash.Hash) error {
	if h == nil {
		return nil
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return sideErr(true, err)
	}
	if _, err := src.WriteTo(&dstWriter{ctx: ctx, w: h}); err != nil {
		return sideErr(true, err)
	}
	return nil
}
