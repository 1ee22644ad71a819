package krb5_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/kdc"
	"github.com/gonfs/nfs/krb5"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/rpc"
)

// What each security flavor costs, against one Ganesha whose export takes
// all four, with the library's default settings (in krb5/):
//
//	go test -run '^$' -bench 'Security|GetattrKrb5i' -benchtime 3x .
//
// BenchmarkSecurity writes, then reads, 1 GiB per iteration; cpu-s/GiB is
// the process's CPU time (user and system, getrusage) per GiB moved: the
// client's alone, Ganesha being another process.
const benchSize = 1 << 30

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchServer starts a realm and a Ganesha whose export takes sys and the
// three Kerberos services, and returns a dialer for each flavor.
func benchServer(b *testing.B) (*ganesha.Server, func(sec string, cfg nfs4.Config) *nfs4.Client) {
	b.Helper()
	r := newRealm(b, kdc.Config{})
	srv := r.server(b, ganesha.Config{}, "sys", "krb5", "krb5i", "krb5p")
	return srv, func(sec string, cfg nfs4.Config) *nfs4.Client {
		switch sec {
		case "krb5":
			cfg.Auth = r.auth(b, krb5.Password(user, password), rpc.GSSNone)
		case "krb5i":
			cfg.Auth = r.auth(b, krb5.Password(user, password), rpc.GSSIntegrity)
		case "krb5p":
			cfg.Auth = r.auth(b, krb5.Password(user, password), rpc.GSSPrivacy)
		}
		return mustDial(b, srv.Addr(), cfg)
	}
}

// BenchmarkSecurity writes and reads 1 GiB under sys, krb5, krb5i and
// krb5p.
func BenchmarkSecurity(b *testing.B) {
	srv, dial := benchServer(b)
	data := bytes.Repeat([]byte("0123456789abcdef"), benchSize/16)
	for _, sec := range []string{"sys", "krb5", "krb5i", "krb5p"} {
		c := dial(sec, nfs4.Config{})
		name := srv.Pseudo() + "/" + sec
		b.Run(sec+"/write", func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(benchSize)
			cpu := cpuTime()
			for b.Loop() {
				if err := writeFile(ctx, c, name, data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/GiB")
		})
		b.Run(sec+"/read", func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(benchSize)
			cpu := cpuTime()
			for b.Loop() {
				f, err := c.Open(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, f)
				f.Close()
				if err != nil || n != benchSize {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/GiB")
		})
		os.Remove(filepath.Join(srv.ExportDir(), sec))
	}
}

// BenchmarkGetattrKrb5i is one caller's uncached Stat under krb5i: what a
// steady-state call allocates, its MICs included.
func BenchmarkGetattrKrb5i(b *testing.B) {
	srv, dial := benchServer(b)
	if err := os.WriteFile(filepath.Join(srv.ExportDir(), "f"), []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	c := dial("krb5i", nfs4.Config{NoAC: true})
	ctx := context.Background()
	name := srv.Pseudo() + "/f"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Stat(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
}
