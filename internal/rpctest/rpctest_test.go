package rpctest_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/rpctest"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// The client side of these tests is encoded by hand, word by word, so that
// the server's encoders are checked against RFC 5531 rather than against
// themselves.

const testTimeout = 10 * time.Second

type client struct {
	t  *testing.T
	nc *net.TCPConn
	br *bufio.Reader
}

func dial(t *testing.T, s *rpctest.Server) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp4", s.Addr(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, nc: nc.(*net.TCPConn), br: bufio.NewReader(nc)}
}

func (c *client) localPort() int { return c.nc.LocalAddr().(*net.TCPAddr).Port }

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// callMsg returns a call message with an AUTH_NONE credential and verifier.
func callMsg(xid, prog, vers, proc uint32, args []byte) []byte {
	var e xdr.Encoder
	for _, w := range []uint32{xid, 0, 2, prog, vers, proc, 0, 0, 0, 0} {
		e.Uint32(w)
	}
	return append(e.Bytes(), args...)
}

// record frames msg as a single last fragment.
func record(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(msg))), msg...)
}

// readRecord reads one record and returns it with its fragments' lengths.
func (c *client) readRecord() ([]byte, []int, error) {
	var rec []byte
	var frags []int
	for len(frags) < 1000 {
		var hdr [4]byte
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return rec, frags, err
		}
		m := binary.BigEndian.Uint32(hdr[:])
		n := int(m &^ (1 << 31))
		frags = append(frags, n)
		off := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, rec[off:]); err != nil {
			return rec, frags, err
		}
		if m&(1<<31) != 0 {
			return rec, frags, nil
		}
	}
	return rec, frags, errors.New("too many fragments")
}

func (c *client) mustRecord() []byte {
	c.t.Helper()
	rec, _, err := c.readRecord()
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return rec
}

// words encodes vals as XDR unsigned ints.
func words(vals ...uint32) []byte {
	var e xdr.Encoder
	for _, v := range vals {
		e.Uint32(v)
	}
	return e.Bytes()
}

// successReply is the reply Reply must send: xid, REPLY, MSG_ACCEPTED,
// AUTH_NONE verifier, SUCCESS, results.
func successReply(xid uint32, results []byte) []byte {
	return append(words(xid, 1, 0, 0, 0, 0), results...)
}

func TestEchoDecodesCallAndEncodesReply(t *testing.T) {
	testutil.CheckLeaks(t)
	calls := make(chan *rpctest.Call, 1)
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		calls <- call
		rpctest.Echo(c, call)
	})
	cl := dial(t, s)

	var e xdr.Encoder
	for _, w := range []uint32{0x01020304, 0, 2, 100003, 4, 1} {
		e.Uint32(w)
	}
	e.Uint32(rpctest.AuthSys)
	e.Opaque([]byte("cred-body")) // 9 bytes: exercises padding
	e.Uint32(6)
	e.Opaque([]byte("verf"))
	args := words(7, 8, 9)
	cl.write(record(append(e.Bytes(), args...)))

	rec, frags, err := cl.readRecord()
	if err != nil {
		t.Fatal(err)
	}
	if want := successReply(0x01020304, args); !bytes.Equal(rec, want) {
		t.Errorf("reply = %x, want %x", rec, want)
	}
	if len(frags) != 1 {
		t.Errorf("reply in %d fragments, want 1", len(frags))
	}

	call := <-calls
	if call.XID != 0x01020304 || call.Prog != 100003 || call.Vers != 4 || call.Proc != 1 {
		t.Errorf("call header = %#x %d %d %d", call.XID, call.Prog, call.Vers, call.Proc)
	}
	if call.CredFlavor != rpctest.AuthSys || string(call.Cred) != "cred-body" {
		t.Errorf("cred = %d %q", call.CredFlavor, call.Cred)
	}
	if call.VerfFlavor != 6 || string(call.Verf) != "verf" {
		t.Errorf("verf = %d %q", call.VerfFlavor, call.Verf)
	}
	if !bytes.Equal(call.Args, args) || call.Seq != 0 || call.Conn != s.Conns()[0] {
		t.Errorf("args %x seq %d conn %v", call.Args, call.Seq, call.Conn)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestFragmentSizeSplitsReplies(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, rpctest.Echo)
	s.SetFragmentSize(8)
	cl := dial(t, s)

	args := []byte("thirty bytes of opaque results") // 24+30 = 54 bytes of reply
	cl.write(record(callMsg(5, 1, 1, 1, args)))
	rec, frags, err := cl.readRecord()
	if err != nil {
		t.Fatal(err)
	}
	if want := successReply(5, args); !bytes.Equal(rec, want) {
		t.Errorf("reassembled reply = %x, want %x", rec, want)
	}
	if want := []int{8, 8, 8, 8, 8, 8, 6}; !slices.Equal(frags, want) {
		t.Errorf("fragment lengths = %v, want %v", frags, want)
	}
}

