package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of the Options fields left zero.
const (
	// DefaultMinPort is the lowest port the reserved-port policies choose,
	// like Linux's sysctl sunrpc.min_resvport.
	DefaultMinPort = 665
	// DefaultMaxPort is the highest port the reserved-port policies choose,
	// like Linux's sysctl sunrpc.max_resvport.
	DefaultMaxPort = 1023
	// DefaultHedgeAfter is how long Hedged lets a redial from the old port
	// run alone before it starts a second dial from a fresh port.
	DefaultHedgeAfter = 300 * time.Millisecond
	// DefaultAvoid is how many recently chosen ports NewReservedPort and
	// Hedged keep out of their next choice.
	DefaultAvoid = 16
)

// firstUnprivilegedPort is the lowest port an unprivileged process may bind
// on Linux (sysctl net.ipv4.ip_unprivileged_port_start, default 1024).
// Hedged keeps an old port below it only while reserved ports are allowed.
const firstUnprivilegedPort = 1024

// Options configures the stock policies. The zero value is ready to use:
// each field left zero takes the default documented next to it.
//
// The constructors copy Options, so one value may configure many policies,
// with one exception: BackOff has state, and each policy needs its own.
type Options struct {
	// MinPort and MaxPort bound, inclusive, the local ports that
	// SameReservedPort, NewReservedPort and Hedged choose. Defaults: 665
	// and 1023 (DefaultMinPort, DefaultMaxPort), Linux's
	// sunrpc.min_resvport and sunrpc.max_resvport; either bound left zero
	// takes its default alone. Binding a port below 1024 needs root or
	// CAP_NET_BIND_SERVICE. A range above 1023 is allowed, for instance
	// for a firewall that admits only some source ports; it gives up the
	// AUTH_SYS "trusted port" that servers check. The constructors panic
	// unless 1 <= MinPort <= MaxPort <= 65535 after defaults.
	MinPort int
	MaxPort int

	// BackOff paces dials that follow a failure; Default (nil): each
	// constructor documents its own. A BackOff has state and is not safe for
	// concurrent use: give each policy its own; handing one to two policies
	// makes both of them wrong.
	//
	// The policy calls BackOff.Reset when it is built, from Policy.Reset,
	// and on the first redial after a connection answered a call, so that a
	// MaxElapsedTime counts from the start of the outage rather than from
	// when the last good connection was made. NextBackOff returning
	// backoff.Stop (or any negative duration) makes the policy give up.
	//
	// Traps with backoff.ExponentialBackOff: its MaxElapsedTime defaults to
	// 15 minutes, after which it returns Stop; set it to 0 for a transport
	// that must never give up on its own. Build it with
	// backoff.NewExponentialBackOff: a struct literal has a nil Clock, which
	// panics, and a zero Stop, which turns "stop" into "retry at once";
	// the constructors fill in backoff.SystemClock and backoff.Stop for
	// those two fields if they find them zero.
	BackOff backoff.BackOff

	// Rand returns a uniform random int in [0, n) for n > 0; it chooses
	// ports, never waits (the jitter of an ExponentialBackOff has its own
	// source). Default (nil): math/rand/v2's IntN. Tests inject a
	// deterministic one. It is called only from Policy.Next.
	Rand func(n int) int

	// HedgeAfter is how long Hedged's redial from the old port runs alone
	// before a second dial from a fresh port starts. Used by Hedged only.
	// Default: 300ms (DefaultHedgeAfter). The constructors panic if it is
	// negative.
	HedgeAfter time.Duration

	// Avoid is how many of their most recent choices NewReservedPort and
	// Hedged keep out of the next one, besides Attempt.PrevPort, which is
	// always avoided. Default: 16 (DefaultAvoid). Negative: avoid only
	// PrevPort and the port just tried. The window shrinks by itself when
	// the port range is too small to honour it.
	Avoid int
}

