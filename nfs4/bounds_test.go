package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
)

// Tests of the bounds on what a server's replies can make the client
// allocate, read or hold, against internal/hostile.

// fs.ReadFile of a file whose size attribute is absurd reads what the
// server sends up to its end of file: the size does not size a buffer.
func TestHostileReadFileHugeSize(t *testing.T) {
	for _, size := range []uint64{1 << 40, math.MaxInt64, math.MaxUint64} {
		t.Run("", func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, hostile.Faults{Size: size})
			c := dialHostile(t, s, Config{})
			fi, err := fs.Stat(c.FS("/"), "file")
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if fi.Size() < 0 {
				t.Errorf("Stat of a file of size %d: Size() = %d; want it clamped, not negative", size, fi.Size())
			}
			data, err := fs.ReadFile(c.FS("/"), "file")
			if err != nil {
				t.Fatalf("ReadFile of a file of size %d: %v", size, err)
			}
			want := make([]byte, 4096)
			for i := range want {
				want[i] = byte(i*7 + i>>9)
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("ReadFile returned %d bytes; want the server's 4096", len(data))
			}
		})
	}
}

// capWriter takes up to max bytes and then fails, so that a test of a read
// that should stop by itself stops anyway if it does not.
type capWriter struct {
	n, max int
}

var errCapReached = errors.New("test: 64 MiB read from a 4096-byte file")

func (w *capWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.max {
		return 0, errCapReached
	}
	w.n += len(p)
	return len(p), nil
}

// A file of 4096 bytes whose READs never report the end is not read
// forever: every way of reading it stops at its size with ErrDataPastSize.
func TestHostileReadPastSize(t *testing.T) {
	const limit = 64 << 20
	reads := map[string]func(f *File) (int, error){
		"WriteTo": func(f *File) (int, error) {
			n, err := io.Copy(&capWriter{max: limit}, f)
			return int(n), err
		},
		"Read": func(f *File) (int, error) {
			n, err := io.Copy(&capWriter{max: limit}, struct{ io.Reader }{f})
			return int(n), err
		},
		"ReadAt": func(f *File) (int, error) {
			return f.ReadAt(make([]byte, 2<<20), 0)
		},
		"ReadAtSmall": func(f *File) (int, error) {
			return f.ReadAt(make([]byte, 100), 5000)
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, hostile.Faults{ReadNoEOF: true})
			c := dialHostile(t, s, Config{})
			f, err := c.Open(context.Background(), "/file")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer f.Close()
			n, err := read(f)
			if !errors.Is(err, ErrDataPastSize) {
				t.Fatalf("read %d bytes, err %v; want an error matching ErrDataPastSize", n, err)
			}
			if n > 4096 {
				t.Errorf("read %d bytes of a 4096-byte file", n)
			}
		})
	}

	t.Run("ReadFile", func(t *testing.T) {
		testutil.CheckLeaks(t)
		s := hostile.Start(t, hostile.Faults{ReadNoEOF: true})
		c := dialHostile(t, s, Config{})
		done := make(chan error, 1)
		go func() {
			_, err := fs.ReadFile(c.FS("/"), "file")
			done <- err
		}()
		// Without the bound ReadFile never returns: stop it after 64
		// READs of up to 1 MiB (a count, not a time).
		for {
			select {
			case err := <-done:
				if !errors.Is(err, ErrDataPastSize) {
					t.Fatalf("ReadFile: %v; want an error matching ErrDataPastSize", err)
				}
				return
			case <-time.After(10 * time.Millisecond):
			}
			if n := s.Ops(hostile.OpRead); n > 64 {
				c.Close()
				<-done
				t.Fatalf("ReadFile sent %d READs for a 4096-byte file and was still reading", n)
			}
		}
	})
}

