package knfsd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/internal/netlab"
)

// The guest's network: a tap device in a namespace of its own. Every
// server has its own namespace, so all use the same addresses.
const (
	tapName   = "gtap0"
	hostIP    = "10.99.0.1" // the tap's address in the namespace
	guestIP   = "10.99.0.2" // the guest's vec0 (UML's vector network driver, tap transport)
	guestNet  = "10.99.0.0/24"
	prefixLen = "/24"
	nfsPort   = "2049"
	netnsDir  = "/run/netns"
	// Reserved ports the forwarder falls back to: Linux's default
	// sunrpc.min_resvport and max_resvport.
	minResv, maxResv = 665, 1023
	cmdTimeout       = 15 * time.Second
)

// nsSeq numbers this process's namespaces.
var nsSeq atomic.Int64

// sweepOnce removes, once per process, the namespaces (and the UML
// processes in them) and the Shared state directories that test
// processes killed outright left behind.
var sweepOnce sync.Once

// newNamespace creates a namespace named like netlab's
// (netlab.Prefix+PID+"-"...), so that netlab.Sweep removes it once this
// process is gone, with the tap device the guest attaches to.
func newNamespace() (string, error) {
	sweepOnce.Do(func() {
		_, _ = netlab.Sweep()
		sweepStateDirs()
	})
	name := fmt.Sprintf("%s%d-k%d-knfsd", netlab.Prefix, os.Getpid(), nsSeq.Add(1))
	if err := command("ip", "netns", "add", name); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "tuntap", "add", "dev", tapName, "mode", "tap"},
		{"-n", name, "addr", "add", hostIP + prefixLen, "dev", tapName},
		{"-n", name, "link", "set", tapName, "up"},
	} {
		if err := command("ip", args...); err != nil {
			return name, err
		}
	}
	return name, nil
}

// nsPIDs returns the processes inside the namespace.
func nsPIDs(name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
	if err != nil {
		return nil, fmt.Errorf("knfsd: ip netns pids %s: %w", name, err)
	}
	return strings.Fields(string(out)), nil
}

