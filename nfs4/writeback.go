package nfs4

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/gonfs/nfs/internal/bufpool"
)

// Write-back: the data of UNSTABLE writes stays with the File until a
// COMMIT shows it on stable storage (RFC 8881 §18.3, §18.32). A COMMIT
// verifier other than the WRITEs' means the server may have lost the
// data, which is then written again FILE_SYNC.

// ErrNotWritten is matched (errors.Is) by the error of File.Sync or
// File.Close when a write through the File since the last Sync failed or
// gave up (its context ended) before the server acknowledged all its data,
// and no later write covered those bytes: they may or may not be in the
// file.
var ErrNotWritten = errors.New("nfs4: a write failed before the server acknowledged its data")

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

// commitAhead is how much uncommitted data ReadFrom lets build up before
// it sends a COMMIT in the background and goes on writing. The buffers
// come free a few megabytes after they were filled, still in the CPU's
// cache, and the server's disk is kept busy in steps rather than in one
// long flush every maxUncommitted bytes, during which ReadFrom waited.
const commitAhead = 16 << 20

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
	gate ctxRWMutex
	// flushing serializes commits.
	flushing ctxMutex
	// abandoned counts the WRITEs (and size changes) whose caller gave up
	// before the reply, until their session slot shows that the server
	// can no longer carry them out (Client.resync).
	abandoned opGroup

	mu    sync.Mutex // guards spans, bytes and lost
	spans []span     // in the order their WRITEs completed
	bytes int        // the data held in spans
	lost  lostWrites // writes since the last Sync that did not complete
}

// lostWrites covers the bytes of writes that did not complete: one range
// from the first such byte to the last, and the first write's error.
type lostWrites struct {
	off, end int64
	err      error // nil: none
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

// notWritten records that n bytes at off were not acknowledged by the
// server because of err: they may or may not have been written.
func (w *writeBack) notWritten(off int64, n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost.err == nil {
		w.lost = lostWrites{off: off, end: off + int64(n), err: err}
		return
	}
	w.lost.off, w.lost.end = min(w.lost.off, off), max(w.lost.end, off+int64(n))
}

// wrote records that n bytes at off were acknowledged: a lost write that
// they cover entirely is certain now, and no longer reported.
func (w *writeBack) wrote(off int64, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost.err != nil && off <= w.lost.off && off+int64(n) >= w.lost.end {
		w.lost = lostWrites{}
	}
}

// takeLost returns, and forgets, the writes recorded by notWritten that
// no later write covered.
func (w *writeBack) takeLost() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.lost
	w.lost = lostWrites{}
	if l.err == nil {
		return nil
	}
	// l.err's text, not l.err: the Sync that reports this did not itself
	// fail for its reason (a context that ended, say).
	return fmt.Errorf("%w: %d bytes at offset %d (%v)", ErrNotWritten, l.end-l.off, l.off, l.err)
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
	if err := w.flushing.lock(ctx); err != nil {
		return 0, err
	}
	defer w.flushing.unlock()
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
	if err := w.gate.lock(ctx); err != nil {
		return 0, err
	}
	defer w.gate.unlock()
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