func TestCallSpanningFragmentsAndWrites(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, nil) // nil handler: Echo
	cl := dial(t, s)

	msg := callMsg(6, 1, 1, 1, words(1, 2, 3, 4))
	// Three fragments of 20, 0 and the rest bytes, written in pieces.
	var stream []byte
	stream = binary.BigEndian.AppendUint32(stream, 20)
	stream = append(stream, msg[:20]...)
	stream = binary.BigEndian.AppendUint32(stream, 0)
	stream = binary.BigEndian.AppendUint32(stream, 1<<31|uint32(len(msg)-20))
	stream = append(stream, msg[20:]...)
	for i := 0; i < len(stream); i += 7 {
		cl.write(stream[i:min(i+7, len(stream))])
	}
	if got, want := cl.mustRecord(), successReply(6, words(1, 2, 3, 4)); !bytes.Equal(got, want) {
		t.Errorf("reply = %x, want %x", got, want)
	}
}

func TestStashedCallsRepliedOutOfOrder(t *testing.T) {
	testutil.CheckLeaks(t)
	stash := make(chan *rpctest.Call, 3)
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) { stash <- call })
	cl := dial(t, s)

	var out []byte
	for xid := uint32(1); xid <= 3; xid++ {
		out = append(out, record(callMsg(xid, 1, 1, 1, words(xid)))...)
	}
	cl.write(out)
	recs := s.WaitCalls(t, 3, 0)
	for i, r := range recs {
		if r.XID != uint32(i+1) || r.Seq != i {
			t.Errorf("call %d recorded as xid %d seq %d", i, r.XID, r.Seq)
		}
	}

	var held []*rpctest.Call
	for range 3 {
		held = append(held, <-stash)
	}
	for _, call := range slices.Backward(held) {
		if err := call.Conn.Reply(call, call.Args); err != nil {
			t.Fatal(err)
		}
	}
	for _, xid := range []uint32{3, 2, 1} {
		if got, want := cl.mustRecord(), successReply(xid, words(xid)); !bytes.Equal(got, want) {
			t.Errorf("reply = %x, want %x", got, want)
		}
	}
}

func TestAbortResetsConnection(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if err := c.Abort(); err != nil {
			t.Error(err)
		}
	})
	cl := dial(t, s)
	cl.write(record(callMsg(1, 1, 1, 1, nil)))
	_, _, err := cl.readRecord()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read error = %v, want ECONNRESET", err)
	}
	waitDone(t, s.Conns()[0])
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestCloseSendsFINAfterReplies(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		rpctest.Echo(c, call)
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	cl := dial(t, s)
	// Both calls in one write: the second is unread when Close runs,
	// which must not turn the FIN into a reset.
	cl.write(append(record(callMsg(1, 1, 1, 1, nil)), record(callMsg(2, 1, 1, 1, nil))...))

	if got, want := cl.mustRecord(), successReply(1, nil); !bytes.Equal(got, want) {
		t.Errorf("reply = %x, want %x", got, want)
	}
	if _, _, err := cl.readRecord(); err != io.EOF {
		t.Fatalf("after Close, client read error = %v, want EOF", err)
	}
	// A call sent after the FIN is neither dispatched nor recorded.
	cl.write(record(callMsg(3, 1, 1, 1, nil)))
	if err := cl.nc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s.Conns()[0])
	if recs := s.Calls(); len(recs) != 1 || recs[0].XID != 1 {
		t.Errorf("Calls() = %+v, want only xid 1", recs)
	}
}

func waitDone(t *testing.T, c *rpctest.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatalf("%v not done", c)
	}
}

