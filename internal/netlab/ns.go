package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/gonfs/nfs/internal/proc"
	"golang.org/x/sys/unix"
)

// An NS is one network namespace of a Lab. Its methods are safe for
// concurrent use. The methods without an error result fail the test (with
// t.Fatal, so call them from the test's goroutine) when the command fails.
type NS struct {
	lab *Lab
	// Name is the namespace's name, as `ip netns` knows it.
	Name string
	// Role is the role New was given; interfaces towards this namespace
	// are called "to-" + Role.
	Role string

	mu    sync.Mutex
	procs []*proc.Process // started with Start and not yet stopped; guarded by mu
}

// Exec runs a command inside the namespace (ip netns exec) with stdin
// (nil for none), bounded by ctx and CommandTimeout, and returns its
// standard output.
func (n *NS) Exec(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return command(ctx, stdin, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// Run runs a command inside the namespace and returns its standard
// output; it fails the test if the command fails.
func (n *NS) Run(args ...string) string {
	n.lab.t.Helper()
	out, err := n.Exec(context.Background(), nil, args...)
	if err != nil {
		n.lab.t.Fatal(err)
	}
	return string(out)
}

// IP runs `ip args...` inside the namespace.
func (n *NS) IP(args ...string) string {
	n.lab.t.Helper()
	out, err := command(context.Background(), nil, "ip", append([]string{"-n", n.Name}, args...)...)
	if err != nil {
		n.lab.t.Fatal(err)
	}
	return string(out)
}

// Nft applies an nftables ruleset (the language of `nft -f`) inside the
// namespace, atomically: either all of it or, on error, none.
func (n *NS) Nft(ruleset string) {
	n.lab.t.Helper()
	if _, err := n.Exec(context.Background(), []byte(ruleset), "nft", "-f", "-"); err != nil {
		n.lab.t.Fatalf("%v\nruleset:\n%s", err, ruleset)
	}
}

// Ruleset returns the namespace's nftables ruleset (nft list ruleset),
// for failure reports.
func (n *NS) Ruleset() string {
	out, err := n.Exec(context.Background(), nil, "nft", "list", "ruleset")
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// Conntrack runs `conntrack args...` inside the namespace and returns its
// standard output (for -L, one flow per line). conntrack reports on
// standard error how many flows it listed or deleted; a -D that matches
// none is an error.
func (n *NS) Conntrack(args ...string) (string, error) {
	out, err := n.Exec(context.Background(), nil, append([]string{"conntrack"}, args...)...)
	return string(out), err
}

// FlushConntrack empties the namespace's connection-tracking table, as a
// reboot of a NAT gateway does.
func (n *NS) FlushConntrack() {
	n.lab.t.Helper()
	if _, err := n.Conntrack("-F"); err != nil {
		n.lab.t.Fatal(err)
	}
}

// Sysctl sets a sysctl of the namespace ("net.ipv4.ip_forward", "1").
// Only the net.* keys are per namespace.
func (n *NS) Sysctl(key, value string) {
	n.lab.t.Helper()
	if !strings.HasPrefix(key, "net.") {
		n.lab.t.Fatalf("netlab: sysctl %s is not per network namespace", key)
	}
	n.Run("sysctl", "-q", "-w", key+"="+value)
}

// Shape limits what the namespace sends through dev to rate (tc's
// syntax: "100mbit") with a token bucket filter, whose queue holds
// 50 ms of traffic; excess packets are dropped, as on a slow link.
func (n *NS) Shape(dev, rate string) {
	n.lab.t.Helper()
	n.Run("tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms")
}

// MAC returns the hardware address of dev.
func (n *NS) MAC(dev string) string {
	n.lab.t.Helper()
	out := n.IP("-br", "link", "show", "dev", dev)
	f := strings.Fields(out)
	if len(f) < 3 {
		n.lab.t.Fatalf("netlab: no hardware address in %q", out)
	}
	return f[2]
}

// Link connects a and b with a veth pair, gives a's end the address aAddr
// and b's end bAddr (CIDR: "10.77.1.1/24"; "" for none), and sets both
// up. It returns the interface names: in a "to-"+b.Role, in b
// "to-"+a.Role.
func (l *Lab) Link(a *NS, aAddr string, b *NS, bAddr string) (aDev, bDev string) {
	l.t.Helper()
	aDev, bDev = "to-"+b.Role, "to-"+a.Role
	for _, addr := range []string{aAddr, bAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(addr); err != nil {
			l.t.Fatalf("netlab: address %q: %v", addr, err)
		}
	}
	// Created inside a, its peer inside b: neither is ever in the host's
	// namespace.
	a.IP("link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name)
	for _, end := range []struct {
		ns        *NS
		dev, addr string
	}{{a, aDev, aAddr}, {b, bDev, bAddr}} {
		if end.addr != "" {
			end.ns.IP("addr", "add", end.addr, "dev", end.dev)
		}
		end.ns.IP("link", "set", end.dev, "up")
	}
	return aDev, bDev
}

// String returns the namespace's name.
func (n *NS) String() string { return n.Name }

// Dump returns addresses, routes, neighbours, sockets, the ruleset and
// the connection-tracking table of the namespace, for failure reports.
func (n *NS) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "=== namespace %s\n", n.Name)
	for _, args := range [][]string{
		{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "neigh"},
		{"ss", "-tan"}, {"nft", "list", "ruleset"}, {"conntrack", "-L"},
	} {
		out, err := n.Exec(context.Background(), nil, args...)
		fmt.Fprintf(&b, "--- %s\n%s", strings.Join(args, " "), out)
		if err != nil && args[0] != "conntrack" { // conntrack -L fails harmlessly when the table is not loaded
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	return b.String()
}

// Dial opens a TCP connection to addr (a literal IP address and port)
// from inside the namespace. A socket belongs to the namespace it was
// created in, so the connection stays inside it however it is used.
func (n *NS) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.in(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// Listen opens a TCP listener on addr inside the namespace.
func (n *NS) Listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := n.in(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// SetNameserver makes ip the name server of the processes started in the
// namespace: `ip netns exec` mounts /etc/netns/NAME/resolv.conf over
// /etc/resolv.conf for them. The file goes with the namespace.
func (n *NS) SetNameserver(ip string) error {
	dir := etcNetnsDir + "/" + n.Name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	conf := "nameserver " + ip + "\noptions timeout:1 attempts:2\n"
	if err := os.WriteFile(dir+"/resolv.conf", []byte(conf), 0o644); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

// ListenPacket opens a UDP socket on addr inside the namespace.
func (n *NS) ListenPacket(addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.in(func() error {
		var err error
		c, err = net.ListenPacket("udp", addr)
		return err
	})
	return c, err
}

// in runs f on an OS thread that has entered the namespace; f must not
// start goroutines that create sockets. The thread returns to the
// process's namespace afterwards, or, if it cannot, ends with its
// goroutine.
func (n *NS) in(f func() error) error {
	target, err := os.Open(netnsDir + "/" + n.Name)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	defer target.Close()
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("netlab: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("netlab: enter namespace %s: %w", n.Name, err)
			return
		}
		err = f()
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		res <- err
	}()
	return <-res
}
