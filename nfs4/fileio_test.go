package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// A 256 MiB file goes in through io.Copy (File.ReadFrom, WRITEs pipelined,
// COMMITs every 64 MiB) and out through io.Copy (File.WriteTo, READs
// pipelined and delivered in order), and arrives intact on the server's
// disk and back.
func TestBigFileThroughIoCopy(t *testing.T) {
	testutil.CheckLeaks(t)
	const size = 256 << 20
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	name := srv.Pseudo() + "/big"

	f, err := c.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sent := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), sent)
	n, err := io.Copy(f, src)
	if err != nil || n != size {
		t.Fatalf("io.Copy into the file: %d, %v", n, err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != size {
		t.Fatalf("offset after ReadFrom: %d", off)
	}
	mustClose(t, f)

	f, err = c.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	got := sha256.New()
	n, err = io.Copy(got, f)
	if err != nil || n != size {
		t.Fatalf("io.Copy out of the file: %d, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("data read back differs from the data written")
	}
	local, err := os.Open(filepath.Join(srv.ExportDir(), "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	onDisk := sha256.New()
	if _, err := io.Copy(onDisk, local); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk.Sum(nil), sent.Sum(nil)) {
		t.Fatal("the file on the server's disk differs from the data written")
	}
	// At the end, WriteTo has nothing more to give.
	if n, err := f.WriteTo(io.Discard); n != 0 || err != nil {
		t.Fatalf("WriteTo at the end: %d, %v", n, err)
	}
}

func TestSparseWriteAt(t *testing.T) {
	testutil.CheckLeaks(t)
	const far = 10<<20 + 1
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	f, err := c.Create(ctx, srv.Pseudo()+"/sparse")
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), far); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != far+4 {
		t.Fatalf("size of the sparse file: %v, %v", fi, err)
	}
	buf := make([]byte, far+8)
	n, err := f.ReadAt(buf, 0)
	if n != far+4 || err != io.EOF {
		t.Fatalf("ReadAt of the whole file: %d, %v; want %d, EOF", n, err, far+4)
	}
	want := make([]byte, far+4)
	copy(want, "head")
	copy(want[far:], "tail")
	if !bytes.Equal(buf[:n], want) {
		t.Fatal("the hole does not read as zeros")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(srv.ExportDir(), "sparse"))
	if err != nil || !bytes.Equal(local, want) {
		t.Fatalf("file on the server's disk: %d bytes, %v", len(local), err)
	}
}

// fileLike is what *os.File and *File have in common.
type fileLike interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	io.ReaderFrom
	io.WriterTo
	Truncate(size int64) error
	Sync() error
	Close() error
	Stat() (fs.FileInfo, error)
}

// errKind describes err independently of the file's name and of which
// package made it: the Op of an *fs.PathError and the errno or sentinel
// underneath.
func errKind(err error) string {
	if err == nil {
		return "nil"
	}
	if err == io.EOF {
		return "EOF"
	}
	op := ""
	var pe *fs.PathError
	if errors.As(err, &pe) {
		op, err = pe.Op+": ", pe.Err
	}
	var errno syscall.Errno
	var st Status
	switch {
	case errors.Is(err, fs.ErrClosed):
		return op + "closed"
	case errors.As(err, &errno):
		return op + errno.Error()
	case errors.As(err, &st):
		if st.Errno() == syscall.EIO && st != ErrIO {
			return op + st.String() // no errno of its own: show which status
		}
		return op + st.Errno().Error()
	}
	return op + strings.TrimPrefix(err.Error(), "nfs4: ")
}

// step is one operation on a file and a description of its outcome.
type step struct {
	name string
	do   func(f fileLike) string
}

func read(n int) step {
	return step{fmt.Sprintf("Read(%d)", n), func(f fileLike) string {
		b := make([]byte, n)
		m, err := f.Read(b)
		return fmt.Sprintf("%d %q %s", m, b[:m], errKind(err))
	}}
}

func readAt(n int, off int64) step {
	return step{fmt.Sprintf("ReadAt(%d, %d)", n, off), func(f fileLike) string {
		b := make([]byte, n)
		m, err := f.ReadAt(b, off)
		return fmt.Sprintf("%d %q %s", m, b[:m], errKind(err))
	}}
}

func write(s string) step {
	return step{fmt.Sprintf("Write(%q)", s), func(f fileLike) string {
		m, err := f.Write([]byte(s))
		return fmt.Sprintf("%d %s", m, errKind(err))
	}}
}

func writeAt(s string, off int64) step {
	return step{fmt.Sprintf("WriteAt(%q, %d)", s, off), func(f fileLike) string {
		m, err := f.WriteAt([]byte(s), off)
		return fmt.Sprintf("%d %s", m, errKind(err))
	}}
}

func seek(off int64, whence int) step {
	return step{fmt.Sprintf("Seek(%d, %d)", off, whence), func(f fileLike) string {
		m, err := f.Seek(off, whence)
		return fmt.Sprintf("%d %s", m, errKind(err))
	}}
}

