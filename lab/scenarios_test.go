package lab

import (
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/internal/testutil"
)

// silence drops everything a namespace sends or receives: a host that
// died without a word (no RST, no ICMP).
const silence = `table inet lab_silence {
	chain in { type filter hook input priority -300; policy drop; }
	chain out { type filter hook output priority -300; policy drop; }
}`

// lbRules is the load balancer: a DNAT of the service address to one
// backend in a nat prerouting chain; conntrack keeps each flow on the
// backend it was first sent to.
func lbRules(backend string) string {
	return `table ip lab_lb {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.77.9.9 tcp dport 2049 dnat to ` + backend + `
	}
}`
}

// retarget points the load balancer at another backend, leaving the
// connection-tracking table alone: flows already tracked keep going to
// the old backend.
func retarget(backend string) string {
	return `flush chain ip lab_lb pre
add rule ip lab_lb pre ip daddr 10.77.9.9 tcp dport 2049 dnat to ` + backend + "\n"
}

// TestLBFailover is seeds 000 and 001: client → stateful load balancer →
// server A. A dies silently and the balancer is retargeted at server B,
// which exports the same directory. The conntrack entry of the client's
// connection still maps its 4-tuple to A.
func TestLBFailover(t *testing.T) {
	testutil.CheckLeaks(t)
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		l := netlab.New(t)
		cli, lb, a, b := l.NS("client"), l.NS("lb"), l.NS("srva"), l.NS("srvb")
		cdev, _ := l.Link(cli, "10.77.1.2/24", lb, "10.77.1.1/24")
		l.Link(lb, "10.77.2.1/24", a, "10.77.2.2/24")
		l.Link(lb, "10.77.3.1/24", b, "10.77.3.2/24")
		cli.IP("route", "add", "10.77.9.0/24", "via", "10.77.1.1")
		a.IP("route", "add", "default", "via", "10.77.2.1")
		b.IP("route", "add", "default", "via", "10.77.3.1")
		lb.Sysctl("net.ipv4.ip_forward", "1")
		lb.Nft(lbRules("10.77.2.2"))
		cli.Shape(cdev, shapeRate)
		export := t.TempDir()
		startServer(t, a, "10.77.2.2", export, ganesha.Config{})
		startServer(t, b, "10.77.3.2", export, ganesha.Config{})

		runCell(t, cellSpec{
			Scenario: "lb-failover", Policy: pol, Client: cli, Addr: "10.77.9.9:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				a.Nft(silence)
				at := time.Now()
				lb.Nft(retarget("10.77.3.2"))
				return at
			}},
			StuckOK: pol == "SameReservedPort",
			Dump:    []*netlab.NS{cli, lb},
		})
	})
}

// pair builds a client and a server namespace joined directly, the
// client's side shaped, and starts a Ganesha in the server namespace.
func pair(t *testing.T, cfg ganesha.Config) (cli, srv *netlab.NS, s *ganesha.Server, export string) {
	t.Helper()
	l := netlab.New(t)
	cli, srv = l.NS("client"), l.NS("server")
	cdev, _ := l.Link(cli, "10.77.1.2/24", srv, "10.77.1.1/24")
	cli.Shape(cdev, shapeRate)
	export = t.TempDir()
	s = startServer(t, srv, "10.77.1.1", export, cfg)
	return cli, srv, s, export
}

// TestServerRestart kills the server with SIGKILL in the middle of the
// copy and starts it again: same address, port and storage, a new boot
// epoch. The client must reclaim its state within the grace period.
func TestServerRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, srv, s, export := pair(t, ganesha.Config{Lease: 5 * time.Second, Grace: 5 * time.Second})
		runCell(t, cellSpec{
			Scenario: "server-restart", Policy: pol, Client: cli, Addr: "10.77.1.1:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				s.Kill()
				at := time.Now()
				s.Restart(t)
				return at
			}},
			Dump: []*netlab.NS{cli, srv},
		})
	})
}

// TestReset resets the client's connection from the server's side (ss -K
// destroys the socket, which sends a RST) in the middle of the copy. The
// server and its session live on: the client must reconnect, replay what
// was cut off exactly once, and (SameReservedPort, Hedged) keep its port.
func TestReset(t *testing.T) {
	testutil.CheckLeaks(t)
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, srv, _, export := pair(t, ganesha.Config{})
		cell := runCell(t, cellSpec{
			Scenario: "reset", Policy: pol, Client: cli, Addr: "10.77.1.1:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				srv.Run("ss", "-K", "-t", "dst", "10.77.1.2")
				return time.Now()
			}},
			ExactlyOnce: true,
			Dump:        []*netlab.NS{cli, srv},
		})
		checkPorts(t, pol, cell)
	})
}

// checkPorts checks the port behaviour on a healthy path, after a reset:
// SameReservedPort and Hedged reconnect from the old port, NewReservedPort
// from a new reserved one, Ephemeral from a new ephemeral one.
func checkPorts(t *testing.T, pol string, cell Cell) {
	t.Helper()
	if cell.Outcome != Recovered {
		return // already reported
	}
	p := cell.Ports
	if len(p) < 2 {
		t.Errorf("%s: local ports %v: no reconnect after the reset", pol, p)
		return
	}
	first, last := p[0], p[len(p)-1]
	switch pol {
	case "SameReservedPort", "Hedged":
		if last != first {
			t.Errorf("%s: reconnected from port %d, not the old port %d (ports %v)", pol, last, first, p)
		}
	case "NewReservedPort":
		if last == first || last >= 1024 {
			t.Errorf("%s: reconnected from port %d after %d: want a new reserved port (ports %v)", pol, last, first, p)
		}
	case "Ephemeral":
		if last == first || last < 1024 {
			t.Errorf("%s: reconnected from port %d after %d: want a new ephemeral port (ports %v)", pol, last, first, p)
		}
	}
}

// TestLeaseBlackhole makes the server unreachable in silence for longer
// than its lease (3 s lease, 8 s blackhole) in the middle of the copy,
// then brings the path back. The server still holds the old connection;
// the client's lease has expired.
func TestLeaseBlackhole(t *testing.T) {
	testutil.CheckLeaks(t)
	const hole = 8 * time.Second
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, srv, _, export := pair(t, ganesha.Config{Lease: 3 * time.Second})
		runCell(t, cellSpec{
			Scenario: "lease-blackhole", Policy: pol, Client: cli, Addr: "10.77.1.1:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				srv.Nft(silence)
				at := time.Now()
				time.Sleep(hole) // the outage itself, not a wait for a result
				srv.Nft("delete table inet lab_silence\n")
				return at
			}},
			Bound: hole + labBound,
			Dump:  []*netlab.NS{cli, srv},
		})
	})
}
