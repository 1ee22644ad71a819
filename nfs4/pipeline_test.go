package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// A 256 MiB file (four COMMIT intervals) goes in through io.Copy
// (File.ReadFrom, WRITEs pipelined, COMMITs every 64 MiB) and out through
// io.Copy (File.WriteTo, READs pipelined and delivered in order), and
// arrives intact on the server's disk and back.
func TestBigFileThroughIoCopy(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) { testBigFile(t, s, c, 256<<20) })
}

// testBigFile is TestBigFileThroughIoCopy's body for a file of size bytes.
func testBigFile(t *testing.T, s testServer, c *Client, size int64) {
	ctx := context.Background()
	name := s.dir + "/iocopy"

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
	if s.side.sha256(t, "iocopy") != hex.EncodeToString(sent.Sum(nil)) {
		t.Fatal("the file on the server's disk differs from the data written")
	}
	// At the end, WriteTo has nothing more to give.
	if n, err := f.WriteTo(io.Discard); n != 0 || err != nil {
		t.Fatalf("WriteTo at the end: %d, %v", n, err)
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