var (
	truncate = func(size int64) step {
		return step{fmt.Sprintf("Truncate(%d)", size), func(f fileLike) string { return errKind(f.Truncate(size)) }}
	}
	syncStep  = step{"Sync", func(f fileLike) string { return errKind(f.Sync()) }}
	closeStep = step{"Close", func(f fileLike) string { return errKind(f.Close()) }}
	statSize  = step{"Stat", func(f fileLike) string {
		fi, err := f.Stat()
		if err != nil {
			return errKind(err)
		}
		return fmt.Sprint(fi.Size(), fi.IsDir())
	}}
	readFrom = func(s string) step {
		return step{fmt.Sprintf("ReadFrom(%q)", s), func(f fileLike) string {
			m, err := f.ReadFrom(strings.NewReader(s))
			return fmt.Sprintf("%d %s", m, errKind(err))
		}}
	}
	writeTo = step{"WriteTo", func(f fileLike) string {
		var b bytes.Buffer
		m, err := f.WriteTo(&b)
		return fmt.Sprintf("%d %q %s", m, b.Bytes(), errKind(err))
	}}
)

// The same operations on a local file and on a file over NFS give the same
// results, errors included.
func TestSemanticsMatchOS(t *testing.T) {
	testutil.CheckLeaks(t)
	// Small pieces, so that multi-piece reads and writes happen with
	// little data.
	srv, c := dialGanesha(t, ganesha.Config{}, Config{RSize: 4096, WSize: 4096, Window: 3})
	ctx := context.Background()
	local := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 1200) // 19200 bytes: five pieces

	for _, tc := range []struct {
		name  string
		setup string // initial content; "dir" makes a directory
		flag  int
		steps []step
	}{
		{"read write seek", "", os.O_RDWR | os.O_CREATE | os.O_TRUNC, []step{
			write("hello, world"), seek(0, io.SeekCurrent), read(4),
			seek(0, io.SeekStart), read(5), read(100), read(10),
			readAt(4, 7), readAt(10, 7), readAt(4, 12), readAt(4, 100), readAt(1, -1), readAt(0, 3),
			seek(-5, io.SeekEnd), read(3), seek(-100, io.SeekCurrent), seek(0, 7), seek(0, io.SeekCurrent),
			seek(20, io.SeekStart), write("x"), seek(0, io.SeekStart), read(32),
			writeAt("AB", 2), readAt(5, 0), writeAt("", 40), writeAt("z", -1), statSize,
			truncate(4), seek(0, io.SeekEnd), read(8), truncate(-1), truncate(10), readAt(12, 0),
			write(""), read(0), syncStep, statSize,
			closeStep, closeStep, read(1), readAt(1, 0), write("x"), writeAt("x", 0), seek(0, io.SeekStart),
			syncStep, truncate(0), statSize, readFrom("x"), writeTo,
		}},
		{"large transfers", "", os.O_RDWR | os.O_CREATE, []step{
			write(big), seek(0, io.SeekStart), read(len(big) + 10), readAt(9000, 10000), readAt(9000, 12000),
			seek(5000, io.SeekStart), writeTo, seek(0, io.SeekCurrent), seek(100, io.SeekStart),
			readFrom(big[:9999]), seek(0, io.SeekCurrent), statSize, readAt(30, 10090),
			writeAt(big[:8192], 16000), statSize, readAt(20000, 4000), syncStep, closeStep,
		}},
		{"read only", "abc", os.O_RDONLY, []step{
			write("x"), write(""), writeAt("x", 0), truncate(0), readFrom("x"), read(2), writeTo, syncStep, closeStep,
		}},
		{"write only", "abc", os.O_WRONLY, []step{
			read(0), read(2), readAt(2, 0), writeTo, write("de"), seek(0, io.SeekStart), write("X"),
			seek(0, io.SeekEnd), statSize, closeStep,
		}},
		{"append", "abc", os.O_RDWR | os.O_APPEND, []step{
			write("de"), seek(0, io.SeekCurrent), seek(0, io.SeekStart), write("f"), seek(0, io.SeekCurrent),
			seek(1, io.SeekStart), read(2), readFrom("gh"), seek(0, io.SeekCurrent), seek(0, io.SeekStart), read(10), closeStep,
		}},
		{"truncate on open", "abcdef", os.O_RDWR | os.O_TRUNC, []step{
			statSize, read(3), write("xy"), seek(0, io.SeekStart), read(3), closeStep,
		}},
		{"directory", "dir", os.O_RDONLY, []step{
			read(2), readAt(2, 0), write("x"), writeAt("x", 0), truncate(0), seek(5, io.SeekStart), syncStep,
			readFrom("x"), statSize, closeStep, closeStep,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := strings.ReplaceAll(tc.name, " ", "_")
			for _, d := range []string{local, srv.ExportDir()} {
				p := filepath.Join(d, base)
				switch tc.setup {
				case "":
				case "dir":
					os.Mkdir(p, 0o755)
				default:
					writeLocal(t, p, tc.setup)
				}
			}
			lf, err := os.OpenFile(filepath.Join(local, base), tc.flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer lf.Close()
			nf, err := c.OpenFile(ctx, srv.Pseudo()+"/"+base, tc.flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer nf.Close()
			for i, s := range tc.steps {
				want, got := s.do(lf), s.do(nf)
				if got != want {
					t.Errorf("step %d, %s: got %s, os gives %s", i, s.name, got, want)
				}
			}
			if tc.setup != "dir" {
				want, got := readLocal(t, filepath.Join(local, base)), readLocal(t, filepath.Join(srv.ExportDir(), base))
				if got != want {
					t.Errorf("final content %q, os gives %q", got, want)
				}
			}
		})
	}
}

// ReadAt and WriteAt from many goroutines at once, each on its own range,
// some spanning several pieces.
func TestConcurrentReadAtWriteAt(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{RSize: 16 << 10, WSize: 16 << 10, Slots: 16})
	ctx := context.Background()
	f, err := c.Create(ctx, srv.Pseudo()+"/concurrent")
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	const workers, part = 32, 40 << 10 // each part spans three WRITEs
	want := make([]byte, workers*part)
	rand.NewChaCha8([32]byte{2}).Read(want)
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.WriteAt(want[i*part:(i+1)*part], int64(i*part)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	got := make([]byte, len(want))
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.ReadAt(got[i*part:(i+1)*part], int64(i*part)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("data read back differs from the data written")
	}
}

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

// failingWriter takes limit bytes, then fails.
type failingWriter struct {
	limit int
	got   bytes.Buffer
}

var errInjected = errors.New("injected failure")

func (w *failingWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.limit-w.got.Len())
	w.got.Write(p[:n])
	if n < len(p) {
		return n, errInjected
	}
	return n, nil
}

