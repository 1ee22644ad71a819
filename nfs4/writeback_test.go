package nfs4

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/internal/testutil"
)

// memStore is a stableStore over a byte slice that can "restart": it then
// loses its unstable data and gets a new write verifier.
type memStore struct {
	stable, cache []byte
	verf          verifier
	commits       int
	resent        []int64 // offsets written FILE_SYNC, in order
	commitErr     error
	stableErrAt   int // fail the stableErrAt'th FILE_SYNC write (1-based); 0 never
}

// write is an UNSTABLE WRITE: it returns the verifier the span records.
func (m *memStore) write(off int64, data string) verifier {
	m.cache = grow(m.cache, int(off)+len(data))
	copy(m.cache[off:], data)
	return m.verf
}

func (m *memStore) restart() {
	m.cache = append(m.cache[:0], m.stable...)
	m.verf[0]++
}

func (m *memStore) sendCommit(context.Context) (verifier, error) {
	m.commits++
	if m.commitErr != nil {
		return verifier{}, m.commitErr
	}
	m.stable = append(m.stable[:0], m.cache...)
	return m.verf, nil
}

func (m *memStore) sendStable(_ context.Context, off int64, data []byte) error {
	if len(m.resent)+1 == m.stableErrAt {
		return errors.New("injected FILE_SYNC failure")
	}
	m.resent = append(m.resent, off)
	m.cache = grow(m.cache, int(off)+len(data))
	copy(m.cache[off:], data)
	m.stable = append(m.stable[:0], m.cache...)
	return nil
}

