package nfs4

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testcert"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/xprt"
)

// Benchmarks against a real Ganesha on loopback. Run them with
//
//	GONFS_REQUIRE_GANESHA=1 go test -run NONE -bench . ./nfs4/
//
// The wire check of TestMain is off during them: decoding every COMPOUND a
// second time would be measured too.

// withoutWireCheck turns the wire check off until b ends.
func withoutWireCheck(b *testing.B) {
	old := wireTap.Swap(nil)
	b.Cleanup(func() { wireTap.Store(old) })
}

// inGoroutines runs op b.N times in total, spread over g goroutines, and
// fails b on the first error.
func inGoroutines(b *testing.B, g int, op func() error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, g)
	)
	b.ResetTimer()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkGetattr measures GETATTR round trips: Client.Stat walks the
// path (PUTROOTFH, LOOKUP ×2, GETFH, GETATTR), File.Stat sends PUTFH and
// GETATTR, from 1 and from 64 goroutines at once.
func BenchmarkGetattr(b *testing.B) {
	testutil.CheckLeaks(b)
	withoutWireCheck(b)
	srv, c := dialGanesha(b, ganesha.Config{}, Config{})
	ctx := context.Background()
	name := srv.Pseudo() + "/stat"
	if err := os.WriteFile(filepath.Join(srv.ExportDir(), "stat"), []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := c.Open(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, g := range []int{1, 64} {
		b.Run(fmt.Sprintf("Client.Stat/goroutines=%d", g), func(b *testing.B) {
			b.ReportAllocs()
			inGoroutines(b, g, func() error {
				_, err := c.Stat(ctx, name)
				return err
			})
		})
		b.Run(fmt.Sprintf("File.Stat/goroutines=%d", g), func(b *testing.B) {
			b.ReportAllocs()
			inGoroutines(b, g, func() error {
				_, err := f.Stat()
				return err
			})
		})
	}
}

// repeatReader yields its block over and over: a source of data that costs
// a copy and nothing else.
type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], r.block[r.off:])
		n += m
		r.off = (r.off + m) % len(r.block)
	}
	return n, nil
}

// BenchmarkSequential writes a 1 GiB file through File.ReadFrom (io.Copy
// into the file, COMMIT included by Close) and reads it back through
// File.WriteTo (io.Copy out of it), reporting MB/s.
func BenchmarkSequential(b *testing.B) {
	testutil.CheckLeaks(b)
	withoutWireCheck(b)
	const size = 1 << 30
	srv, c := dialGanesha(b, ganesha.Config{}, Config{})
	name := srv.Pseudo() + "/seq"
	block := make([]byte, 1<<20+17) // not a multiple of the WRITE size
	rand.NewChaCha8([32]byte{3}).Read(block)

	benchWriteRead(b, c, name, block, size)
}

// benchWriteRead runs two sub-benchmarks on c: "write" creates name and
// fills it with size bytes of block repeated through io.Copy (COMMIT
// included by Close), "read" copies it to io.Discard; both report MB/s.
func benchWriteRead(b *testing.B, c *Client, name string, block []byte, size int64) {
	benchWriteReadWith(b, c, name, block, size, func(_ *testing.B, f func()) { f() })
}

// benchWriteReadWith is benchWriteRead with each sub-benchmark's loop run
// by around, which may measure it.
func benchWriteReadWith(b *testing.B, c *Client, name string, block []byte, size int64, around func(*testing.B, func())) {
	ctx := context.Background()
	b.Run("write", func(b *testing.B) {
		b.SetBytes(size)
		around(b, func() {
			for b.Loop() {
				f, err := c.Create(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(f, io.LimitReader(&repeatReader{block: block}, size)); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("read", func(b *testing.B) {
		if fi, err := c.Stat(ctx, name); err != nil || fi.Size() != size {
			b.Fatalf("the write benchmark left %v, %v", fi, err)
		}
		b.SetBytes(size)
		around(b, func() {
			for b.Loop() {
				f, err := c.Open(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, f)
				if err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkConnections writes and reads back a 256 MiB file through
// io.Copy with 1 and with 4 connections (Config.Connections) to the same
// Ganesha on loopback, reporting MB/s; and GETATTR from 64 goroutines
// (File.Stat, NoAC so that each goes to the server) over each. Whether 4 gain depends on the cores: on a small
// machine client, server and kernel share them.
func BenchmarkConnections(b *testing.B) {
	testutil.CheckLeaks(b)
	withoutWireCheck(b)
	const size = 256 << 20
	srv := ganesha.Start(b, ganesha.Config{})
	block := make([]byte, 1<<20+17)
	rand.NewChaCha8([32]byte{5}).Read(block)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			c := dialServer(b, srv.Addr(), Config{Connections: n, NoAC: true, Policy: policy.Ephemeral(policy.Options{})})
			ctx := context.Background()
			name := fmt.Sprintf("%s/conns%d", srv.Pseudo(), n)
			benchWriteRead(b, c, name, block, size)
			b.Run("getattr64", func(b *testing.B) {
				f, err := c.Create(ctx, name+"-attr")
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				b.ReportAllocs()
				inGoroutines(b, 64, func() error { _, err := f.Stat(); return err })
			})
		})
	}
}

// BenchmarkKnfsdTLS writes a 1 GiB file through File.ReadFrom (COMMIT
// included by Close) and reads it back through File.WriteTo, plain and
// over RPC-over-TLS, against the same Linux kernel server (its TLS guest,
// booting the kernel built for mutual TLS), reporting MB/s and the
// client's CPU seconds per GiB (this process's user and system time; the
// guest is another process). Run it alone: go test -run '^$' -bench
// KnfsdTLS -benchtime 1x ./nfs4.
func BenchmarkKnfsdTLS(b *testing.B) {
	withoutWireCheck(b)
	const size = 1 << 30
	ca := testcert.NewCA(b, "gonfs knfsd bench CA")
	server := ca.Server(b, "nfs.test", "127.0.0.1")
	srv := knfsd.Start(b, knfsd.Config{Insecure: true, TLS: &knfsd.TLS{CertPEM: server.CertPEM, KeyPEM: server.KeyPEM, CAPEM: ca.PEM()}})
	block := make([]byte, 1<<20+17)
	rand.NewChaCha8([32]byte{5}).Read(block)
	for _, m := range []struct {
		name string
		cfg  Config
		file string
	}{
		{"plain", Config{}, "/bench-plain"},
		{"tls", Config{TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}}, knfsd.TLSExport + "/bench"},
	} {
		b.Run(m.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			c, err := Dial(ctx, srv.Addr(), m.cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cpu := func(b *testing.B, f func()) {
				var r0, r1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
				f()
				syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
				used := r1.Utime.Nano() - r0.Utime.Nano() + r1.Stime.Nano() - r0.Stime.Nano()
				b.ReportMetric(float64(used)/1e9/float64(b.N)/(float64(size)/(1<<30)), "cpu-s/GiB")
			}
			benchWriteReadWith(b, c, m.file, block, size, cpu)
		})
	}
}
