package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// returnsWithin runs call and returns its error, failing the test if call
// has not returned after bound: a call stuck on a silent server would
// otherwise hang the test binary. bound is generous; it checks that the
// call returns, not how fast.
func returnsWithin(t *testing.T, bound time.Duration, name string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s did not return %v after its context ended", name, bound)
		return nil
	}
}

// TestFileCallsEndWithTheirContextOnASilentServer: with the server stopped
// (SIGSTOP: its kernel still acknowledges what is sent, nothing is
// answered), a Read, a Write, a Sync, a Stat, a Truncate, a ReadDir
// waiting behind another and a Close through File.WithContext, and the
// io/fs calls through Client.FSContext, each return with their context's
// error once it ends. After the server resumes, the same Client works: the Sync reports
// the write that gave up, and a new file written and read back matches.
func TestFileCallsEndWithTheirContextOnASilentServer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{Lease: 60 * time.Second}, Config{Slots: 8})
	ctx := context.Background()
	name := srv.Pseudo() + "/silent"
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	if err := os.WriteFile(filepath.Join(srv.ExportDir(), "silent"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := c.OpenFile(ctx, name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	closing, err := c.OpenFile(ctx, name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Data held for COMMIT, so that Sync and Close have a COMMIT to send.
	for _, g := range []*File{f, closing} {
		if _, err := g.WriteAt([]byte("held"), 0); err != nil {
			t.Fatal(err)
		}
	}

	dir, err := c.Open(ctx, srv.Pseudo())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	srv.Pause(t)
	const bound = 2 * time.Minute
	buf := make([]byte, 2<<20)
	calls := []struct {
		name string
		call func(f *File) error
	}{
		{"Read", func(f *File) error { _, err := f.Read(buf[:100]); return err }},
		{"ReadAt", func(f *File) error { _, err := f.ReadAt(buf, 1<<20); return err }},
		{"Write", func(f *File) error { _, err := f.Write(data[:1000]); return err }},
		{"WriteAt", func(f *File) error { _, err := f.WriteAt(data, 0); return err }},
		{"Sync", func(f *File) error { return f.Sync() }},
		{"Stat", func(f *File) error { _, err := f.Stat(); return err }},
		{"Truncate", func(f *File) error { return f.Truncate(10) }},
	}
	for _, tc := range calls {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := returnsWithin(t, bound, tc.name, func() error { return tc.call(f.WithContext(dctx)) })
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a silent server: %v, want an error matching context.DeadlineExceeded", tc.name, err)
		}
	}

	// A call waiting for a lock that a stuck call holds gives up too: a
	// ReadDir behind another on the directory's shared cursor.
	holdCtx, release := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { _, err := dir.WithContext(holdCtx).ReadDir(-1); held <- err }()
	time.Sleep(100 * time.Millisecond) // lets the first take the cursor; the test holds either way
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = returnsWithin(t, bound, "ReadDir behind a stuck ReadDir", func() error {
		_, err := dir.WithContext(dctx).ReadDir(-1)
		return err
	})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadDir behind a stuck ReadDir: %v, want an error matching context.DeadlineExceeded", err)
	}
	release()
	if err := returnsWithin(t, bound, "stuck ReadDir", func() error { return <-held }); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadDir on a silent server: %v, want an error matching context.Canceled", err)
	}

	// The io/fs view of FSContext runs under its context throughout.
	fsCalls := []struct {
		name string
		call func(fs.FS) error
	}{
		{"fs.Stat", func(fsys fs.FS) error { _, err := fs.Stat(fsys, "silent"); return err }},
		{"fs.ReadDir", func(fsys fs.FS) error { _, err := fs.ReadDir(fsys, "."); return err }},
		{"fs.ReadFile", func(fsys fs.FS) error { _, err := fs.ReadFile(fsys, "silent"); return err }},
	}
	for _, tc := range fsCalls {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fsys := c.FSContext(dctx, srv.Pseudo())
		err := returnsWithin(t, bound, tc.name, func() error { return tc.call(fsys) })
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s through FSContext on a silent server: %v, want an error matching context.DeadlineExceeded", tc.name, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	err = returnsWithin(t, bound, "Close", func() error { return closing.WithContext(cctx).Close() })
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Close on a silent server: %v, want an error matching context.Canceled", err)
	}
	if _, err := closing.Stat(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Stat after a Close that gave up: %v, want fs.ErrClosed", err)
	}
	srv.Resume()

	// The writes that gave up are reported, once; the rest is committed.
	err = returnsWithin(t, bound, "Sync after resume", f.Sync)
	if !errors.Is(err, ErrNotWritten) {
		t.Errorf("Sync after writes that gave up: %v, want ErrNotWritten", err)
	}
	if err := returnsWithin(t, bound, "second Sync", f.Sync); err != nil {
		t.Errorf("second Sync: %v", err)
	}
	if err := returnsWithin(t, bound, "Close after resume", f.Close); err != nil {
		t.Errorf("Close after resume: %v", err)
	}

	// The same Client still has every slot: more calls than slots at
	// once, then a file written and read back.
	errs := make(chan error, 32)
	for range cap(errs) {
		go func() { _, err := c.Stat(ctx, name); errs <- err }()
	}
	for range cap(errs) {
		if err := returnsWithin(t, bound, "Stat after resume", func() error { return <-errs }); err != nil {
			t.Errorf("Stat after resume: %v", err)
		}
	}
	roundTrip(t, c, srv.Pseudo()+"/after", data)
}