func grow(b []byte, n int) []byte {
	if len(b) < n {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

// keep records an UNSTABLE write of data at off in wb, as writeKeep does.
func keep(wb *writeBack, m *memStore, off int64, data string) {
	verf := m.write(off, data)
	buf := bufpool.Get(len(data))
	copy(*buf, data)
	wb.add(span{off: off, buf: buf, n: len(data), verf: verf})
}

func TestWriteBackCommitsWhenVerifiersMatch(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{}
	keep(&wb, m, 0, "hello")
	keep(&wb, m, 5, " world")
	if resent, err := wb.flush(context.Background(), 0, m); err != nil || resent != 0 {
		t.Fatalf("flush: %d, %v", resent, err)
	}
	if n, b := wb.held(); n != 0 || b != 0 || m.commits != 1 || len(m.resent) != 0 {
		t.Fatalf("after a matching COMMIT: %d spans, %d bytes held, %d commits, %d re-sent", n, b, m.commits, len(m.resent))
	}
	if string(m.stable) != "hello world" {
		t.Fatalf("stable data %q", m.stable)
	}
	// Nothing held: no COMMIT.
	wb.flush(context.Background(), 0, m)
	if m.commits != 1 {
		t.Fatal("COMMIT sent with nothing to commit")
	}
}

// A server restart between the WRITEs and the COMMIT loses the unstable
// data; the changed verifier makes the client write it again, in the
// order it was first written, so an overwrite still wins.
func TestWriteBackResendsAfterVerifierChange(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{}
	keep(&wb, m, 0, "aaaa")
	keep(&wb, m, 2, "BB")
	m.restart()
	keep(&wb, m, 4, "cc") // written after the restart: the new verifier
	if string(m.cache) != "\x00\x00\x00\x00cc" {
		t.Fatalf("restart did not lose the data: %q", m.cache)
	}
	resent, err := wb.flush(context.Background(), 0, m)
	if err != nil || resent != 6 {
		t.Fatalf("flush: %d, %v; want the 6 bytes of the old verifier", resent, err)
	}
	if string(m.stable) != "aaBBcc" {
		t.Fatalf("stable data after the re-send: %q", m.stable)
	}
	if fmt.Sprint(m.resent) != "[0 2]" {
		t.Fatalf("re-sent offsets %v, want the old verifier's spans, oldest first", m.resent)
	}
	if n, b := wb.held(); n != 0 || b != 0 {
		t.Fatalf("%d spans, %d bytes still held", n, b)
	}
}

// Data stays held while COMMIT fails, and is committed by a later flush.
// A span of the new verifier that overlaps an older span being written
// again is written again after it, or the old data would win.
func TestWriteBackResendKeepsNewerOverlaps(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{}
	keep(&wb, m, 0, "aaaa")
	keep(&wb, m, 8, "kk")
	m.restart()
	keep(&wb, m, 2, "ZZ")    // overwrites part of "aaaa": re-sent after it
	keep(&wb, m, 6, "nn")    // overlaps nothing re-sent: stable already
	keep(&wb, m, 9, "QQ")    // overlaps "kk"
	keep(&wb, m, 12, "tail") // stable already
	resent, err := wb.flush(context.Background(), 0, m)
	if err != nil || resent != 10 {
		t.Fatalf("flush: %d, %v; want 10", resent, err)
	}
	if fmt.Sprint(m.resent) != "[0 8 2 9]" {
		t.Fatalf("re-sent offsets %v, want [0 8 2 9]", m.resent)
	}
	if want := "aaZZ\x00\x00nnkQQ\x00tail"; string(m.stable) != want {
		t.Fatalf("stable data %q, want %q", m.stable, want)
	}
}

func TestRangesOverlapAndMerge(t *testing.T) {
	testutil.CheckLeaks(t)
	var r ranges
	r.add(10, 20)
	r.add(30, 40)
	r.add(18, 31) // bridges both
	r.add(50, 60)
	r.add(0, 5)
	if fmt.Sprint(r) != "[{0 5} {10 40} {50 60}]" {
		t.Fatalf("ranges %v", r)
	}
	for _, c := range []struct {
		s, e int64
		want bool
	}{{5, 10, false}, {4, 6, true}, {40, 50, false}, {39, 41, true}, {60, 70, false}, {55, 56, true}} {
		if got := r.overlaps(c.s, c.e); got != c.want {
			t.Errorf("overlaps(%d, %d) = %v, want %v", c.s, c.e, got, c.want)
		}
	}
}

func TestWriteBackKeepsDataUntilCommitSucceeds(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{commitErr: errors.New("injected COMMIT failure")}
	keep(&wb, m, 0, "abc")
	if _, err := wb.flush(context.Background(), 0, m); err == nil {
		t.Fatal("flush hid a COMMIT failure")
	}
	if n, b := wb.held(); n != 1 || b != 3 {
		t.Fatalf("after a failed COMMIT: %d spans, %d bytes held", n, b)
	}
	m.commitErr = nil
	m.restart()
	if resent, err := wb.flush(context.Background(), 0, m); err != nil || resent != 3 || string(m.stable) != "abc" {
		t.Fatalf("flush after a restart: %d, %v, stable %q", resent, err, m.stable)
	}
}

// A re-send that fails part way drops only what it re-sent.
func TestWriteBackResendFailureKeepsTheRest(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{stableErrAt: 2}
	keep(&wb, m, 0, "one")
	keep(&wb, m, 3, "two")
	keep(&wb, m, 6, "three")
	m.restart()
	if _, err := wb.flush(context.Background(), 0, m); err == nil {
		t.Fatal("flush hid a failed FILE_SYNC write")
	}
	if n, b := wb.held(); n != 2 || b != 8 {
		t.Fatalf("after a failed re-send: %d spans, %d bytes held; want 2, 8", n, b)
	}
	m.stableErrAt = 0
	if _, err := wb.flush(context.Background(), 0, m); err != nil || string(m.stable) != "onetwothree" {
		t.Fatalf("second flush: %v, stable %q", err, m.stable)
	}
}

// A piece written under two verifiers matches no COMMIT.
func TestWriteBackMixedVerifiersResend(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{}
	verf := m.write(0, "xy")
	buf := bufpool.Get(2)
	copy(*buf, "xy")
	wb.add(span{off: 0, buf: buf, n: 2, verf: verf, mixed: true})
	if resent, err := wb.flush(context.Background(), 0, m); err != nil || resent != 2 {
		t.Fatalf("flush of a mixed span: %d, %v", resent, err)
	}
}

// Below the bound, a bounded flush sends nothing; above it, it commits.
func TestWriteBackBound(t *testing.T) {
	testutil.CheckLeaks(t)
	var wb writeBack
	m := &memStore{}
	keep(&wb, m, 0, strings.Repeat("x", 1000))
	if _, err := wb.flush(context.Background(), 1000, m); err != nil || m.commits != 0 {
		t.Fatalf("flush at the bound: %v, %d commits", err, m.commits)
	}
	keep(&wb, m, 1000, "y")
	if _, err := wb.flush(context.Background(), 1000, m); err != nil || m.commits != 1 {
		t.Fatalf("flush over the bound: %v, %d commits", err, m.commits)
	}
}
