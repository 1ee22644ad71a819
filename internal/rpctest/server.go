package rpctest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// defaultWait is how long WaitCalls and WaitConns wait when given 0.
const defaultWait = 10 * time.Second

// Handler decides what the server does with one call. It runs on the
// connection's reader goroutine, one call at a time in arrival order, so the
// next call on that connection is not read until it returns.
//
// It may reply inline, keep the call and reply later from another goroutine
// (replies may then go out in any order), close or abort the connection, or
// never reply. It must not block past the closing of its connection, or the
// server's cleanup waits for it.
type Handler func(c *Conn, call *Call)

// Call is one decoded call message. Its slices are owned by the Call: the
// server does not reuse them, so a handler may keep the Call indefinitely.
type Call struct {
	XID, Prog, Vers, Proc uint32
	CredFlavor            uint32 // flavor of the credential, e.g. AuthSys
	Cred                  []byte // body of the credential, at most 400 bytes
	VerfFlavor            uint32 // flavor of the verifier
	Verf                  []byte // body of the verifier, at most 400 bytes
	Args                  []byte // everything after the verifier, not decoded
	Conn                  *Conn  // the connection the call arrived on
	Seq                   int    // 0-based arrival order across the whole server
}

// CallRecord is what Server.Calls remembers of each call.
type CallRecord struct {
	XID, Prog, Vers, Proc uint32
	Conn                  int // Conn.Index of the connection it arrived on
	RemotePort            int // the client's local port on that connection
	Seq                   int // 0-based arrival order across the whole server
}

// Server is a scripted ONC RPC server listening on 127.0.0.1. It is safe
// for concurrent use.
type Server struct {
	// fragmentSize is SetFragmentSize's.
	fragmentSize atomic.Int64

	ln        net.Listener
	handler   Handler // nil for a responder
	responder bool
	wg        sync.WaitGroup // the accept goroutine and every reader

	mu      sync.Mutex    // guards the fields below
	conns   []*Conn       // in accept order
	calls   []CallRecord  // in arrival order
	err     error         // first protocol error
	closed  bool          // Close has run
	changed chan struct{} // closed and replaced whenever conns or calls grow, or on Close
}

// Start starts a server that passes every call to h, or to Echo if h is nil.
// It listens on 127.0.0.1 on a port the kernel picks. A cleanup registered
// on t closes the server (see Close).
func Start(t testing.TB, h Handler) *Server {
	t.Helper()
	if h == nil {
		h = Echo
	}
	return start(t, h, false)
}

// StartResponder starts a server for benchmarks that answers every call with
// an empty MSG_ACCEPTED SUCCESS and an AUTH_NONE verifier, as cheaply as it
// can: see responder.go. Calls are not recorded (Calls returns nothing), and
// SetFragmentSize is ignored; Conns, WaitConns and the Conn methods work as for
// Start. A cleanup registered on tb closes the server.
func StartResponder(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, nil, true)
}

func start(tb testing.TB, h Handler, responder bool) *Server {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("rpctest: listen: %v", err)
	}
	s := &Server{
		ln:        ln,
		handler:   h,
		responder: responder,
		changed:   make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Addr returns the address the server listens on, as "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// String returns the address, for test logs.
func (s *Server) String() string { return "rpctest server " + s.Addr() }

// Close stops accepting, closes every connection and waits for every
// goroutine the server started, including handlers that are running. It may
// be called more than once; Start's cleanup calls it too. Later connection
// attempts are refused. It must not be called from a Handler, which would
// wait for itself.
func (s *Server) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	conns := slices.Clone(s.conns)
	if !already {
		s.broadcastLocked()
	}
	s.mu.Unlock()
	if !already {
		s.ln.Close()
		for _, c := range conns {
			c.nc.Close()
		}
	}
	s.wg.Wait()
}

