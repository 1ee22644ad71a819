package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// intoBuffer is the results of the echo peer, one opaque, taken into dst
// (rpc.PayloadReceiver) the way package nfs4 takes a READ's data.
type intoBuffer struct {
	dst []byte
	got []byte
}

func (r *intoBuffer) LocatePayload(results []byte) (int, []byte, bool) { return 0, r.dst, true }

func (r *intoBuffer) UnmarshalXDR(d *xdr.Decoder) error {
	r.got = d.Payload(len(r.dst))
	return d.Err()
}

// pattern returns n bytes that differ from their neighbours' positions.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed
	}
	return p
}

// A reply's payload lands in the caller's buffer whatever its size against
// the reader's first read of the reply; a payload that does not fit the
// buffer, or that the server splits across record fragments, is read with
// the reply and decoded the ordinary way (Payload checks the limit).
func TestPayloadIntoCallersBuffer(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rpctest.Start(t, rpctest.Echo)
	c := dial(t, srv.Addr(), nil, rpc.Config{})
	ctx := ctxT(t, time.Minute)
	for _, tc := range []struct {
		name      string
		size, dst int
		fragment  int // the server's fragment size; 0: one fragment
		inBuffer  bool
		err       error
	}{
		{"1 MiB", 1 << 20, 1 << 20, 0, true, nil},
		{"unaligned, in a larger buffer", 70001, 1 << 20, 0, true, nil},
		{"within the reader's first read", 100, 1 << 20, 0, true, nil},
		{"empty", 0, 16, 0, true, nil},
		{"larger than the buffer", 5000, 4999, 0, false, xdr.ErrTooLong},
		{"across fragments", 1 << 20, 1 << 20, 64 << 10, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFragmentSize(tc.fragment)
			want := pattern(tc.size, 1)
			res := intoBuffer{dst: make([]byte, tc.dst)}
			err := c.Call(ctx, 1, &opaque{want}, &res)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(res.got, want) {
				t.Fatalf("got %d bytes that differ from the %d sent", len(res.got), len(want))
			}
			inBuffer := len(res.got) > 0 && &res.got[0] == &res.dst[0]
			if tc.size > 0 && inBuffer != tc.inBuffer {
				t.Errorf("data read into the caller's buffer: %v, want %v", inBuffer, tc.inBuffer)
			}
		})
	}
}

// payloadHead is the start of a reply to call whose results are one
// opaque of n bytes, up to the length word, as one fragment would carry it.
func payloadHead(call *rpctest.Call, n int) []byte {
	rec := binary.BigEndian.AppendUint32(nil, 1<<31|uint32(28+n+(4-n%4)%4))
	for _, w := range []uint32{call.XID, 1, 0, 0, 0, 0, uint32(n)} { // REPLY, MSG_ACCEPTED, AUTH_NONE, SUCCESS
		rec = binary.BigEndian.AppendUint32(rec, w)
	}
	return rec
}

// A connection that dies while a reply's payload is coming into the
// caller's buffer costs the call nothing: it is re-sent on the next
// connection and gets its whole reply there.
func TestPayloadCutShortIsResent(t *testing.T) {
	testutil.CheckLeaks(t)
	var conns atomic.Int32
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if c.Index() > 0 {
			rpctest.Echo(c, call)
			return
		}
		conns.Add(1)
		var args xdr.Decoder
		args.Reset(call.Args)
		data := args.Opaque(4 << 20)
		_ = c.WriteRaw(append(payloadHead(call, len(data)), data[:len(data)/2]...))
		_ = c.Abort()
	})
	p := policy.Ephemeral(policy.Options{BackOff: backoff.NewConstantBackOff(time.Millisecond)})
	c := dial(t, srv.Addr(), p, rpc.Config{})
	want := pattern(1<<20, 2)
	res := intoBuffer{dst: make([]byte, len(want))}
	if err := c.Call(ctxT(t, time.Minute), 1, &opaque{want}, &res); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.got, want) {
		t.Fatal("the re-sent call's data differs from what was sent")
	}
	if st := c.Stats(); st.Retransmits != 1 || st.Pending != 0 || conns.Load() != 1 {
		t.Errorf("stats %+v after %d cut-short replies; want one re-send, nothing pending", st, conns.Load())
	}
}