// deleteNamespace deletes the namespace (its tap with it).
func deleteNamespace(name string) error {
	if err := command("ip", "netns", "del", name); err != nil {
		if _, statErr := os.Stat(filepath.Join(netnsDir, name)); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// command runs a short administrative command.
func command(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("knfsd: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// dialIn connects to addr from inside the namespace ns, from local port
// port (0: any). A socket belongs to the namespace it was created in, so
// the connection stays inside ns however it is used afterwards.
func dialIn(ctx context.Context, ns string, port int, addr string) (net.Conn, error) {
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return nil, fmt.Errorf("knfsd: network namespace: %w", err)
	}
	defer target.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// setns changes only this thread; it stays locked, and ends
		// with the goroutine, unless it gets back to its own namespace.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{err: fmt.Errorf("knfsd: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{err: fmt.Errorf("knfsd: enter network namespace %s: %w", ns, err)}
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		if port > 0 {
			d.LocalAddr = &net.TCPAddr{Port: port}
		}
		// A literal address: the socket is created on this thread.
		c, err := d.DialContext(ctx, "tcp", addr)
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialReserved connects to addr from inside ns from a reserved port:
// port if it is free there, another one of 665–1023 otherwise.
func dialReserved(ctx context.Context, ns string, port int, addr string) (net.Conn, error) {
	var lastErr error
	for i := range 32 {
		p := port
		if i > 0 {
			p = minResv + rand.IntN(maxResv-minResv+1)
		}
		c, err := dialIn(ctx, ns, p, addr)
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

// A forwarder relays connections from a loopback port of the host to the
// guest's NFS port, dialing from inside the guest's namespace. A client
// connecting from a reserved port (below 1024) is relayed from a
// reserved port, the same one when it is free in the namespace, so that
// the export's `secure` option sees what the client chose.
type forwarder struct {
	ln     net.Listener
	ns     string
	target string

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // both ends of every relayed connection; guarded by mu
	closed bool                  // guarded by mu
}

// newForwarder starts a forwarder listening on listen ("ip:port") that
// relays to target in namespace ns.
func newForwarder(listen, ns, target string) (*forwarder, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("knfsd: forwarder: %w", err)
	}
	f := &forwarder{ln: ln, ns: ns, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

// track registers c, unless the forwarder is closed.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
	}
}

// relay connects client to the guest and copies both ways until either
// side ends; then it closes both (NFS never half-closes).
func (f *forwarder) relay(client net.Conn) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	port := client.RemoteAddr().(*net.TCPAddr).Port
	var (
		server net.Conn
		err    error
	)
	if port < 1024 {
		server, err = dialReserved(ctx, f.ns, port, f.target)
	} else {
		server, err = dialIn(ctx, f.ns, 0, f.target)
	}
	cancel()
	if err != nil || !f.track(server) {
		if server != nil {
			server.Close()
		}
		// RST rather than FIN: the client sees a refused path at once.
		if tc, ok := client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		client.Close()
		f.untrack(client)
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(server, client)
	go cp(client, server)
	<-done
	client.Close()
	server.Close()
	<-done
	f.untrack(client, server)
}

// close stops accepting, closes every relayed connection and waits for
// the relays to end.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// resetAll closes every relayed connection (each side sees its peer go).
func (f *forwarder) resetAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// nullCall sends an ONC RPC NULL call for NFSv4 over c and checks that
// the reply accepts it: an nfsd thread, not just a listener, answered.
func nullCall(c net.Conn, xid uint32) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	// Record mark (last fragment, 40 bytes), xid, CALL, RPC version 2,
	// NFS, version 4, procedure 0, AUTH_NONE credential and verifier.
	call := []uint32{1<<31 | 40, xid, 0, 2, 100003, 4, 0, 0, 0, 0, 0}
	buf := make([]byte, 0, 4*len(call))
	for _, w := range call {
		buf = binary.BigEndian.AppendUint32(buf, w)
	}
	if _, err := c.Write(buf); err != nil {
		return fmt.Errorf("knfsd: NULL call: %w", err)
	}
	// Record mark (last fragment, 24 bytes), xid, REPLY, MSG_ACCEPTED,
	// AUTH_NONE verifier, SUCCESS.
	want := []uint32{1<<31 | 24, xid, 1, 0, 0, 0, 0}
	reply := make([]byte, 4*len(want))
	if _, err := io.ReadFull(c, reply); err != nil {
		return fmt.Errorf("knfsd: NULL reply: %w", err)
	}
	for i, w := range want {
		if got := binary.BigEndian.Uint32(reply[4*i:]); got != w {
			return fmt.Errorf("knfsd: NULL reply: word %d is %#x, want %#x", i, got, w)
		}
	}
	return nil
}

// NetBytes returns the bytes the guest's tap device has carried since
// the guest booted: toGuest is what it sent into the guest, fromGuest what
// it received from it, Ethernet frames with their TCP/IP headers. Every
// connection through Addr crosses it (and nothing else does but what the
// guest itself sends), so the difference of two calls around a copy is
// what that copy put on the wire. Reading it costs a file read, no call
// into the guest.
func (s *Server) NetBytes() (toGuest, fromGuest int64, err error) {
	// /proc/PID/net/dev lists the interfaces of PID's network namespace;
	// the guest's process is inside the server's.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", s.PID()))
	if err != nil {
		return 0, 0, fmt.Errorf("knfsd: %w", err)
	}
	return parseNetDev(string(data), tapName)
}

// parseNetDev returns the bytes dev transmitted and received, from the
// text of /proc/net/dev ("dev: rx_bytes rx_packets ... tx_bytes ...",
// eight receive counters, then eight transmit counters).
func parseNetDev(text, dev string) (tx, rx int64, err error) {
	for _, line := range strings.Split(text, "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(counters)
		if len(f) < 16 {
			break
		}
		rx, err1 := strconv.ParseInt(f[0], 10, 64)
		tx, err2 := strconv.ParseInt(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return tx, rx, nil
	}
	return 0, 0, fmt.Errorf("knfsd: no counters for %s in /proc/net/dev", dev)
}
