package xprt

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/gonfs/nfs/policy"
)

// fakeResolver answers every lookup with its current addresses, or err.
type fakeResolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
	err   error
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.Addr(nil), r.addrs...), r.err
}

func (r *fakeResolver) set(err error, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.addrs = err, nil
	for _, a := range addrs {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
}

// listenOn listens on ip:port on loopback (127.0.0.0/8), accepting until
// the test ends.
func listenOn(t *testing.T, ip string, port int) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln
}

// TestNameFollowedOnReconnect: a name is looked up again for every dial,
// so that after the connection is lost the transport dials the address
// the name has moved to (a floating IP); a failed lookup keeps the last
// answer.
func TestNameFollowedOnReconnect(t *testing.T) {
	ln := listenOn(t, "127.0.0.1", 0)
	port := ln.Addr().(*net.TCPAddr).Port
	listenOn(t, "127.0.0.2", port)
	r := &fakeResolver{}
	r.set(nil, "127.0.0.1")
	tr := newTransport(t, Config{Addr: net.JoinHostPort("nfs.test", strconv.Itoa(port)), Resolver: r, Policy: ports(0, 0, 0)})
	_, gen := waitReady(t, tr)
	if got, want := tr.Stats().Addr, netip.MustParseAddrPort("127.0.0.1:"+strconv.Itoa(port)); got != want {
		t.Fatalf("connected to %v, want %v", got, want)
	}
	r.set(nil, "127.0.0.2")
	tr.Fail(gen, errors.New("test: lost"))
	_, gen = waitReady(t, tr)
	if got, want := tr.Stats().Addr, netip.MustParseAddrPort("127.0.0.2:"+strconv.Itoa(port)); got != want {
		t.Fatalf("after the name moved: connected to %v, want %v", got, want)
	}
	r.set(errors.New("test: no answer"))
	tr.Fail(gen, errors.New("test: lost"))
	waitReady(t, tr)
	if got, want := tr.Stats().Addr, netip.MustParseAddrPort("127.0.0.2:"+strconv.Itoa(port)); got != want {
		t.Fatalf("after a failed lookup: connected to %v, want its last answer %v", got, want)
	}
}

// TestAddrsMoveOnFromARefusingAddress: with Config.Addrs, an attempt that
// an address refuses is followed by one to the next address.
func TestAddrsMoveOnFromARefusingAddress(t *testing.T) {
	ln := listenOn(t, "127.0.0.3", 0)
	port := ln.Addr().(*net.TCPAddr).Port
	// Nothing listens on 127.0.0.4 at that port: refused at once.
	tr := newTransport(t, Config{Addr: "127.0.0.4:" + strconv.Itoa(port), Addrs: []string{"127.0.0.3:" + strconv.Itoa(port)}, Policy: ports(0, 0, 0)})
	waitReady(t, tr)
	st := tr.Stats()
	if want := netip.MustParseAddrPort("127.0.0.3:" + strconv.Itoa(port)); st.Addr != want {
		t.Fatalf("connected to %v, want %v", st.Addr, want)
	}
	if n := st.FailedAttempts[policy.CauseRefused]; n != 1 {
		t.Errorf("%d attempts refused, want 1 (failed attempts by cause: %v)", n, st.FailedAttempts)
	}
}

// TestBadAddrsRefused: New checks every address's form.
func TestBadAddrsRefused(t *testing.T) {
	for _, cfg := range []Config{
		{Addr: "10.0.0.1"},
		{Addr: "10.0.0.1:nfs"},
		{Addr: ":2049"},
		{Addr: "10.0.0.1:2049", Addrs: []string{"10.0.0.2:0"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%q, %q) succeeded, want an error", cfg.Addr, cfg.Addrs)
		}
	}
}