// A call abandoned (its context ended) while its payload is coming into
// the caller's buffer returns only once nothing more will be written
// there: here the server stalls half-way, so the call waits a major
// timeout and fails the connection. Nothing written after the server goes
// on lands in the buffer.
func TestAbandonedPayloadLeavesBufferAlone(t *testing.T) {
	testutil.CheckLeaks(t)
	half := make(chan *rpctest.Conn, 1)
	var rest []byte
	var mu sync.Mutex
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		var args xdr.Decoder
		args.Reset(call.Args)
		data := args.Opaque(4 << 20)
		_ = c.WriteRaw(append(payloadHead(call, len(data)), data[:len(data)/2]...))
		mu.Lock()
		rest = bytes.Clone(data[len(data)/2:])
		mu.Unlock()
		half <- c
	})
	c := dial(t, srv.Addr(), nil, rpc.Config{Timeo: 200 * time.Millisecond, Retrans: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := intoBuffer{dst: make([]byte, 1<<20)}
	done := make(chan error, 1)
	go func() { done <- c.Call(ctx, 1, &opaque{pattern(1<<20, 3)}, &res) }()
	var conn *rpctest.Conn
	select {
	case conn = <-half:
	case <-time.After(time.Minute):
		t.Fatal("the call never reached the server")
	}
	// The reader takes the call out of pending once the reply's head is in.
	waitFor(t, "the reply's head read", func() bool { return c.Stats().Pending == 0 })
	time.Sleep(20 * time.Millisecond) // and the first half, most likely
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	snapshot := bytes.Clone(res.dst)
	mu.Lock()
	_ = conn.WriteRaw(rest) // to a connection the client has failed
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if !bytes.Equal(res.dst, snapshot) {
		t.Fatal("the caller's buffer changed after the call returned")
	}
	if st := c.Stats(); st.Pending != 0 {
		t.Errorf("stats %+v; want nothing pending", st)
	}
}

// A connection declared dead while its reader is taking a reply's payload
// (here by a major timeout; in the field by the path watch) holds the call
// until that reader lets go of it. The call is re-sent only then: a re-send
// answered on another connection before it would find no call pending,
// its reply dropped, and the call would wait out a major timeout more —
// the default's two minutes — on a connection that is working.
func TestPayloadCutOffByADeadConnectionIsResentOnce(t *testing.T) {
	testutil.CheckLeaks(t)
	var mu sync.Mutex
	seen := map[uint32]bool{}
	srv := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		mu.Lock()
		again := seen[call.XID]
		seen[call.XID] = true
		mu.Unlock()
		if again {
			rpctest.Echo(c, call)
			return
		}
		// The head and half the payload, then silence.
		var args xdr.Decoder
		args.Reset(call.Args)
		data := args.Opaque(4 << 20)
		_ = c.WriteRaw(append(payloadHead(call, len(data)), data[:len(data)/2]...))
	})
	// Two connections, so that the re-send goes out at once, on the one
	// already up, and its reply comes back quickly.
	c := dialTrunk(t, srv.Addr(), 2, rpc.Config{Timeo: 300 * time.Millisecond, Retrans: 1})
	ctx := ctxT(t, time.Minute)
	const calls = 20
	for i := range calls {
		want := pattern(1<<20, byte(i))
		res := intoBuffer{dst: make([]byte, len(want))}
		if err := c.Call(ctx, 1, &opaque{want}, &res); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !bytes.Equal(res.got, want) {
			t.Fatalf("call %d: the data differs from what was sent", i)
		}
	}
	if st := c.Stats(); st.MajorTimeouts != calls || st.UnknownXIDs != 0 || st.Pending != 0 {
		t.Errorf("stats %+v after %d calls each cut off once; want %d major timeouts, no reply dropped, nothing pending",
			st, calls, calls)
	}
}