// accept runs on its own goroutine until the listener is closed.
func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.fail(fmt.Errorf("rpctest: accept: %w", err))
			}
			return
		}
		tc := nc.(*net.TCPConn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			tc.Close()
			return
		}
		c := &Conn{
			srv:        s,
			nc:         tc,
			index:      len(s.conns),
			remotePort: tc.RemoteAddr().(*net.TCPAddr).Port,
			done:       make(chan struct{}),
		}
		s.conns = append(s.conns, c)
		s.broadcastLocked()
		s.wg.Add(1)
		s.mu.Unlock()
		if s.responder {
			go c.respond()
		} else {
			go c.serve(s.handler)
		}
	}
}

// broadcastLocked wakes every WaitCalls and WaitConns. s.mu must be held.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// fail records err as the server's error unless one is recorded already.
func (s *Server) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// record assigns call its Seq and appends it to the calls seen.
func (s *Server) record(call *Call) {
	s.mu.Lock()
	call.Seq = len(s.calls)
	s.calls = append(s.calls, CallRecord{
		XID:        call.XID,
		Prog:       call.Prog,
		Vers:       call.Vers,
		Proc:       call.Proc,
		Conn:       call.Conn.index,
		RemotePort: call.Conn.remotePort,
		Seq:        call.Seq,
	})
	s.broadcastLocked()
	s.mu.Unlock()
}

// Err returns the first protocol error a client caused (a record that could
// not be framed or decoded as a call), or an accept failure, or nil. I/O
// errors such as a connection reset by the client are not reported.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Calls returns a copy of every call seen so far, in arrival order. Calls
// that arrive on a connection after its Conn.Close are not seen.
func (s *Server) Calls() []CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Conns returns every connection accepted so far, in accept order,
// including closed ones.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conns)
}

// WaitCalls waits until at least n calls have been seen and returns them all
// (as Calls does). If that takes longer than timeout (0 means 10 seconds) or
// the server is closed first, it calls t.Fatalf, so it must be called from
// the test's goroutine.
func (s *Server) WaitCalls(t testing.TB, n int, timeout time.Duration) []CallRecord {
	t.Helper()
	var got []CallRecord
	s.wait(t, timeout, func() bool {
		if len(s.calls) < n {
			return false
		}
		got = slices.Clone(s.calls)
		return true
	}, func() string {
		return fmt.Sprintf("%d calls, want at least %d", len(s.calls), n)
	})
	return got
}

// WaitConns waits until at least n connections have been accepted and
// returns them all (as Conns does). If that takes longer than timeout (0
// means 10 seconds) or the server is closed first, it calls t.Fatalf, so it
// must be called from the test's goroutine.
func (s *Server) WaitConns(t testing.TB, n int, timeout time.Duration) []*Conn {
	t.Helper()
	var got []*Conn
	s.wait(t, timeout, func() bool {
		if len(s.conns) < n {
			return false
		}
		got = slices.Clone(s.conns)
		return true
	}, func() string {
		return fmt.Sprintf("%d connections, want at least %d", len(s.conns), n)
	})
	return got
}

// wait calls done under s.mu each time the server's state changes, until it
// returns true or timeout passes. On failure it reports state() through
// t.Fatalf.
func (s *Server) wait(t testing.TB, timeout time.Duration, done func() bool, state func() string) {
	t.Helper()
	if timeout <= 0 {
		timeout = defaultWait
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if done() {
			s.mu.Unlock()
			return
		}
		if s.closed {
			msg := state()
			s.mu.Unlock()
			t.Fatalf("rpctest: server closed with %s", msg)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			msg := state()
			s.mu.Unlock()
			t.Fatalf("rpctest: after %v, %s", timeout, msg)
			return
		}
	}
}

// Echo is a Handler that replies to every call with its arguments as the
// results. A failed write is ignored: it means the connection is closing,
// which the reader goroutine notices by itself.
func Echo(c *Conn, call *Call) {
	_ = c.Reply(call, call.Args)
}

// SetFragmentSize makes every reply sent from now on go out in record
// fragments of at most n bytes, to exercise a client's reassembly; 0 (the
// default) sends each reply as a single fragment. The responder's own
// replies (StartResponder) ignore it; explicit Conn replies on a
// responder's connections honour it.
func (s *Server) SetFragmentSize(n int) { s.fragmentSize.Store(int64(n)) }
