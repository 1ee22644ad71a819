package xprt

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// wantOpts are socket options as getsockopt reports them.
type wantOpts struct {
	noDelay, keepAlive, idle, intvl, cnt, userTimeoutMS, notSentLowat int
}

// readOpts reads back the options that SocketOptions sets.
func readOpts(t *testing.T, c net.Conn) wantOpts {
	t.Helper()
	return wantOpts{
		noDelay:       sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY),
		keepAlive:     sockopt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE),
		idle:          sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE),
		intvl:         sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL),
		cnt:           sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT),
		userTimeoutMS: sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT),
		notSentLowat:  sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT),
	}
}

func TestSocketOptionsOnConnection(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	for _, tc := range []struct {
		name string
		opts SocketOptions
		want wantOpts
	}{
		{"defaults", SocketOptions{}, wantOpts{1, 1, 15, 5, 3, 15000, 256 << 10}},
		{"custom", SocketOptions{
			Nagle:             true,
			KeepAliveIdle:     2500 * time.Millisecond, // rounded up to 3s
			KeepAliveInterval: time.Second,
			KeepAliveCount:    7,
			UserTimeout:       4 * time.Second,
			NotSentLowat:      64 << 10,
		}, wantOpts{0, 1, 3, 1, 7, 4000, 64 << 10}},
		// Kernel keepalive values are per socket and start at the sysctl
		// defaults; with SO_KEEPALIVE off only that flag matters. So does
		// the unsent-data bound (net.ipv4.tcp_notsent_lowat).
		{"keepalive off, kernel user timeout, no unsent bound", SocketOptions{KeepAliveIdle: -1, UserTimeout: -1, NotSentLowat: -1},
			wantOpts{1, 0, -1, -1, -1, 0, -1}},
		{"kernel client defaults", KernelSocketOptions(0, 0), wantOpts{1, 1, 60, 60, 3, 180000, 256 << 10}},
		{"kernel client timeo=10s retrans=5", KernelSocketOptions(10*time.Second, 5), wantOpts{1, 1, 10, 10, 6, 60000, 256 << 10}},
		{"clamped to kernel limits", SocketOptions{KeepAliveIdle: 100 * time.Hour, KeepAliveCount: 1000},
			wantOpts{1, 1, maxKeepAliveSeconds, 5, maxKeepAliveCount, 15000, 256 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, Config{Addr: srv.addr, Socket: tc.opts, Policy: ports(0)})
			c, _ := waitReady(t, tr)
			srv.accept(t)
			got := readOpts(t, c)
			if tc.want.idle < 0 { // not set: ignore what the sysctls say
				got.idle, got.intvl, got.cnt = -1, -1, -1
			}
			if tc.want.notSentLowat < 0 {
				got.notSentLowat = -1
			}
			if got != tc.want {
				t.Errorf("getsockopt: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestKernelSocketOptions(t *testing.T) {
	testutil.CheckLeaks(t)
	got := KernelSocketOptions(0, 0)
	want := SocketOptions{
		KeepAliveIdle:     60 * time.Second,
		KeepAliveInterval: 60 * time.Second,
		KeepAliveCount:    3,
		UserTimeout:       180 * time.Second,
	}
	if got != want {
		t.Errorf("KernelSocketOptions(0, 0) = %+v, want %+v", got, want)
	}
	if got := KernelSocketOptions(30*time.Second, 1).UserTimeout; got != 60*time.Second {
		t.Errorf("KernelSocketOptions(30s, 1).UserTimeout = %v, want 60s", got)
	}
}

func TestReuseAddrOnlyForChosenPort(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newServer(t)
	port := freePorts(t, 1)[0]
	tr := newTransport(t, Config{Addr: srv.addr, Policy: ports(port)})
	c, _ := waitReady(t, tr)
	if got := sockopt(t, c, unix.SOL_SOCKET, unix.SO_REUSEADDR); got != 1 {
		t.Errorf("SO_REUSEADDR on a chosen port = %d, want 1", got)
	}
	tr2 := newTransport(t, Config{Addr: srv.addr, Policy: ports(0)})
	c2, _ := waitReady(t, tr2)
	if got := sockopt(t, c2, unix.SOL_SOCKET, unix.SO_REUSEADDR); got != 0 {
		t.Errorf("SO_REUSEADDR on an ephemeral port = %d, want 0", got)
	}
}

// With short timeouts, a path that goes silent is declared dead by the
// kernel, idle (keepalive) or with data in flight (TCP_USER_TIMEOUT), and
// the read error classifies as CauseDeadPeer.
func TestDeadPathDetected(t *testing.T) {
	testutil.CheckLeaks(t)
	if !inNetns(t) {
		return
	}
	srv := newServer(t)
	opts := SocketOptions{KeepAliveIdle: time.Second, KeepAliveInterval: time.Second, UserTimeout: time.Second}
	for _, busy := range []bool{false, true} {
		tr := newTransport(t, Config{Addr: srv.addr, Socket: opts, Policy: ports(0)})
		c, _ := waitReady(t, tr)
		srv.accept(t)
		dropTo(t, "dport "+strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)) // the server falls silent
		if busy {
			if _, err := c.Write([]byte("never acknowledged")); err != nil {
				t.Fatal(err)
			}
		}
		c.SetReadDeadline(time.Now().Add(testTimeout))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ETIMEDOUT) || Classify(err) != policy.CauseDeadPeer {
			t.Errorf("busy=%v: read %v (%v), want ETIMEDOUT, a dead peer", busy, err, Classify(err))
		}
	}
}
