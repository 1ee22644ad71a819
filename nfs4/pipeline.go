package nfs4

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/gonfs/nfs/internal/bufpool"
)

// The fast paths: ReadFrom and WriteTo stream a file with up to
// Config.Window READ or WRITE requests of rsize or wsize bytes in flight,
// which io.Copy picks up in either direction; ReadAt and WriteAt of more
// than one request's worth split it the same way. All of them stop the
// requests in flight at the first error and return only once every
// goroutine they started has ended.

// Compile-time checks that io.Copy finds the fast paths.
var (
	_ io.ReaderFrom = (*File)(nil)
	_ io.WriterTo   = (*File)(nil)
)

// window returns how many READs or WRITEs one transfer keeps in flight.
func (c *Client) window() int { return c.cfg.Window }

// runPieces runs do on [start, end) for each piece of [0, total) of at
// most size bytes, with up to window pieces at once, in order of start.
// do returns how many bytes of its piece it completed; stop says that no
// later piece is needed (the end of the file). At the first error the
// pieces in flight are cancelled and no more are started.
//
// It returns the length of the prefix of [0, total) completed without a
// gap, and the first error that occurred (not the first in file order:
// pieces cancelled because of it fail too).
func runPieces(ctx context.Context, total, size, window int,
	do func(ctx context.Context, start, end int) (n int, stop bool, err error)) (int, error) {
	count := (total + size - 1) / size
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make([]int, count) // bytes completed per piece; each written by one worker
	var (
		next     atomic.Int64
		halt     atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(window, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !halt.Load() {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				start := i * size
				n, stop, err := do(ctx, start, min(total, start+size))
				done[i] = n
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					halt.Store(true)
				}
				if stop {
					halt.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for i, d := range done {
		n += d
		if d < min(total, (i+1)*size)-i*size {
			break
		}
	}
	return n, firstErr
}

// readPieces fills p from off with up to Window READs in flight.
func (f *File) readPieces(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := runPieces(ctx, len(p), f.c.rsize, f.c.window(), func(ctx context.Context, start, end int) (int, bool, error) {
		return f.readChunk(ctx, p[start:end], off+int64(start))
	})
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// writePieces writes p at off with up to Window WRITEs in flight.
func (f *File) writePieces(ctx context.Context, p []byte, off int64) (int, error) {
	return runPieces(ctx, len(p), f.c.wsize, f.c.window(), func(ctx context.Context, start, end int) (int, bool, error) {
		n, _, err := f.writeKeep(ctx, p[start:end], off+int64(start), nil)
		return n, false, err
	})
}

// WriteTo writes the file from its offset to its end to w, and advances
// the offset past what w took, as os.File.WriteTo does; io.Copy(w, f) uses
// it. Up to Config.Window READs run ahead of w, starting with one and
// doubling as the file proves long enough, so a small file costs one READ.
// Errors from w are returned as they are; read errors as *fs.PathError.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if err := f.enter("read"); err != nil {
		return 0, err
	}
	defer f.exit()
	if err := f.readable(); err != nil {
		return 0, pathError("read", f.name, err)
	}
	if err := f.io.pos.lock(f.ctx); err != nil {
		return 0, pathError("read", f.name, err)
	}
	defer f.io.pos.unlock()
	off := f.offsetNow()
	n, rerr, werr := f.writeTo(w, off)
	f.setOffset(off + n)
	if werr != nil {
		return n, werr
	}
	return n, f.wrapErr("read", rerr)
}

// readAhead is one READ of WriteTo, delivered in order. Its buffer is
// picked from the buffers WriteTo has written out when the reply comes,
// the one written last first: a buffer still in the CPU's cache takes the
// data, and then gives it to w (measured on loopback: receiving 1 GiB into
// the same one or two buffers costs the kernel about 90 ms of CPU, into
// eight or more about 150; the window's eight buffers, bound when each
// READ is sent, took turns in the cache).
type readAhead struct {
	buf  *[]byte
	n    int
	eof  bool
	err  error
	done chan struct{} // closed when the fields above are set
}

// writeTo streams the file from off to w. rerr is a read error, werr one
// of w's.
func (f *File) writeTo(w io.Writer, off int64) (written int64, rerr, werr error) {
	ctx, cancel := context.WithCancel(f.ctx)
	size, window := f.c.rsize, f.c.window()
	var (
		queue []*readAhead // READs in flight, in file order
		wg    sync.WaitGroup
		next  = off // offset of the next READ
		ahead = 1   // READs allowed in flight: slow start up to window
	)
	free := bufStack{size: size}
	defer func() {
		cancel()
		wg.Wait()
		for _, ra := range queue {
			bufpool.Put(ra.buf)
		}
		free.drain()
	}()
	for {
		for len(queue) < ahead {
			ra := &readAhead{done: make(chan struct{})}
			at := next
			next += int64(size)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ra.buf, ra.n, ra.eof, ra.err = f.readChunkLate(ctx, size, at, free.pop)
				close(ra.done)
			}()
			queue = append(queue, ra)
		}
		ra := queue[0]
		<-ra.done
		queue = queue[1:]
		if ra.n > 0 {
			m, err := w.Write((*ra.buf)[:ra.n])
			written += int64(m)
			if err == nil && m < ra.n {
				err = io.ErrShortWrite
			}
			if err != nil {
				bufpool.Put(ra.buf)
				return written, nil, err
			}
		}
		free.push(ra.buf)
		if ra.err != nil {
			return written, ra.err, nil
		}
		if ra.eof || ra.n < size {
			return written, nil, nil
		}
		ahead = min(2*ahead, window)
	}
}

// readChunkLate is readChunk of size bytes at off into a buffer pick
// gives when the reply comes (readReq.pick), which it returns.
func (f *File) readChunkLate(ctx context.Context, size int, off int64, pick func() *[]byte) (bp *[]byte, n int, eof bool, err error) {
	q := readReq{fh: f.fh, io: &f.io, off: uint64(off), count: size, pick: pick}
	err = f.callState(ctx, &q)
	if q.bp == nil {
		q.bp = pick() // no data came
	}
	if err != nil {
		return q.bp, 0, false, err
	}
	if q.n > 0 {
		if err := f.io.size.check(ctx, f, q.off, q.off+uint64(q.n)); err != nil {
			return q.bp, 0, false, err
		}
	}
	if q.eof || q.n == size {
		return q.bp, q.n, q.eof, nil
	}
	if q.n == 0 {
		return q.bp, 0, false, errNoIOProgress
	}
	m, eof, err := f.readChunk(ctx, (*q.bp)[q.n:size], off+int64(q.n))
	return q.bp, q.n + m, eof, err
}

// bufStack is a stack of buffers of one size: the one pushed last, most
// likely still in the CPU's cache, is popped first; popping an empty one
// takes a buffer from bufpool. Safe for concurrent use.
type bufStack struct {
	mu   sync.Mutex
	size int
	bufs []*[]byte
}

func (s *bufStack) push(bp *[]byte) {
	s.mu.Lock()
	s.bufs = append(s.bufs, bp)
	s.mu.Unlock()
}

func (s *bufStack) pop() *[]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.bufs)
	if n == 0 {
		return bufpool.Get(s.size)
	}
	bp := s.bufs[n-1]
	s.bufs = s.bufs[:n-1]
	return bp
}

