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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
	"github.com/gonfs/nfs/xprt"
)

// Micro-benchmarks of the hot path, through the public API only. Run with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// rpc, xprt and nfs4 have their own (NULL round trips, Transport.Conn,
// COMPOUND building and READ reply decoding on unexported types); these add
// what a user of the public API sees and what the comparison needs: the
// reconnect machinery's cost per call (none) and per reconnect (per policy).

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

// BenchmarkRPCHeader encodes a CALL header with AUTH_SYS credentials and
// decodes an accepted REPLY header: the per-call RPC framing work, without
// I/O.
func BenchmarkRPCHeader(b *testing.B) {
	auth := sysAuth(b)
	var re xdr.Encoder
	// xid 42, REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS:
	re.FixedOpaque([]byte{0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	re.Uint32(0) // NFS4_OK: the results' first word
	reply := re.Bytes()
	buf := make([]byte, 0, 512)
	var e xdr.Encoder
	d := xdr.NewDecoder(nil)
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(buf[:0])
		rpc.AppendCall(&e, 42, benchProg, benchVers, 1, auth)
		d.Reset(reply)
		if xid, err := rpc.ParseReply(d, auth); err != nil || xid != 42 {
			b.Fatalf("ParseReply: xid %d, %v", xid, err)
		}
	}
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

func (p *plainTransport) Close() error {
	p.Fail(1, net.ErrClosed)
	return nil
}

// transports are the two ways of carrying calls compared below.
var transports = []struct {
	name string
	new  func(tb testing.TB, addr string) (rpc.Transport, *xprt.Transport)
}{
	{"plain", func(tb testing.TB, addr string) (rpc.Transport, *xprt.Transport) {
		return newPlainTransport(tb, addr), nil
	}},
	{"xprt", func(tb testing.TB, addr string) (rpc.Transport, *xprt.Transport) {
		tr, err := xprt.New(xprt.Config{Addr: addr, Policy: policy.Hedged(policy.Options{})})
		if err != nil {
			tb.Fatal(err)
		}
		return tr, tr
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

// BenchmarkNullCall is a pipelined NULL round trip with AUTH_SYS to an
// in-process responder over loopback, from 1 and 64 concurrent callers on
// one connection, once over a plain connection and once over the
// reconnect-capable xprt.Transport: the difference is what the reconnect
// machinery costs a call.
func BenchmarkNullCall(b *testing.B) {
	for _, tp := range transports {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("transport=%s/callers=%d", tp.name, callers), func(b *testing.B) {
				srv := rpctest.StartResponder(b)
				tr, _ := tp.new(b, srv.Addr())
				c := newClient(b, tr)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := c.Call(ctx, 0, nil, nil); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

// TestReconnectAddsNoAllocation: a steady-state call over the
// reconnect-capable transport allocates no more than over a plain
// connection, and at most twice.
func TestReconnectAddsNoAllocation(t *testing.T) {
	testutil.CheckLeaks(t)
	allocs := map[string]float64{}
	for _, tp := range transports {
		srv := rpctest.StartResponder(t)
		tr, _ := tp.new(t, srv.Addr())
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

// BenchmarkReconnect measures, per stock policy and per fault, the time from
// the server dropping the connection to the first successful call after it:
// the client notices, the transport redials from the port the policy picks,
// and the call is sent again and answered. One op is one reconnect.
func BenchmarkReconnect(b *testing.B) {
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
	testutil.CheckLeaks(b)
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
