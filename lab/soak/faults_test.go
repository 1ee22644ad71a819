package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
)

// The network: client → stateful load balancer (DNAT of the service
// address, as in the lab's lb-failover scenario) → server 0 or server 1,
// two Ganesha instances exporting the same directory, each with a state
// directory of its own.
const (
	serviceAddr = "10.77.9.9"
	clientAddr  = "10.77.1.2"
)

var backendAddr = [2]string{"10.77.2.2", "10.77.3.2"}

// Server timing: a short lease, so that a blackhole can outlive it in
// seconds; a grace period after a restart, so that the client reclaims.
const (
	lease = 3 * time.Second
	grace = 4 * time.Second
	// leaseHole is how long the lease-expiry fault keeps the path silent:
	// more than twice the lease, as in the lab's lease-blackhole scenario.
	leaseHole = 8 * time.Second
)

// The fault kinds, in report order.
var faultKinds = []string{"reset", "blackhole", "restart", "failover", "lease-expiry"}

// silence drops everything a namespace sends, receives or forwards: a
// host that died without a word (no RST, no ICMP).
const silence = `table inet soak_silence {
	chain in { type filter hook input priority -300; policy drop; }
	chain out { type filter hook output priority -300; policy drop; }
	chain forwarding { type filter hook forward priority -300; policy drop; }
}`

const unsilence = "delete table inet soak_silence\n"

// lbRules is the load balancer: DNAT of the service address to one
// backend; conntrack keeps each flow on the backend it was first sent to.
func lbRules(backend string) string {
	return `table ip soak_lb {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr ` + serviceAddr + ` tcp dport 2049 dnat to ` + backend + `
	}
}`
}

// retarget points the balancer's new flows at another backend, leaving
// the connection-tracking table alone.
func retarget(backend string) string {
	return `flush chain ip soak_lb pre
add rule ip soak_lb pre ip daddr ` + serviceAddr + ` tcp dport 2049 dnat to ` + backend + "\n"
}

// A topo is the soak's network and servers. Its methods run on the test's
// goroutine (the netlab calls fail the test with t.Fatal).
type topo struct {
	t        *testing.T
	cli, lb  *netlab.NS
	srv      [2]*netlab.NS
	gan      [2]*ganesha.Server
	export   string  // the exported directory, shared by both servers
	cur      int     // the backend new flows go to
	silenced [2]bool // a failover left this backend silent
}

// A fault is one injected failure.
type fault struct {
	Kind   string
	Server int       // the backend it hit (failover: the one failed away from)
	At     time.Time // when it took effect
	Lifted time.Time // when the injection ended (path back, server up, balancer retargeted)
	Detail string
	// Filled in once the workload has made progress again.
	Recovered bool
	Recovery  time.Duration // from Lifted to the first operation issued after it finished
	// What the client did meanwhile: from the progress lines before the
	// fault and at recovery.
	Reconnects, SessionResets, ClientIDResets uint64
}

// inject injects one fault of kind and returns when it has been lifted.
func (n *topo) inject(kind string, rnd *rand.Rand) fault {
	f := fault{Kind: kind, Server: n.cur}
	s := n.srv[n.cur]
	switch kind {
	case "reset":
		// ss -K destroys the server's socket, which sends a RST.
		n.run(s, "", "ss", "-K", "-t", "dst", clientAddr)
		f.At = time.Now()
		f.Lifted = f.At
	case "blackhole", "lease-expiry":
		d := leaseHole
		if kind == "blackhole" {
			// 0.5–2 s: shorter than the lease.
			d = 500*time.Millisecond + time.Duration(rnd.Int64N(int64(1500*time.Millisecond)))
		}
		n.nft(s, silence)
		f.At = time.Now()
		time.Sleep(d) // the outage itself
		n.nft(s, unsilence)
		f.Lifted = time.Now()
		f.Detail = fmt.Sprintf("silent %.1f s", d.Seconds())
	case "restart":
		down := time.Duration(rnd.Int64N(int64(1500 * time.Millisecond)))
		n.gan[n.cur].Kill() // SIGKILL
		f.At = time.Now()
		time.Sleep(down) // the outage itself
		n.gan[n.cur].Restart(n.t)
		f.Lifted = time.Now()
		f.Detail = fmt.Sprintf("down %.1f s", time.Since(f.At).Seconds())
	case "failover":
		// The current backend goes silent and the balancer sends new
		// flows to the other, which a previous failover may have left
		// silent; the client's tracked flow still maps to the old one.
		other := 1 - n.cur
		if n.silenced[other] {
			n.nft(n.srv[other], unsilence)
			n.silenced[other] = false
		}
		n.nft(s, silence)
		n.silenced[n.cur] = true
		f.At = time.Now()
		n.nft(n.lb, retarget(backendAddr[other]))
		f.Lifted = time.Now()
		f.Detail = fmt.Sprintf("server %d → server %d", n.cur, other)
		n.cur = other
	default:
		panic("soak: unknown fault " + kind)
	}
	return f
}

// run runs args in ns, with stdin, and fails the test if the command
// fails. Unlike netlab's NS.Run and NS.Nft it takes exec.ErrWaitDelay as
// the success it is: the command exited with status 0, and only the copy
// of its output (which the soak never reads) had not finished within
// netlab's WaitDelay. On a machine loaded enough that happens, and a
// half-hour run should not end for it.
func (n *topo) run(ns *netlab.NS, stdin string, args ...string) {
	n.t.Helper()
	var in []byte
	if stdin != "" {
		in = []byte(stdin)
	}
	if _, err := ns.Exec(context.Background(), in, args...); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		n.t.Fatal(err)
	}
}

// nft applies an nftables ruleset in ns (nft -f: all of it or none).
func (n *topo) nft(ns *netlab.NS, ruleset string) {
	n.t.Helper()
	n.run(ns, ruleset, "nft", "-f", "-")
}