// roundTrip writes data to a new file name through c, reads it back and
// compares their sha256.
func roundTrip(t *testing.T, c *Client, name string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := c.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w.WithContext(ctx), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.WithContext(ctx).Close(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Errorf("%s read back with sha256 %x, wrote %x", name, got, want)
	}
}

// cancelAfter passes data on and cancels a context once n bytes went
// through: a copy cancelled in its middle, without timing.
type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) count(m int) {
	c.n -= int64(m)
	if c.n <= 0 {
		c.cancel()
	}
}

type cancellingReader struct {
	cancelAfter
	r io.Reader
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count(n)
	return n, err
}

type cancellingWriter struct {
	cancelAfter
	w io.Writer
}

func (c *cancellingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.count(n)
	return n, err
}

// TestCopyThroughContextViewStopsWhenCancelled: io.Copy into and out of a
// File's context view (ReadFrom and WriteTo, requests in flight) stops
// with context.Canceled when the context is cancelled in the middle, and
// the File remains usable.
func TestCopyThroughContextViewStopsWhenCancelled(t *testing.T) {
	testutil.CheckLeaks(t)
	// A lease long enough that a loaded machine does not let it lapse
	// while tens of MiB are in flight.
	srv, c := dialGanesha(t, ganesha.Config{Lease: 60 * time.Second}, Config{Logger: testLogger(t)})
	bg := context.Background()
	const size = 32 << 20
	data := bytes.Repeat([]byte("gonfs cancel\n..."), size/16)

	t.Run("into", func(t *testing.T) {
		f, err := c.Create(bg, srv.Pseudo()+"/into")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		src := &cancellingReader{cancelAfter{n: 8 << 20, cancel: cancel}, bytes.NewReader(data)}
		n, err := io.Copy(f.WithContext(ctx), src)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("io.Copy into a cancelled view: %d bytes, %v; want context.Canceled", n, err)
		}
		if n >= size {
			t.Errorf("io.Copy into a cancelled view wrote all %d bytes", n)
		}
		// What was written is committed; a write that gave up is
		// reported, once.
		if err := f.Sync(); err != nil && !errors.Is(err, ErrNotWritten) {
			t.Errorf("Sync after the cancelled copy: %v", err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("second Sync: %v", err)
		}
	})

	t.Run("from", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(srv.ExportDir(), "from"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := c.Open(bg, srv.Pseudo()+"/from")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		dst := &cancellingWriter{cancelAfter{n: 8 << 20, cancel: cancel}, io.Discard}
		n, err := io.Copy(dst, f.WithContext(ctx))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("io.Copy from a cancelled view: %d bytes, %v; want context.Canceled", n, err)
		}
		if n >= size {
			t.Errorf("io.Copy from a cancelled view read all %d bytes", n)
		}
		// The offset moved past what was copied; the rest reads on.
		rest, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(rest))+n != size || !bytes.Equal(rest, data[n:]) {
			t.Errorf("after the cancelled copy of %d bytes, read %d more, not the rest of the file", n, len(rest))
		}
	})
	roundTrip(t, c, srv.Pseudo()+"/after", data[:4<<20])
}

// TestCloseContextGivesUpOnASilentServer: CloseContext returns with its
// context's error when the server does not answer, with the connection
// closed and every goroutine of the Client ended (CheckLeaks).
func TestCloseContextGivesUpOnASilentServer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, c := dialGanesha(t, ganesha.Config{}, Config{})
	f, err := c.Create(context.Background(), srv.Pseudo()+"/open")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("uncommitted")); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	// A call stuck on the silent server, which CloseContext must end.
	stuck := make(chan error, 1)
	go func() { stuck <- f.Sync() }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = returnsWithin(t, 2*time.Minute, "CloseContext", func() error { return c.CloseContext(ctx) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CloseContext on a silent server: %v, want context.DeadlineExceeded", err)
	}
	if err := returnsWithin(t, 2*time.Minute, "Sync under CloseContext", func() error { return <-stuck }); err == nil {
		t.Error("a Sync stuck on the silent server succeeded after CloseContext")
	}
}
