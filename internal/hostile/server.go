package hostile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a hostile NFSv4.1 server on 127.0.0.1. It is safe for
// concurrent use: a test may change its Faults while a client talks to it.
type Server struct {
	ln net.Listener
	wg sync.WaitGroup // the accept goroutine and one reader per connection

	compounds atomic.Int64 // COMPOUND calls received
	accepted  atomic.Int64 // connections accepted

	mu      sync.Mutex // guards the fields below
	conns   map[net.Conn]struct{}
	closed  bool
	faults  Faults
	replies int                // replies built so far: the n of Faults.Reply
	ops     map[uint32]int     // operations received, by number
	clients uint64             // client IDs handed out
	opens   uint32             // open stateids handed out
	tree    map[string]*object // by file handle
}

// Start starts a server whose faults are f and registers its Close as a
// cleanup of t.
func Start(t testing.TB, f Faults) *Server {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostile: listen: %v", err)
	}
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{}), ops: make(map[uint32]int)}
	s.SetFaults(f)
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr returns the address the server listens on, "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetFaults replaces the server's faults; calls that arrive from now on
// see them. The reply count that Faults.Reply receives goes on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.tree = buildTree(&s.faults)
}

// Compounds returns the number of COMPOUND calls received so far.
func (s *Server) Compounds() int64 { return s.compounds.Load() }

// Conns returns the number of connections accepted so far.
func (s *Server) Conns() int64 { return s.accepted.Load() }

// Ops returns how many times operation op (an RFC 8881 operation number)
// was received.
func (s *Server) Ops(op uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// Replies returns the number of replies built so far.
func (s *Server) Replies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replies
}

// Close stops accepting, closes every connection and waits for the
// server's goroutines. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if !already {
		s.ln.Close()
	}
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.accepted.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// Record marking (RFC 5531 §11).
const (
	lastFragment = 1 << 31
	maxRecord    = 4 << 20 // larger calls end the connection
)

var errRecord = errors.New("hostile: call record too large")

// readRecord reads one record from r.
func readRecord(r *bufio.Reader) ([]byte, error) {
	var rec []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		m := binary.BigEndian.Uint32(hdr[:])
		n := int(m &^ lastFragment)
		if n > maxRecord-len(rec) {
			return nil, errRecord
		}
		off := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[off:]); err != nil {
			return nil, err
		}
		if m&lastFragment != 0 {
			return rec, nil
		}
	}
}

// serve is a connection's reader: one call at a time, in order.
func (s *Server) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReader(c)
	for {
		rec, err := readRecord(br)
		if err != nil {
			return
		}
		msg, ok := s.handle(rec)
		if !ok {
			return
		}
		s.mu.Lock()
		n := s.replies
		s.replies++
		hook := s.faults.Reply
		s.mu.Unlock()
		out := Reply{Msg: msg}
		if hook != nil {
			out = hook(n, msg)
		}
		if !send(c, out) {
			return
		}
	}
}

// send writes out as Reply says; it reports whether the connection stays
// open.
func send(c net.Conn, out Reply) bool {
	if out.Msg != nil {
		rec := binary.BigEndian.AppendUint32(nil, lastFragment|uint32(len(out.Msg)))
		rec = append(rec, out.Msg...)
		if out.Cut > 0 {
			_, _ = c.Write(rec[:min(out.Cut, len(rec))])
			return false
		}
		if out.Twice {
			rec = append(rec, rec...)
		}
		if _, err := c.Write(rec); err != nil {
			return false
		}
	}
	return !out.Close
}

// RPC (RFC 5531) values the server uses.
const (
	msgCall     = 0
	msgReply    = 1
	nfsProgram  = 100003
	nfsVersion  = 4
	procNull    = 0
	procCompnd  = 1
	acceptOK    = 0
	progUnavail = 1
	procUnavail = 3
	garbageArgs = 4
)

// handle decodes one call and builds its reply message. It reports false
// for a record that is not a call, which ends the connection.
func (s *Server) handle(rec []byte) ([]byte, bool) {
	r := rbuf{b: rec}
	xid := r.u32()
	mtype := r.u32()
	rpcvers := r.u32()
	prog := r.u32()
	vers := r.u32()
	proc := r.u32()
	r.u32()       // credential flavor
	r.opaque(400) // credential body
	r.u32()       // verifier flavor
	r.opaque(400) // verifier body
	if r.err != nil || mtype != msgCall || rpcvers != 2 {
		return nil, false
	}
	w := wbuf{}
	w.u32(xid)
	w.u32(msgReply)
	w.u32(0) // MSG_ACCEPTED
	w.u32(0) // AUTH_NONE verifier
	w.u32(0)
	switch {
	case prog != nfsProgram || vers != nfsVersion:
		w.u32(progUnavail)
	case proc == procNull:
		w.u32(acceptOK)
	case proc == procCompnd:
		s.compounds.Add(1)
		res, ok := s.compound(r.b)
		if !ok {
			w.u32(garbageArgs)
			break
		}
		w.u32(acceptOK)
		w.b = append(w.b, res...)
	default:
		w.u32(procUnavail)
	}
	return w.b, true
}
