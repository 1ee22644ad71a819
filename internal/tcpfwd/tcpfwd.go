// Package tcpfwd is a TCP forwarder on loopback for tests: it listens on
// 127.0.0.1 and relays each connection to a target that the test can move
// (a failover to another server behind the same address), pause (a silent
// blackhole: bytes are neither delivered nor refused), reset (every
// relayed connection closed at once with RST), and tamper with (one bit of
// what servers send flipped, as by an attacker on the path).
//
//	f := tcpfwd.Start(t, srvA.Addr())
//	c := dial(f.Addr())
//	f.SetTarget(srvB.Addr()); f.ResetAll() // the address moved to B
//
// It stands in for the network lab where a test only needs the address to
// move or the path to go quiet, without namespaces.
package tcpfwd

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Forwarder relays connections from Addr to the current target. Its
// methods are safe for concurrent use.
type Forwarder struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string
	paused bool
	resume chan struct{} // closed by Resume
	conns  map[*pair]struct{}
	closed bool
	accept int   // connections accepted
	resv   bool  // relay reserved source ports from reserved ports
	flip   int64 // bytes from servers to pass before flipping a bit of the next; <0: none
}

// pair is one relayed connection.
type pair struct {
	client, server *net.TCPConn
}

// Start listens on a free port of 127.0.0.1, relaying to target. The
// test's cleanup stops the forwarder and closes every connection.
func Start(tb testing.TB, target string) *Forwarder {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("tcpfwd: %v", err)
	}
	f := &Forwarder{ln: ln, target: target, conns: make(map[*pair]struct{}), resume: make(chan struct{}), flip: -1}
	f.wg.Add(1)
	go f.serve()
	tb.Cleanup(f.Close)
	return f
}

// Addr is the address clients dial.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// Accepted returns how many connections the forwarder accepted.
func (f *Forwarder) Accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accept
}

// SetTarget makes new connections go to target. Connections relayed
// already stay with their server (as conntrack keeps a flow on its old
// backend); ResetAll ends them.
func (f *Forwarder) SetTarget(target string) {
	f.mu.Lock()
	f.target = target
	f.mu.Unlock()
}

// KeepReservedPorts makes the forwarder relay each connection it accepts
// from a reserved port (below 1024) from a reserved port of its own, a
// random one of 665–1023, so that a server whose export is `secure`
// (Linux knfsd's default) still takes it. Other connections, and all of
// them by default, are relayed from an ephemeral port.
func (f *Forwarder) KeepReservedPorts() {
	f.mu.Lock()
	f.resv = true
	f.mu.Unlock()
}

// Pause stops relaying: bytes already in flight stay in the sockets'
// buffers, new connections are accepted but not relayed, nothing is
// refused or reset. The path looks dead until Resume.
func (f *Forwarder) Pause() {
	f.mu.Lock()
	if !f.paused {
		f.paused = true
		f.resume = make(chan struct{})
	}
	f.mu.Unlock()
}

// Resume relays again what Pause held up.
func (f *Forwarder) Resume() {
	f.mu.Lock()
	if f.paused {
		f.paused = false
		close(f.resume)
	}
	f.mu.Unlock()
}

// ResetAll closes every relayed connection abortively (RST on both
// sides).
func (f *Forwarder) ResetAll() {
	f.mu.Lock()
	ps := make([]*pair, 0, len(f.conns))
	for p := range f.conns {
		ps = append(ps, p)
	}
	f.mu.Unlock()
	for _, p := range ps {
		p.abort()
	}
}

// Close stops listening, closes every connection and waits for the relay
// goroutines to end.
func (f *Forwarder) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	if f.paused {
		f.paused = false
		close(f.resume)
	}
	f.mu.Unlock()
	f.ln.Close()
	f.ResetAll()
	f.wg.Wait()
}

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.accept++
		f.mu.Unlock()
		f.wg.Add(1)
		go f.relay(c.(*net.TCPConn))
	}
}

// gate blocks while the forwarder is paused; it reports false once the
// forwarder is closed.
func (f *Forwarder) gate() bool {
	f.mu.Lock()
	paused, resume, closed := f.paused, f.resume, f.closed
	f.mu.Unlock()
	if closed {
		return false
	}
	if paused {
		<-resume
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.closed
}

func (f *Forwarder) relay(client *net.TCPConn) {
	defer f.wg.Done()
	if !f.gate() {
		client.Close()
		return
	}
	f.mu.Lock()
	target, resv := f.target, f.resv
	f.mu.Unlock()
	var sc net.Conn
	var err error
	if ra, ok := client.RemoteAddr().(*net.TCPAddr); ok && resv && ra.Port < 1024 {
		sc, err = dialReserved(target)
	} else {
		sc, err = net.DialTimeout("tcp", target, 5*time.Second)
	}
	if err != nil {
		// A dead server: the client sees its connection reset, as it
		// would see a refused SYN without a forwarder in between.
		client.SetLinger(0)
		client.Close()
		return
	}
	p := &pair{client: client, server: sc.(*net.TCPConn)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		p.abort()
		return
	}
	f.conns[p] = struct{}{}
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); f.copy(p.server, p.client, false); p.abort() }()
	go func() { defer wg.Done(); f.copy(p.client, p.server, true); p.abort() }()
	wg.Wait()
	f.mu.Lock()
	delete(f.conns, p)
	f.mu.Unlock()
}

// FlipAfter flips the lowest bit of one byte of what servers send: the
// byte after the next n bytes they send, over whichever connections,
// counted from now. It does so once.
func (f *Forwarder) FlipAfter(n int64) {
	f.mu.Lock()
	f.flip = n
	f.mu.Unlock()
}

// tamper flips the bit FlipAfter asked for if it falls in b, the next
// bytes from a server.
func (f *Forwarder) tamper(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flip < 0 {
		return
	}
	if f.flip < int64(len(b)) {
		b[f.flip] ^= 1
		f.flip = -1
		return
	}
	f.flip -= int64(len(b))
}

// copy relays src to dst in chunks, holding each chunk while paused;
// toClient says src is a server.
func (f *Forwarder) copy(dst, src *net.TCPConn, toClient bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !f.gate() {
				return
			}
			if toClient {
				f.tamper(buf[:n])
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or reset: the pair is aborted
		}
	}
}

// abort closes both sides with RST.
func (p *pair) abort() {
	p.client.SetLinger(0)
	p.server.SetLinger(0)
	p.client.Close()
	p.server.Close()
}

// Reserved ports the forwarder relays from, as the Linux kernel client's
// default range.
const minResv, maxResv = 665, 1023

// dialReserved connects to target from a random free reserved port of
// 127.0.0.1, trying a few when they are taken.
func dialReserved(target string) (net.Conn, error) {
	var lastErr error
	for range 32 {
		d := net.Dialer{
			Timeout:   5 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: minResv + rand.IntN(maxResv-minResv+1)},
		}
		c, err := d.Dial("tcp", target)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, err
		}
	}
	return nil, lastErr
}