// drain returns the buffers to bufpool.
func (s *bufStack) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, bp := range s.bufs {
		bufpool.Put(bp)
	}
	s.bufs = nil
}

// ReadFrom writes what it reads from r until io.EOF at the file's offset,
// and advances the offset past what was written, as os.File.ReadFrom does;
// io.Copy(f, r) uses it. It reads r in wsize pieces and keeps up to
// Config.Window WRITEs of them in flight; UNSTABLE data stays in those
// buffers, not copies, until committed: in the background every 16 MiB
// while it goes on writing, and before it goes past 64 MiB (Close commits
// the rest). After a failed WRITE the count
// returned ends where the written data first has a gap, though later
// pieces may have been written too. Errors from r are returned as they
// are; write errors as *fs.PathError. With O_APPEND each piece is appended
// by Write instead.
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	if err := f.enter("write"); err != nil {
		return 0, err
	}
	defer f.exit()
	if err := f.writable(); err != nil {
		return 0, pathError("write", f.name, err)
	}
	if f.io.mode.appendMode {
		// Each Write finds the end of the file first; pieces of wsize
		// keep those round trips few.
		buf := bufpool.Get(f.c.wsize)
		defer bufpool.Put(buf)
		return io.CopyBuffer(writerOnly{f}, r, *buf)
	}
	if err := f.io.pos.lock(f.ctx); err != nil {
		return 0, pathError("write", f.name, err)
	}
	defer f.io.pos.unlock()
	off := f.offsetNow()
	n, rerr, werr := f.readFrom(r, off)
	f.setOffset(off + n)
	if werr != nil {
		return n, pathError("write", f.name, werr)
	}
	return n, rerr
}

// writerOnly hides File.ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// readFrom streams r into the file at off. rerr is r's error, werr a
// write or commit error.
func (f *File) readFrom(r io.Reader, off int64) (n int64, rerr, werr error) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	size := f.c.wsize
	var (
		sem        = make(chan struct{}, f.c.window()) // a token per WRITE in flight
		committing = make(chan struct{}, 1)            // held by the COMMIT under way
		wg         sync.WaitGroup
		read       int64 // bytes taken from r and handed to a WRITE

		mu   sync.Mutex
		gap  int64 = -1 // end of the data written without a gap, once a WRITE failed
		wErr error
	)
	fail := func(end int64, err error) {
		mu.Lock()
		if wErr == nil {
			wErr = err
			cancel()
		}
		if gap < 0 || end < gap {
			gap = end
		}
		mu.Unlock()
	}
loop:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		buf := bufpool.Get(size)
		m, err := io.ReadFull(r, *buf)
		if m > 0 {
			at := off + read
			read += int64(m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, kept, err := f.writeKeep(ctx, (*buf)[:m], at, buf)
				if !kept {
					bufpool.Put(buf)
				}
				if err != nil {
					fail(at+int64(w), err)
				}
				<-sem
			}()
		} else {
			bufpool.Put(buf)
			<-sem
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		if err := f.flush(ctx, maxUncommitted); err != nil {
			fail(off+read, err)
			break
		}
		if _, held := f.io.wb.held(); held > commitAhead {
			select {
			case committing <- struct{}{}:
				at := off + read
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := f.flush(ctx, commitAhead); err != nil {
						fail(at, err)
					}
					<-committing
				}()
			default: // one is under way
			}
		}
	}
	wg.Wait()
	if wErr != nil {
		return gap - off, nil, wErr
	}
	return read, rerr, nil
}