// A file that grows while it is read is read to its new end: the bound is
// the size, re-read when the data passes it, not the size at open.
func TestHostileReadGrowingFile(t *testing.T) {
	testutil.CheckLeaks(t)
	s := hostile.Start(t, hostile.Faults{})
	c := dialHostile(t, s, Config{})
	f, err := c.Open(context.Background(), "/file")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	grown := make([]byte, 2<<20+100)
	for i := range grown {
		grown[i] = byte(i)
	}
	s.SetFaults(hostile.Faults{Data: grown})
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, grown) {
		t.Fatalf("ReadAll of a file grown from 4096 bytes to %d: %d bytes, %v", len(grown), len(got), err)
	}

	// Data past the size the server reports fails, even with an end of
	// file: the size is 4096, the READs return 8192 bytes.
	s.SetFaults(hostile.Faults{Data: grown[:8192], Size: 4096})
	g, err := c.Open(context.Background(), "/file")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer g.Close()
	if got, err := io.ReadAll(g); !errors.Is(err, ErrDataPastSize) {
		t.Fatalf("ReadAll of 8192 bytes of a file of size 4096: %d bytes, %v; want ErrDataPastSize", len(got), err)
	}
}

// A READDIR whose cookie never advances, or goes round in a circle, fails
// with ErrCookieLoop after reading the first pages again once.
func TestHostileReaddirCookieLoop(t *testing.T) {
	for name, f := range map[string]hostile.Faults{
		"stuck": {Readdir: hostile.ReaddirStuck},
		"cycle": {Readdir: hostile.ReaddirCycle, PerPage: 2, Entries: manyEntries(5)},
	} {
		t.Run(name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := hostile.Start(t, f)
			c := dialHostile(t, s, Config{})
			// The deadline is a safety net: the loop must end by itself.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ents, err := c.ReadDir(ctx, "/dir")
			if !errors.Is(err, ErrCookieLoop) {
				t.Fatalf("ReadDir: %d entries, %v; want an error matching ErrCookieLoop", len(ents), err)
			}
			if n := s.Ops(hostile.OpReaddir); n > 4 {
				t.Errorf("ReadDir sent %d READDIRs; want the loop found by the first page read again", n)
			}

			// File.ReadDir(1), one entry at a time, finds it too.
			d, err := c.Open(ctx, "/dir")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer d.Close()
			for i := 0; ; i++ {
				_, err := d.ReadDir(1)
				if errors.Is(err, ErrCookieLoop) {
					break
				}
				if err != nil || i == 1000 {
					t.Fatalf("File.ReadDir(1) call %d: %v; want ErrCookieLoop within a few pages", i, err)
				}
			}
		})
	}
}

// A READDIR that never ends fails with ErrListingTooLarge once the
// listing holds Config.MaxListing bytes.
func TestHostileReaddirEndless(t *testing.T) {
	testutil.CheckLeaks(t)
	s := hostile.Start(t, hostile.Faults{Readdir: hostile.ReaddirEndless, PerPage: 200})
	const limit = 1 << 20
	c := dialHostile(t, s, Config{MaxListing: limit})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a safety net
	defer cancel()
	ents, err := c.ReadDir(ctx, "/dir")
	if !errors.Is(err, ErrListingTooLarge) {
		t.Fatalf("ReadDir: %d entries, %v; want an error matching ErrListingTooLarge", len(ents), err)
	}
	if b := listingBytes(ents); b > limit+200*(entryOverhead+64) {
		t.Errorf("ReadDir held %d bytes; want at most a page past the %d-byte bound", b, limit)
	}
	t.Logf("%d entries (%d bytes) when the %d-byte bound was reached", len(ents), listingBytes(ents), limit)

	d, err := c.Open(ctx, "/dir")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()
	if ents, err := d.ReadDir(-1); !errors.Is(err, ErrListingTooLarge) {
		t.Fatalf("File.ReadDir(-1): %d entries, %v; want ErrListingTooLarge", len(ents), err)
	}
}

// A large directory read in small pages is listed whole: the bounds do
// not trip on a server that behaves.
func TestHostileReaddirManyPages(t *testing.T) {
	testutil.CheckLeaks(t)
	s := hostile.Start(t, hostile.Faults{Entries: manyEntries(2000), PerPage: 7})
	c := dialHostile(t, s, Config{})
	ents, err := c.ReadDir(context.Background(), "/dir")
	if err != nil || len(ents) != 2000 {
		t.Fatalf("ReadDir: %d entries, %v; want 2000", len(ents), err)
	}
}

// manyEntries returns n regular files e0000, e0001, ...
func manyEntries(n int) []hostile.Entry {
	ents := make([]hostile.Entry, n)
	for i := range ents {
		ents[i].Name = fmt.Sprintf("e%04d", i)
	}
	return ents
}
