package nfs4

import (
	"bytes"
	"context"
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

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

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

// TestReadAheadSeesOwnWrites: small Reads and ReadAts are served from a
// read-ahead window, which a write or truncate through the File replaces.
func TestReadAheadSeesOwnWrites(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	ctx := context.Background()
	f, err := c.OpenFile(ctx, srv.Pseudo()+"/ra", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if n, err := f.ReadAt(b, 2); n != 4 || err != nil || string(b) != "2345" {
		t.Fatalf("ReadAt: %q, %v", b[:n], err)
	}
	if _, err := f.WriteAt([]byte("ab"), 3); err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadAt(b, 2); n != 4 || err != nil || string(b) != "2ab5" {
		t.Fatalf("ReadAt after WriteAt: %q, %v; the read-ahead was stale", b[:n], err)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadAt(b, 2); n != 2 || err != io.EOF || string(b[:n]) != "2a" {
		t.Fatalf("ReadAt after Truncate: %q, %v", b[:n], err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var got []byte
	one := make([]byte, 1)
	for i := 0; i < 10; i++ {
		n, err := f.Read(one)
		got = append(got, one[:n]...)
		if err == io.EOF {
			break
		}
	}
	if string(got) != "012a" {
		t.Fatalf("byte-wise Read: %q", got)
	}
}