func TestCallsRecordConnIndexAndPort(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, rpctest.Echo)
	a := dial(t, s)
	s.WaitConns(t, 1, 0)
	b := dial(t, s)
	conns := s.WaitConns(t, 2, 0)
	if conns[0].Index() != 0 || conns[0].RemotePort() != a.localPort() ||
		conns[1].Index() != 1 || conns[1].RemotePort() != b.localPort() {
		t.Fatalf("conns = %v, %v; client ports %d, %d", conns[0], conns[1], a.localPort(), b.localPort())
	}

	b.write(record(callMsg(10, 7, 1, 2, nil)))
	b.mustRecord()
	a.write(record(callMsg(20, 8, 3, 4, nil)))
	a.mustRecord()

	want := []rpctest.CallRecord{
		{XID: 10, Prog: 7, Vers: 1, Proc: 2, Conn: 1, RemotePort: b.localPort(), Seq: 0},
		{XID: 20, Prog: 8, Vers: 3, Proc: 4, Conn: 0, RemotePort: a.localPort(), Seq: 1},
	}
	if got := s.WaitCalls(t, 2, 0); !slices.Equal(got, want) {
		t.Errorf("Calls = %+v\nwant %+v", got, want)
	}
}

func TestErrorReplies(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		var err error
		switch call.Proc {
		case 1:
			err = c.ReplyAccept(call, rpctest.ProgMismatch, 2, 4)
		case 2:
			err = c.ReplyAccept(call, rpctest.GarbageArgs, 2, 4)
		case 3:
			err = c.ReplyDenied(call, rpctest.RPCMismatch, 2, 2, 0)
		case 4:
			err = c.ReplyDenied(call, rpctest.AuthError, 0, 0, rpctest.AuthTooWeak)
		case 5:
			err = c.ReplyDenied(call, 9, 1, 1, 1)
		}
		if err != nil {
			t.Error(err)
		}
	})
	cl := dial(t, s)
	for _, tc := range []struct {
		proc uint32
		want []byte
	}{
		{1, words(1, 1, 0, 0, 0, 2, 2, 4)}, // accepted, verf, PROG_MISMATCH 2..4
		{2, words(2, 1, 0, 0, 0, 4)},       // accepted, verf, GARBAGE_ARGS
		{3, words(3, 1, 1, 0, 2, 2)},       // denied, RPC_MISMATCH 2..2
		{4, words(4, 1, 1, 1, 5)},          // denied, AUTH_ERROR AUTH_TOOWEAK
		{5, words(5, 1, 1, 9)},             // denied, undefined reject_stat
	} {
		cl.write(record(callMsg(tc.proc, 1, 1, tc.proc, nil)))
		if got := cl.mustRecord(); !bytes.Equal(got, tc.want) {
			t.Errorf("proc %d: reply = %x, want %x", tc.proc, got, tc.want)
		}
	}
}

func TestWriteRawReachesClientVerbatim(t *testing.T) {
	testutil.CheckLeaks(t)
	raw := []byte{0x80, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef}
	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
		if err := c.WriteRaw(raw); err != nil {
			t.Error(err)
		}
	})
	cl := dial(t, s)
	cl.write(record(callMsg(1, 1, 1, 1, nil)))
	got := make([]byte, len(raw))
	if _, err := io.ReadFull(cl.br, got); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("read %x, %v; want %x", got, err, raw)
	}
}

func TestBadRecordClosesConnectionAndSetsErr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"reply not call", record(words(1, 1, 0, 0, 0, 0)), "msg_type 1"},
		{"rpcvers 3", record(words(1, 0, 3, 1, 1, 1, 0, 0, 0, 0)), "rpcvers 3"},
		{"short header", record(words(1, 0, 2)), "bad call header"},
		{"cred too long", record(words(1, 0, 2, 1, 1, 1, 1, 401)), "bad call header"},
		{"record too long", words(1<<31 | 1<<30), "longer than"},
		{"truncated", append(words(1<<31|100), 1, 2, 3), "inside a record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			s := rpctest.Start(t, func(*rpctest.Conn, *rpctest.Call) {
				t.Error("handler called")
			})
			cl := dial(t, s)
			cl.write(tc.stream)
			if err := cl.nc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, s.WaitConns(t, 1, 0)[0])
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), tc.want) ||
				!strings.HasPrefix(err.Error(), "rpctest: conn 0: ") {
				t.Errorf("Err() = %v, want one mentioning %q", err, tc.want)
			}
			if _, _, err := cl.readRecord(); err == nil {
				t.Error("client read a reply to a bad record")
			}
		})
	}
}