// failingReader yields data, then fails with err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// WriteTo and ReadFrom stop at the first error with the count of bytes
// moved, leave the offset after them, and leave no goroutine behind.
func TestStreamingStopsAtFirstError(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{RSize: 64 << 10, WSize: 64 << 10, Window: 4})
	ctx := context.Background()
	data := make([]byte, 2<<20+100)
	rand.NewChaCha8([32]byte{4}).Read(data)
	f, err := c.Create(ctx, srv.Pseudo()+"/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)

	// The reader fails part way: what it gave is written, its error is
	// returned as it is.
	n, err := f.ReadFrom(&failingReader{data: data[:1<<20+5], err: errInjected})
	if n != 1<<20+5 || err != errInjected {
		t.Fatalf("ReadFrom of a failing reader: %d, %v", n, err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data[n:])); err != nil {
		t.Fatal(err)
	}

	// The writer fails part way, with READs in flight ahead of it.
	f.Seek(100, io.SeekStart)
	w := &failingWriter{limit: 300 << 10}
	n, err = f.WriteTo(w)
	if n != 300<<10 || err != errInjected || !bytes.Equal(w.got.Bytes(), data[100:100+n]) {
		t.Fatalf("WriteTo a failing writer: %d, %v", n, err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 100+n {
		t.Fatalf("offset after a failed WriteTo: %d, want %d", off, 100+n)
	}
	var rest bytes.Buffer
	if _, err := f.WriteTo(&rest); err != nil || !bytes.Equal(rest.Bytes(), data[100+n:]) {
		t.Fatalf("WriteTo of the rest: %d bytes, %v", rest.Len(), err)
	}
}

// A ReadFrom whose WRITEs start failing (here because the Client is closed
// under it) returns promptly with the error and no goroutine left.
func TestReadFromStopsWhenWritesFail(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{RSize: 64 << 10, WSize: 64 << 10, Window: 4})
	ctx := context.Background()
	f, err := c.Create(ctx, srv.Pseudo()+"/cut")
	if err != nil {
		t.Fatal(err)
	}
	src := &closingReader{after: 1 << 20, c: c}
	n, err := f.ReadFrom(io.LimitReader(src, 64<<20))
	var pe *fs.PathError
	if err == nil || !errors.As(err, &pe) || pe.Op != "write" {
		t.Fatalf("ReadFrom with failing WRITEs: %d, %v", n, err)
	}
	if n > src.read {
		t.Fatalf("ReadFrom reported %d bytes written of %d read", n, src.read)
	}
	if src.read > 8<<20 {
		t.Fatalf("ReadFrom went on reading %d bytes after its WRITEs failed", src.read)
	}
	if f.Close() == nil {
		t.Fatal("Close after the Client closed reported success")
	}
}

// closingReader yields zeros and closes the Client after the first after
// bytes.
type closingReader struct {
	after, read int64
	c           *Client
}

func (r *closingReader) Read(p []byte) (int, error) {
	if r.read >= r.after && r.c != nil {
		r.c.Close()
		r.c = nil
	}
	clear(p)
	r.read += int64(len(p))
	return len(p), nil
}
