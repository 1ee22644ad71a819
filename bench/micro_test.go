package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// Benchmarks of what only this package compares: the stock policies'
// reconnects side by side, and single calls against a real Ganesha. Run with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The hot path's own benchmarks live with the code they measure: rpc's
// BenchmarkNullRoundTrip (a pipelined NULL call over xprt.Transport),
// xprt's BenchmarkConnReady and BenchmarkReconnect (the transport's redial
// alone), nfs4's COMPOUND building and reply decoding.

// Program and version of the calls sent to the responder: it answers any.
const (
	benchProg = 100003
	benchVers = 4
)

// sysAuth returns the AUTH_SYS credential of a typical client.
func sysAuth(tb testing.TB) rpc.Auth {
	a, err := rpc.NewAuthSys(rpc.SysCred{Machine: "client.example.com", UID: 1000, GID: 1000, GIDs: []uint32{4, 24, 27}})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// plainTransport is an rpc.Transport without any reconnect machinery: one
// connection, dialed once; after Fail every Conn returns the failure. It
// is the baseline that shows what xprt.Transport adds to a call.
type plainTransport struct {
	c      net.Conn
	failed atomic.Pointer[error]
}

func newPlainTransport(tb testing.TB, addr string) *plainTransport {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &plainTransport{c: c}
}

func (p *plainTransport) Conn() (net.Conn, uint64, <-chan struct{}, error) {
	if err := p.failed.Load(); err != nil {
		return nil, 0, nil, *err
	}
	return p.c, 1, nil, nil
}

func (p *plainTransport) Fail(_ uint64, cause error) {
	err := fmt.Errorf("bench: plain transport failed: %w", cause)
	if p.failed.CompareAndSwap(nil, &err) {
		p.c.Close()
	}
}

func (p *plainTransport) Answered(uint64) {}

func (p *plainTransport) Close() error {
	p.Fail(1, net.ErrClosed)
	return nil
}

// transports are the two ways of carrying calls compared below.
var transports = []struct {
	name string
	new  func(tb testing.TB, addr string) rpc.Transport
}{
	{"plain", func(tb testing.TB, addr string) rpc.Transport {
		return newPlainTransport(tb, addr)
	}},
	{"xprt", func(tb testing.TB, addr string) rpc.Transport {
		tr, err := xprt.New(xprt.Config{Addr: addr, Policy: policy.Hedged(policy.Options{})})
		if err != nil {
			tb.Fatal(err)
		}
		return tr
	}},
}

// newClient returns an rpc.Client over tr that has made one call.
func newClient(tb testing.TB, tr rpc.Transport) *rpc.Client {
	c := rpc.NewClient(tr, rpc.Config{Prog: benchProg, Vers: benchVers, Auth: sysAuth(tb)})
	tb.Cleanup(func() { c.Close() })
	if err := c.Call(context.Background(), 0, nil, nil); err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestReconnectAddsNoAllocation: a steady-state call over the
// reconnect-capable transport allocates no more than over a plain
// connection, and at most twice.
func TestReconnectAddsNoAllocation(t *testing.T) {
	allocs := map[string]float64{}
	for _, tp := range transports {
		srv := rpctest.StartResponder(t)
		tr := tp.new(t, srv.Addr())
		c := newClient(t, tr)
		ctx := context.Background()
		for range 100 { // warm the pools
			if err := c.Call(ctx, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		allocs[tp.name] = testing.AllocsPerRun(2000, func() {
			if err := c.Call(ctx, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
		})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if allocs["xprt"] > allocs["plain"] || allocs["xprt"] > 2 {
		t.Errorf("allocations per NULL call: %v over xprt.Transport, %v over a plain connection; want no more than plain and at most 2",
			allocs["xprt"], allocs["plain"])
	}
}

// stockPolicies are the four stock policies with their defaults.
var stockPolicies = []struct {
	name     string
	new      func() policy.Policy
	reserved bool
}{
	{"SameReservedPort", func() policy.Policy { return policy.SameReservedPort(policy.Options{}) }, true},
	{"NewReservedPort", func() policy.Policy { return policy.NewReservedPort(policy.Options{}) }, true},
	{"Ephemeral", func() policy.Policy { return policy.Ephemeral(policy.Options{}) }, false},
	{"Hedged", func() policy.Policy { return policy.Hedged(policy.Options{}) }, false},
}

// faults are the ways the server drops a connection.
var faults = []struct {
	name string
	drop func(*rpctest.Conn) error
}{
	{"reset", (*rpctest.Conn).Abort}, // RST: the client's next I/O fails with ECONNRESET
	{"close", (*rpctest.Conn).Close}, // FIN: the client reads end-of-file
}

// BenchmarkReconnectByPolicy measures, per stock policy and per fault, the
// time from the server dropping the connection to the first successful call
// after it: the client notices, the transport redials from the port the
// policy picks, and the call is sent again and answered. One op is one
// reconnect. (xprt's BenchmarkReconnect times the redial alone, after Fail,
// with a policy that never waits.)
func BenchmarkReconnectByPolicy(b *testing.B) {
	for _, p := range stockPolicies {
		for _, f := range faults {
			b.Run(fmt.Sprintf("policy=%s/fault=%s", p.name, f.name), func(b *testing.B) {
				if p.reserved && os.Geteuid() != 0 {
					b.Skip("reserved ports need root")
				}
				srv := rpctest.StartResponder(b)
				tr, err := xprt.New(xprt.Config{Addr: srv.Addr(), Policy: p.new()})
				if err != nil {
					b.Fatal(err)
				}
				c := newClient(b, tr)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				b.ReportAllocs()
				for b.Loop() {
					conn := current(b, srv, tr)
					if err := f.drop(conn); err != nil {
						b.Fatal(err)
					}
					if err := c.Call(ctx, 0, nil, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				st := tr.Stats()
				if st.Reconnects < uint64(b.N) {
					b.Fatalf("%d reconnects for %d drops", st.Reconnects, b.N)
				}
			})
		}
	}
}

// current returns the server's end of the transport's ready connection.
func current(tb testing.TB, srv *rpctest.Server, tr *xprt.Transport) *rpctest.Conn {
	port := tr.Stats().LocalPort
	conns := srv.Conns()
	for i := len(conns) - 1; i >= 0 && i >= len(conns)-4; i-- {
		if conns[i].RemotePort() == port {
			return conns[i]
		}
	}
	tb.Fatalf("no server connection from local port %d among the last of %d", port, len(conns))
	return nil
}

// BenchmarkGanesha measures single calls through nfs4's public API against
// a real Ganesha on loopback: GETATTR (File.Stat: a COMPOUND of SEQUENCE,
// PUTFH, GETATTR encoded, sent, and its reply decoded into fs.FileInfo) and
// READ (File.ReadAt into the caller's buffer: the reply's data must land
// there, so allocations do not grow with the size). The round trip to
// Ganesha dominates the time; the allocations are the client's own.
func BenchmarkGanesha(b *testing.B) {
	srv := ganesha.Start(b, ganesha.Config{})
	ctx := context.Background()
	c, err := nfs4.Dial(ctx, srv.Addr(), nfs4.Config{Policy: policy.Ephemeral(policy.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(filepath.Join(srv.ExportDir(), "f"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := c.Open(ctx, srv.Pseudo()+"/f")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("GETATTR", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Stat(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("READ/size=%dKiB", size>>10), func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var off int64
			for b.Loop() {
				n, err := f.ReadAt(buf, off)
				if n != size || (err != nil && !errors.Is(err, io.EOF)) {
					b.Fatalf("ReadAt(%d bytes at %d) = %d, %v", size, off, n, err)
				}
				off = (off + int64(size)) % int64(len(data))
			}
		})
	}
}
