package rpc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// BenchmarkNullRoundTrip measures a pipelined NULL call over loopback to an
// in-process responder, with 1 and 64 concurrent callers on one connection.
func BenchmarkNullRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			srv := rpctest.StartResponder(b)
			c := dial(b, srv.Addr(), nil, rpc.Config{})
			ctx := context.Background()
			if err := c.Call(ctx, 0, nil, nil); err != nil { // connect
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < callers; g++ {
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

// countingPolicy counts how often the transport consults its policy.
type countingPolicy struct {
	policy.Policy
	next atomic.Int64
}

func (p *countingPolicy) Next(a policy.Attempt) policy.Decision {
	p.next.Add(1)
	return p.Policy.Next(a)
}

// TestSteadyStateCall: on a healthy connection a call allocates at most
// twice, and the reconnect policy is consulted only for the one dial.
func TestSteadyStateCall(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.StartResponder(t)
	p := &countingPolicy{Policy: policy.Hedged(policy.Options{})}
	c := dial(t, srv.Addr(), p, rpc.Config{})
	ctx := context.Background()
	for i := 0; i < 100; i++ { // connect and warm the pools
		if err := c.Call(ctx, 0, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if err := c.Call(ctx, 0, nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("a steady-state NULL call allocates %.2f times, want at most 2", allocs)
	}
	if n := p.next.Load(); n != 1 {
		t.Errorf("policy consulted %d times for 2100 calls on one connection, want once (the dial)", n)
	}
}

// BenchmarkHeader encodes a CALL header with AUTH_SYS credentials and
// decodes an accepted REPLY header: the per-call framing work, without I/O.
// It must not allocate.
func BenchmarkHeader(b *testing.B) {
	auth, err := rpc.NewAuthSys(rpc.SysCred{Machine: "client.example.com", UID: 1000, GID: 1000, GIDs: []uint32{4, 24, 27}})
	if err != nil {
		b.Fatal(err)
	}
	var re xdr.Encoder
	rpc.AppendAcceptedReply(&re, 42, rpc.OpaqueAuth{Flavor: rpc.AuthFlavorNone}, rpc.Success, 0, 0)
	re.Uint32(0) // NFS4_OK: the results' first word
	reply := re.Bytes()
	buf := make([]byte, 0, 512)
	var e xdr.Encoder
	d := xdr.NewDecoder(nil)
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(buf[:0])
		rpc.AppendCall(&e, 42, 100003, 4, 1, auth)
		d.Reset(reply)
		if xid, err := rpc.ParseReply(d, auth); err != nil || xid != 42 {
			b.Fatalf("ParseReply: xid %d, %v", xid, err)
		}
	}
}