func TestCleanupClosesListenerAndConnections(t *testing.T) {
	testutil.CheckLeaks(t)
	var nc net.Conn
	var addr string
	t.Run("server", func(t *testing.T) {
		s := rpctest.Start(t, func(*rpctest.Conn, *rpctest.Call) {}) // never replies
		addr = s.Addr()
		var err error
		if nc, err = net.DialTimeout("tcp4", addr, testTimeout); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(record(callMsg(1, 1, 1, 1, nil))); err != nil {
			t.Fatal(err)
		}
		s.WaitCalls(t, 1, 0)
	})
	if nc == nil {
		t.FailNow()
	}
	defer nc.Close()
	// The subtest's cleanup closed the server: the client reads EOF, and
	// CheckLeaks verifies the server's goroutines are gone.
	if err := nc.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read = %d, %v; want EOF", n, err)
	}
	if c, err := net.DialTimeout("tcp4", addr, testTimeout); err == nil {
		c.Close()
		t.Error("closed server still accepts connections")
	}
}

// fatalTB records Fatalf instead of failing the test.
type fatalTB struct {
	testing.TB
	msg chan string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitCallsFailsAfterTimeout(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.Start(t, rpctest.Echo)
	tb := &fatalTB{TB: t, msg: make(chan string, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitCalls(tb, 1, time.Millisecond)
		t.Error("WaitCalls returned with no calls")
	}()
	<-done
	select {
	case msg := <-tb.msg:
		if !strings.Contains(msg, "0 calls, want at least 1") {
			t.Errorf("Fatalf message = %q", msg)
		}
	default:
		t.Error("WaitCalls did not call Fatalf")
	}
}

func TestResponderAnswersPipelinedCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.StartResponder(t)
	cl := dial(t, s)

	// 2000 calls (about 90 KB, more than one read buffer) in one write,
	// every third split into two fragments.
	const n = 2000
	var out []byte
	for xid := uint32(1); xid <= n; xid++ {
		msg := callMsg(xid, 100003, 4, 1, words(xid, xid))
		if xid%3 == 0 {
			out = binary.BigEndian.AppendUint32(out, 6)
			out = append(out, msg[:6]...)
			msg = msg[6:]
		}
		out = append(out, record(msg)...)
	}
	werr := make(chan error, 1)
	go func() { // the server's replies may fill the socket buffers first
		_, err := cl.nc.Write(out)
		werr <- err
	}()
	for xid := uint32(1); xid <= n; xid++ {
		rec, frags, err := cl.readRecord()
		if err != nil {
			t.Fatalf("reply %d: %v", xid, err)
		}
		if want := successReply(xid, nil); !bytes.Equal(rec, want) || len(frags) != 1 {
			t.Fatalf("reply %d = %x in %d fragments, want %x in 1", xid, rec, len(frags), want)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if len(s.Calls()) != 0 || s.Err() != nil {
		t.Errorf("Calls() = %d records, Err() = %v; want none, nil", len(s.Calls()), s.Err())
	}

	// A reply record from the client is a protocol error.
	cl.write(record(words(1, 1, 0, 0, 0, 0)))
	waitDone(t, s.Conns()[0])
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "msg_type 1") {
		t.Errorf("Err() = %v, want msg_type error", err)
	}
}

func TestResponderAbort(t *testing.T) {
	testutil.CheckLeaks(t)
	s := rpctest.StartResponder(t)
	cl := dial(t, s)
	cl.write(record(callMsg(1, 1, 1, 1, nil)))
	cl.mustRecord()
	if err := s.Conns()[0].Abort(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.readRecord(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read error = %v, want ECONNRESET", err)
	}
}

// BenchmarkResponder measures a round of 64 pipelined calls against the
// responder; ns/op and allocs/op are per call, client and server together.
func BenchmarkResponder(b *testing.B) {
	s := rpctest.StartResponder(b)
	nc, err := net.Dial("tcp4", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	const window = 64
	var batch []byte
	for xid := uint32(0); xid < window; xid++ {
		batch = append(batch, record(callMsg(xid, 100003, 4, 0, nil))...)
	}
	replies := make([]byte, window*28)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += window {
		if _, err := nc.Write(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, replies); err != nil {
			b.Fatal(err)
		}
	}
}
