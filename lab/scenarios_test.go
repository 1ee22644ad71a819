package lab

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
)

// silence drops everything a namespace sends, receives or forwards: a
// host that died without a word (no RST, no ICMP).
const silence = `table inet lab_silence {
	chain in { type filter hook input priority -300; policy drop; }
	chain out { type filter hook output priority -300; policy drop; }
	chain forwarding { type filter hook forward priority -300; policy drop; }
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

// TestLBFailover is the cloud load balancer whose backend fails over
// (AWS EFS, Azure Load Balancer): client → stateful load balancer →
// server A. A dies silently and the balancer is retargeted at server B,
// which exports the same directory. The conntrack entry of the client's
// connection still maps its 4-tuple to A.
func TestLBFailover(t *testing.T) { lbFailover(t, lbCase{scenario: "lb-failover"}) }

// TestLBFailoverDefaults is TestLBFailover with the library's default
// socket options, timeouts and backoff: what a program that tunes nothing
// sees.
func TestLBFailoverDefaults(t *testing.T) {
	lbFailover(t, lbCase{scenario: "lb-failover-defaults", defaults: true})
}

// TestLBFailoverIdle is TestLBFailoverDefaults with a client that is idle
// when the backend dies (no call for two seconds, so the connection is
// quiet) and then makes a call: the path is found dead by that call
// alone, with nothing of the copy's in flight.
func TestLBFailoverIdle(t *testing.T) {
	lbFailover(t, lbCase{scenario: "lb-failover-idle-defaults", defaults: true, idle: true})
}

// TestLBFailoverV40 is TestLBFailover over NFSv4.0, with both servers
// serving only 4.0 and a 24 MiB copy: Hedged, which keeps its port where
// the path allows (see TestResetV40), must still leave it here. The other
// port changers' outcomes are shown, not asserted. SameReservedPort is
// left out: behind the stale entry it is stuck at the TCP level whatever
// the NFS version (TestLBFailover shows it), and its cell would hold the
// scenario for the whole bound.
func TestLBFailoverV40(t *testing.T) { lbFailover(t, lbCase{scenario: "lb-failover-v4.0", v40: true}) }

// lbCase is one variant of the load-balancer failover.
type lbCase struct {
	scenario string
	defaults bool // the library's defaults instead of the lab's settings
	v40      bool // NFSv4.0
	idle     bool // the client is idle at the fault (cellSpec.Idle)
}

// lbFailover runs the load-balancer failover as lc says. With the
// defaults the bound is a minute: keepalive alone, without the path watch,
// would take 20s.
func lbFailover(t *testing.T, lc lbCase) {
	scenario, defaults, v40 := lc.scenario, lc.defaults, lc.v40
	bound := labBound
	if defaults {
		bound = time.Minute
	}
	pols := policies
	if v40 {
		pols = []string{"NewReservedPort", "Ephemeral", "Hedged"}
	}
	forPolicies(t, pols, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, lb, a, b := twoBackends(t, "lb")
		lb.Nft(lbRules("10.77.2.2"))
		export := t.TempDir()
		var gcfg ganesha.Config
		var size int64 // copySize
		if v40 {
			gcfg.MinorVersions, size = []int{0}, 24<<20
		}
		srvA := startServer(t, a, "10.77.2.2", export, gcfg)
		// A is dead from the fault on: kill it at the end rather than
		// wait out its shutdown grace (SIGTERM, 10 s, SIGKILL).
		t.Cleanup(srvA.Kill)
		startServer(t, b, "10.77.3.2", export, gcfg)

		runCell(t, cellSpec{
			Scenario: scenario, Policy: pol, Client: cli, Addr: "10.77.9.9:2049", Defaults: defaults,
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				a.Nft(silence)
				at := time.Now()
				lb.Nft(retarget("10.77.3.2"))
				return at
			}},
			StuckOK:    pol == "SameReservedPort",
			Bound:      bound,
			Dump:       []*netlab.NS{cli, lb},
			V40:        v40,
			Size:       size,
			ReportOnly: v40 && pol != "Hedged",
			Idle:       lc.idle,
		})
	})
}

// TestDNSMove is a name whose address moves (a cloud file system's mount
// target re-created elsewhere, a DNS failover): the client dials
// nfs.lab.test, which the lab's name server resolves to server A through a
// router. A dies silently and the name is pointed at server B, which
// exports the same directory. With the library's defaults (its resolver
// included: the client namespace's resolv.conf names the lab's server),
// the name is looked up again before every dial, so the redial after the
// dead path goes to B whatever the port: SameReservedPort recovers too.
func TestDNSMove(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, r, a, b := twoBackends(t, "router")
		dns := startDNS(t, r, "10.77.1.1:53", "nfs.lab.test", "10.77.2.2")
		if err := cli.SetNameserver("10.77.1.1"); err != nil {
			t.Fatal(err)
		}
		export := t.TempDir()
		srvA := startServer(t, a, "10.77.2.2", export, ganesha.Config{})
		t.Cleanup(srvA.Kill) // dead from the fault on; see lbFailover
		startServer(t, b, "10.77.3.2", export, ganesha.Config{})

		runCell(t, cellSpec{
			Scenario: "dns-move-defaults", Policy: pol, Client: cli, Addr: "nfs.lab.test:2049", Defaults: true,
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				a.Nft(silence)
				at := time.Now()
				dns.set("10.77.3.2")
				return at
			}},
			Bound: time.Minute,
			Dump:  []*netlab.NS{cli, r},
		})
	})
}

// twoBackends builds a client (10.77.1.2, its link shaped), a router
// called role that forwards between the client and two servers, A at
// 10.77.2.2 and B at 10.77.3.2, and routes through it for every address.
func twoBackends(t *testing.T, role string) (cli, r, a, b *netlab.NS) {
	l := netlab.New(t)
	cli, r, a, b = l.NS("client"), l.NS(role), l.NS("srva"), l.NS("srvb")
	cdev, _ := l.Link(cli, "10.77.1.2/24", r, "10.77.1.1/24")
	l.Link(r, "10.77.2.1/24", a, "10.77.2.2/24")
	l.Link(r, "10.77.3.1/24", b, "10.77.3.2/24")
	cli.IP("route", "add", "default", "via", "10.77.1.1")
	a.IP("route", "add", "default", "via", "10.77.2.1")
	b.IP("route", "add", "default", "via", "10.77.3.1")
	r.Sysctl("net.ipv4.ip_forward", "1")
	cli.Shape(cdev, shapeRate)
	return cli, r, a, b
}

// pair builds a client and a server namespace joined directly, the
// client's side shaped, and starts a Ganesha in the server namespace.
func pair(t *testing.T, cfg ganesha.Config) (cli, srv *netlab.NS, s *ganesha.Server, export string) {
	t.Helper()
	return pairOn(t, cfg, t.TempDir())
}

// pairOn is pair with the given directory as the export.
func pairOn(t *testing.T, cfg ganesha.Config, export string) (cli, srv *netlab.NS, s *ganesha.Server, _ string) {
	t.Helper()
	l := netlab.New(t)
	cli, srv = l.NS("client"), l.NS("server")
	cdev, _ := l.Link(cli, "10.77.1.2/24", srv, "10.77.1.1/24")
	cli.Shape(cdev, shapeRate)
	s = startServer(t, srv, "10.77.1.1", export, cfg)
	return cli, srv, s, export
}

// TestServerRestart kills the server with SIGKILL in the middle of the
// copy and starts it again: same address, port and storage, a new boot
// epoch. The client must reclaim its state within the grace period.
func TestServerRestart(t *testing.T) {
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

// TestServerOutage stops the server (SIGKILL) in the middle of the copy
// and starts it again after an outage of 15 s (LAB_OUTAGES lists others,
// such as "15s,60s,5m"; make lab runs those three), with a grace period
// of 10 s: while it is away every dial is refused. Run with the library's
// defaults and the default policy, the cell's "fault → reconnect" counts
// from the server's return, not from the kill: the client must find it
// within 1.5 s, and reclaim its open file inside the grace period.
func TestServerOutage(t *testing.T) {
	outages := []time.Duration{15 * time.Second}
	if v := os.Getenv("LAB_OUTAGES"); v != "" {
		outages = nil
		for _, f := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || d <= 0 {
				t.Fatalf("LAB_OUTAGES: %q is not a duration", f)
			}
			outages = append(outages, d)
		}
	}
	for _, outage := range outages {
		scenario := "server-outage-" + shortDuration(outage)
		t.Run(shortDuration(outage), func(t *testing.T) {
			t.Parallel()
			forPolicies(t, []string{"Hedged"}, func(t *testing.T, pol string, minPort, maxPort int) {
				cli, srv, s, export := pair(t, ganesha.Config{Lease: 10 * time.Second, Grace: 10 * time.Second})
				cell := runCell(t, cellSpec{
					Scenario: scenario, Policy: pol, Client: cli, Addr: "10.77.1.1:2049", Defaults: true,
					ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
					Faults: []func() time.Time{func() time.Time {
						s.Kill()
						time.Sleep(outage)
						s.Restart(t)
						return time.Now() // the server is back: its port accepts
					}},
					FaultTakes: outage,
					Reclaim:    true,
					Dump:       []*netlab.NS{cli, srv},
				})
				t.Logf("%s: %d dials in all, %.0f a minute of outage", scenario, cell.Dials, float64(cell.Dials)/outage.Minutes())
			})
		})
	}
}

// shortDuration writes d as the lab's scenario names do: 15s, 60s, 5m.
func shortDuration(d time.Duration) string {
	if d >= 2*time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// TestReset resets the client's connection from the server's side (ss -K
// destroys the socket, which sends a RST) in the middle of the copy. The
// server and its session live on: the client must reconnect, replay what
// was cut off exactly once, and (SameReservedPort, Hedged) keep its port.
func TestReset(t *testing.T) {
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

// TestResetConnections4 is TestReset with Config.Connections = 4, Hedged
// only: every connection is reset at once, and the probe's first call
// after the fault waits behind the copy's WRITEs on its connection alone,
// a quarter of them; the table shows what that buys the first call.
func TestResetConnections4(t *testing.T) {
	forPolicies(t, []string{"Hedged"}, func(t *testing.T, pol string, minPort, maxPort int) {
		cli, srv, _, export := pair(t, ganesha.Config{})
		runCell(t, cellSpec{
			Scenario: "reset-connections4", Policy: pol, Client: cli, Addr: "10.77.1.1:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Connections: 4,
			Faults: []func() time.Time{func() time.Time {
				srv.Run("ss", "-K", "-t", "dst", "10.77.1.2")
				return time.Now()
			}},
			ExactlyOnce: true,
			Dump:        []*netlab.NS{cli, srv},
		})
	})
}

// TestResetV40 is TestReset over NFSv4.0 against a Ganesha that serves
// only 4.0, on an unshaped link with a 24 MiB copy, and with replies in
// flight when the connection is reset: eight probe loops issue a MKDIR
// every 20 ms each, the server's replies are held back (dropped on its
// way out) for 300 ms, long enough for every loop to have a MKDIR
// executed whose reply is lost, then the server resets the connection and
// lets its replies out again. The server and its state live on. Over 4.0
// nothing but the server's duplicate-request cache, which knows a call by
// its XID and the client's address and port, recognises the re-sent
// MKDIRs: from the old port they are answered from the cache, from a new
// one they run again and answer NFS4ERR_EXIST (package policy, "Duplicate
// request caches"). So SameReservedPort and Hedged must show no duplicate;
// what NewReservedPort and Ephemeral do is counted in the table, not
// asserted.
func TestResetV40(t *testing.T) {
	const hold = 300 * time.Millisecond
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		l := netlab.New(t)
		cli, srv := l.NS("client"), l.NS("server")
		l.Link(cli, "10.77.1.2/24", srv, "10.77.1.1/24")
		export := t.TempDir()
		startServer(t, srv, "10.77.1.1", export, ganesha.Config{MinorVersions: []int{0}})
		keeps := pol == "SameReservedPort" || pol == "Hedged"
		cell := runCell(t, cellSpec{
			Scenario: "reset-v4.0", Policy: pol, Client: cli, Addr: "10.77.1.1:2049",
			ExportDir: export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				srv.Nft(`table inet lab_hold {
	chain out { type filter hook output priority -300; policy accept; tcp sport 2049 drop; }
}`)
				time.Sleep(hold) // the replies lost in flight, not a wait for a result
				srv.Run("ss", "-K", "-t", "dst", "10.77.1.2")
				at := time.Now()
				srv.Nft("delete table inet lab_hold\n")
				return at
			}},
			V40: true, Size: 24 << 20, Probers: 8, ProbeEvery: 20 * time.Millisecond, HoldCopy: true,
			ExactlyOnce: keeps,
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

// TestFloatingIP is the Pacemaker floating-IP failback: the service address 10.77.5.100 moves from
// node 1 to node 2 (failover) and back (failback), with node 1's server
// running throughout, so node 1 still holds the ESTABLISHED connection
// for the client's first 4-tuple when the address comes back. The nodes
// and the client share a bridge; both servers listen on every address
// and export the same directory. The move updates the client's neighbour
// entry, as the gratuitous ARP of a cluster manager would.
func TestFloatingIP(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		f := newFloating(t, true)
		runCell(t, cellSpec{
			Scenario: "floating-ip", Policy: pol, Client: f.cli, Addr: floatingVIP + ":2049",
			ExportDir: f.export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults:  []func() time.Time{f.failover, f.failback},
			StuckOK: pol == "SameReservedPort",
			Dump:    []*netlab.NS{f.cli, f.n1, f.n2},
		})
	})
}

// TestFloatingIPFailback is the TCP half of the floating-IP failback on its own: node 2
// takes the address over for 4 s but serves nothing (it refuses the
// client's connections), then the address goes back to node 1, whose
// server has kept the client's session and still holds the ESTABLISHED
// connection of its old 4-tuple. The fault's time is the failback.
func TestFloatingIPFailback(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, pol string, minPort, maxPort int) {
		f := newFloating(t, false)
		runCell(t, cellSpec{
			Scenario: "floating-ip-failback", Policy: pol, Client: f.cli, Addr: floatingVIP + ":2049",
			ExportDir: f.export, Pseudo: "/export", MinPort: minPort, MaxPort: maxPort,
			Faults: []func() time.Time{func() time.Time {
				f.failover()
				time.Sleep(4 * time.Second) // the time on node 2
				return f.failback()
			}},
			StuckOK:     pol == "SameReservedPort",
			ExactlyOnce: true,
			Dump:        []*netlab.NS{f.cli, f.n1, f.n2},
		})
	})
}

// floatingVIP is the floating service address.
const floatingVIP = "10.77.5.100"

// floating is the network of the floating-IP scenarios.
type floating struct {
	cli, n1, n2        *netlab.NS
	cdev, n1dev, n2dev string
	export             string
}

// newFloating builds the client, the bridge and the two nodes, with the
// address on node 1 and a server on node 1 and, if serve2, on node 2.
func newFloating(t *testing.T, serve2 bool) *floating {
	l := netlab.New(t)
	f := &floating{export: t.TempDir()}
	var sw *netlab.NS
	f.cli, sw, f.n1, f.n2 = l.NS("client"), l.NS("switch"), l.NS("node1"), l.NS("node2")
	f.cdev, _ = l.Link(f.cli, "10.77.5.10/24", sw, "")
	_, f.n1dev = l.Link(sw, "", f.n1, "10.77.5.11/24")
	_, f.n2dev = l.Link(sw, "", f.n2, "10.77.5.12/24")
	sw.IP("link", "add", "br0", "type", "bridge")
	for _, dev := range []string{"to-client", "to-node1", "to-node2"} {
		sw.IP("link", "set", dev, "master", "br0")
	}
	sw.IP("link", "set", "br0", "up")
	f.n1.IP("addr", "add", floatingVIP+"/24", "dev", f.n1dev)
	f.cli.Shape(f.cdev, shapeRate)
	startServer(t, f.n1, "0.0.0.0", f.export, ganesha.Config{Lease: 15 * time.Second})
	if serve2 {
		startServer(t, f.n2, "0.0.0.0", f.export, ganesha.Config{Lease: 15 * time.Second})
	}
	return f
}

// move takes the address off one node and puts it on the other.
func (f *floating) move(from, to *netlab.NS, fromDev, toDev string) time.Time {
	from.IP("addr", "del", floatingVIP+"/24", "dev", fromDev)
	at := time.Now()
	to.IP("addr", "add", floatingVIP+"/24", "dev", toDev)
	f.cli.IP("neigh", "replace", floatingVIP, "lladdr", to.MAC(toDev), "dev", f.cdev, "nud", "reachable")
	return at
}

func (f *floating) failover() time.Time { return f.move(f.n1, f.n2, f.n1dev, f.n2dev) }
func (f *floating) failback() time.Time { return f.move(f.n2, f.n1, f.n2dev, f.n1dev) }

// TestNATReboot is the rebooted NAT gateway: two clients behind a masquerading gateway,
// both on the same source port (the policies' first port, 900), whose
// firewall drops what conntrack classes as invalid. The gateway goes
// down in the middle of the copies (drops everything) for longer than
// the clients take to give up their connections, loses its
// connection-tracking table, and comes back. The clients race for the
// external port; the lab lets client 2 win it, as in the field, so that
// each client's new connection is mapped onto the other's old 4-tuple,
// which the server still holds ESTABLISHED. The server answers their
// SYNs with ACKs of the old connections, which the gateway drops as
// invalid.
func TestNATReboot(t *testing.T) {
	// Longer than the clients take to declare the path dead (labSocket),
	// so that they redial while it is down, as after a real reboot.
	const down = 6 * time.Second
	// Client 1's packets are held back this long after the gateway returns,
	// so that client 2 takes the external port first.
	const race = 2500 * time.Millisecond
	forEachPolicy(t, func(t *testing.T, pol string, _, _ int) {
		l := netlab.New(t)
		c1, c2, gw, srv := l.NS("client1"), l.NS("client2"), l.NS("gateway"), l.NS("server")
		d1, _ := l.Link(c1, "10.77.11.2/24", gw, "10.77.11.1/24")
		d2, _ := l.Link(c2, "10.77.12.2/24", gw, "10.77.12.1/24")
		l.Link(gw, "10.77.20.1/24", srv, "10.77.20.2/24")
		c1.IP("route", "add", "default", "via", "10.77.11.1")
		c2.IP("route", "add", "default", "via", "10.77.12.1")
		gw.Sysctl("net.ipv4.ip_forward", "1")
		gw.Nft(`table ip lab_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "to-server" masquerade; }
	chain forwarding { type filter hook forward priority filter; policy accept; ct state invalid drop; }
}`)
		c1.Shape(d1, shapeRate)
		c2.Shape(d2, shapeRate)
		export := t.TempDir()
		startServer(t, srv, "10.77.20.2", export, ganesha.Config{Lease: 15 * time.Second})

		runCell(t, cellSpec{
			Scenario: "nat-reboot", Policy: pol, Label: "client1", Client: c1, Addr: "10.77.20.2:2049",
			More:      []extraClient{{Label: "client2", Client: c2, Addr: "10.77.20.2:2049"}},
			ExportDir: export, Pseudo: "/export", MinPort: 900, MaxPort: 1023,
			Faults: []func() time.Time{func() time.Time {
				// The gateway goes down...
				before, _ := gw.Conntrack("-L", "-p", "tcp")
				gw.Nft(silence)
				at := time.Now()
				time.Sleep(down) // the outage itself
				// ...and comes back with an empty table, client 1's
				// packets held back (race).
				gw.Nft(`table ip lab_race {
	chain forwarding { type filter hook forward priority -10; policy accept; iifname "to-client1" drop; }
}`)
				gw.FlushConntrack()
				gw.Nft("delete table inet lab_silence\n")
				time.Sleep(race)
				after, _ := gw.Conntrack("-L", "-p", "tcp")
				gw.Nft("delete table ip lab_race\n")
				t.Logf("gateway mappings before the reboot:\n%safter it, client 2 first:\n%sserver sockets:\n%s",
					before, after, srv.Run("ss", "-tan", "sport", "=", "2049"))
				return at
			}},
			// The bound counts from the end of the outage, as for the
			// blackhole: the outage itself took 8.5 s of a 20 s bound,
			// which a loaded machine's copy then missed.
			Bound:       down + race + labBound,
			StuckOK:     pol == "SameReservedPort",
			ExactlyOnce: true,
			Dump:        []*netlab.NS{c1, c2, gw, srv},
		})
	})
}