// config is Options with defaults applied and checked.
type config struct {
	minPort, maxPort int
	rand             func(int) int
	hedgeAfter       time.Duration
	avoid            int
}

// resolve applies defaults to o and panics if o is unusable. Options come
// from the program, never from the network, so a panic here is a bug report
// at construction rather than a surprise at the first reconnect.
func (o Options) resolve() config {
	c := config{
		minPort:    o.MinPort,
		maxPort:    o.MaxPort,
		rand:       o.Rand,
		hedgeAfter: o.HedgeAfter,
		avoid:      o.Avoid,
	}
	if c.minPort == 0 {
		c.minPort = DefaultMinPort
	}
	if c.maxPort == 0 {
		c.maxPort = DefaultMaxPort
	}
	if c.minPort < 1 || c.maxPort > 65535 || c.minPort > c.maxPort {
		panic(fmt.Sprintf("policy: invalid port range [%d, %d] (Options.MinPort, Options.MaxPort)", c.minPort, c.maxPort))
	}
	if c.rand == nil {
		c.rand = rand.IntN
	}
	switch {
	case c.hedgeAfter < 0:
		panic(fmt.Sprintf("policy: negative Options.HedgeAfter %v", c.hedgeAfter))
	case c.hedgeAfter == 0:
		c.hedgeAfter = DefaultHedgeAfter
	}
	switch {
	case c.avoid < 0:
		c.avoid = 0
	case c.avoid == 0:
		c.avoid = DefaultAvoid
	}
	return c
}

// ports chooses random local ports in [lo, hi], keeping recent choices out.
// It is not safe for concurrent use.
type ports struct {
	lo, hi int
	rand   func(int) int
	window int   // how many recent choices to avoid; at most the range size
	recent []int // the last choices, oldest first, at most window of them
	excl   []int // scratch for fresh, kept to avoid allocating per dial
}

// newPorts returns a chooser over c's range that avoids the last window
// choices.
func newPorts(c config, window int) ports {
	size := c.maxPort - c.minPort + 1
	window = min(window, size)
	return ports{
		lo:     c.minPort,
		hi:     c.maxPort,
		rand:   c.rand,
		window: window,
		recent: make([]int, 0, window),
		excl:   make([]int, 0, window+2),
	}
}

// fresh returns a uniformly random port in range that is neither a nor b
// (0 = none) and none of the recent choices, and records it as a choice.
// a and b are kept out first, then recent choices from the newest back, as
// long as at least one port remains possible: with a range of one port, that
// port is the answer whatever is avoided.
func (p *ports) fresh(a, b int) int {
	size := p.hi - p.lo + 1
	excl := p.excl[:0]
	add := func(port int) {
		if len(excl) < size-1 && port >= p.lo && port <= p.hi && !slices.Contains(excl, port) {
			excl = append(excl, port)
		}
	}
	add(a)
	add(b)
	for i := len(p.recent) - 1; i >= 0; i-- {
		add(p.recent[i])
	}
	slices.Sort(excl)
	// Draw among the allowed ports, then step over the excluded ones below
	// the draw; walking them in ascending order maps the draw onto the
	// allowed ports one to one.
	port := p.lo + p.draw(size-len(excl))
	for _, e := range excl {
		if e <= port {
			port++
		}
	}
	p.excl = excl
	p.remember(port)
	return port
}

// draw returns p.rand(n), folded into [0, n) should a user-supplied Rand
// stray outside it.
func (p *ports) draw(n int) int {
	r := p.rand(n)
	if r < 0 || r >= n {
		r %= n
		if r < 0 {
			r += n
		}
	}
	return r
}

// remember records port as the newest choice.
func (p *ports) remember(port int) {
	if p.window == 0 {
		return
	}
	if len(p.recent) == p.window {
		copy(p.recent, p.recent[1:])
		p.recent = p.recent[:p.window-1]
	}
	p.recent = append(p.recent, port)
}
