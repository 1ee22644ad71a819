package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/testutil"
)

// steady returns an exponential backoff without jitter or time limit.
func steady(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.Multiplier = 2
	b.MaxInterval = max
	b.RandomizationFactor = 0
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// seeded returns a deterministic Rand.
func seeded(seed uint64) func(int) int {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).IntN
}

// lowest is the most adversarial Rand for avoidance: it always asks for the
// lowest allowed port.
func lowest(int) int { return 0 }

// fakeClock is a backoff.Clock moved by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func inRange(port, lo, hi int) bool { return port >= lo && port <= hi }

func TestSameReservedPortKeepsOnePort(t *testing.T) {
	testutil.CheckLeaks(t)
	p := SameReservedPort(Options{Rand: seeded(1)})
	first := p.Next(Attempt{N: 1, Cause: CauseInitial})
	if !inRange(first.Port, DefaultMinPort, DefaultMaxPort) {
		t.Fatalf("first port %d outside [%d, %d]", first.Port, DefaultMinPort, DefaultMaxPort)
	}
	causes := []Cause{CauseClosed, CauseRefused, CauseDialTimeout, CauseReset, CauseUnreachable}
	for i := range 10 {
		a := Attempt{N: i + 2, PrevPort: first.Port, Cause: causes[i%len(causes)]}
		if d := p.Next(a); d.Port != first.Port || d.GiveUp || d.HedgeAfter != 0 {
			t.Fatalf("redial %d (%v): %+v, want port %d kept, unhedged", i, a.Cause, d, first.Port)
		}
		if i%3 == 0 {
			p.Reset()
		}
	}
}

// withClock gives the default backoff of p, a stock policy built without
// Options.BackOff, the clock c, and restarts it.
func withClock(t *testing.T, p Policy, c backoff.Clock) {
	t.Helper()
	var pc *pacer
	switch p := p.(type) {
	case *sameReserved:
		pc = &p.pace
	case *newReserved:
		pc = &p.pace
	case *ephemeral:
		pc = &p.pace
	case *hedged:
		pc = &p.pace
	default:
		t.Fatalf("%T is not a stock policy", p)
	}
	b, ok := pc.b.(*youngCapped)
	if !ok {
		t.Fatalf("%T's backoff is a %T, not a default one", p, pc.b)
	}
	b.Clock = c
	b.Reset()
}

// stockDefaults are the stock policies with default Options.
func stockDefaults() map[string]Policy {
	return map[string]Policy{
		"SameReservedPort": SameReservedPort(Options{}),
		"NewReservedPort":  NewReservedPort(Options{}),
		"Ephemeral":        Ephemeral(Options{}),
		"Hedged":           Hedged(Options{}),
	}
}

// SameReservedPort's default waits the Linux client's 3s after a failed
// dial, and holds it there for the first minute of an outage; only then
// does it double, to the kernel's 60s.
func TestSameReservedPortWaits(t *testing.T) {
	testutil.CheckLeaks(t)
	p := SameReservedPort(Options{})
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	withClock(t, p, clock)
	s := time.Second
	var want []time.Duration
	want = append(want, 0)
	for range 20 { // 20 × 3s: the first minute
		want = append(want, 3*s)
	}
	want = append(want, 3*s, 6*s, 12*s, 24*s, 48*s, 60*s, 60*s, 60*s)
	check := func(round string) {
		t.Helper()
		for i, w := range want {
			a := Attempt{N: i + 1, Cause: CauseRefused}
			if i == 0 {
				a.Cause = CauseClosed
			}
			d := p.Next(a)
			if d.Wait != w || d.GiveUp {
				t.Fatalf("%s: attempt %d waits %v (give up %v), want %v", round, i+1, d.Wait, d.GiveUp, w)
			}
			clock.now = clock.now.Add(d.Wait) // each dial refused at once
		}
	}
	check("first outage")
	p.Reset()
	check("after Reset")

	// A connection that dies without carrying data (no Reset) does not
	// earn an immediate redial: the sequence goes on.
	if d := p.Next(Attempt{N: 10, Cause: CauseClosed}); d.Wait != 60*s {
		t.Fatalf("loss without Reset waits %v, want 60s", d.Wait)
	}
}

// The jittered default: 250ms doubling, held at 2s for the first minute
// of an outage, then doubling to 30s; every wait within ±50% of its step.
func TestJitteredDefaultStaysInBounds(t *testing.T) {
	testutil.CheckLeaks(t)
	for name, p := range stockDefaults() {
		if name == "SameReservedPort" {
			continue
		}
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		withClock(t, p, clock)
		if d := p.Next(Attempt{N: 1, Cause: CauseInitial}); d.Wait != 0 {
			t.Errorf("%s: first dial waits %v, want 0", name, d.Wait)
		}
		start := clock.now
		step := 250 * time.Millisecond
		for i := range 60 {
			d := p.Next(Attempt{N: i + 2, Cause: CauseDialTimeout})
			if d.Wait < step/2 || d.Wait > step*3/2+1 || d.GiveUp {
				t.Fatalf("%s: failure %d, %v into the outage, waits %v (give up %v), want %v ± 50%%",
					name, i+1, clock.now.Sub(start), d.Wait, d.GiveUp, step)
			}
			most := 30 * time.Second
			if clock.now.Sub(start) < time.Minute {
				most = 2 * time.Second
			}
			step = min(2*step, most)
			clock.now = clock.now.Add(d.Wait)
		}
		if step != 30*time.Second {
			t.Errorf("%s: step %v after %v of outage, want 30s", name, step, clock.now.Sub(start))
		}
	}
}

// A server back after an outage of up to a minute is found at most 3s
// late by every stock policy with its default backoff (each dial of the
// outage refused at once): the wait never grows past 2s ± 50% (3s for
// SameReservedPort) while the outage is young. Before the cap, a 15s
// outage could be found 13s late, past a typical grace period.
func TestYoungOutageFoundQuickly(t *testing.T) {
	testutil.CheckLeaks(t)
	const late = 3 * time.Second
	for name, p := range stockDefaults() {
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		withClock(t, p, clock)
		worst := time.Duration(0)
		for _, outage := range []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second, 59 * time.Second} {
			for trial := range 50 {
				p.Reset() // the lost connection had answered a call
				start := clock.now
				for n := 1; clock.now.Sub(start) < outage; n++ {
					if n > 1000 {
						t.Fatalf("%s: more than 1000 dials in %v", name, outage)
					}
					cause := CauseRefused
					if n == 1 {
						cause = CauseReset
					}
					d := p.Next(Attempt{N: n, Cause: cause})
					if d.GiveUp {
						t.Fatalf("%s gave up", name)
					}
					clock.now = clock.now.Add(d.Wait)
				}
				if found := clock.now.Sub(start) - outage; found > late {
					t.Errorf("%s, trial %d: server back after %v found %v late, want at most %v", name, trial, outage, found, late)
				} else {
					worst = max(worst, found)
				}
			}
		}
		t.Logf("%s: found at most %v late", name, worst)
	}
}

func TestStepSequenceWithoutJitter(t *testing.T) {
	testutil.CheckLeaks(t)
	ms := time.Millisecond
	want := []time.Duration{0, 250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 4000 * ms}
	for name, mk := range map[string]func(Options) Policy{
		"NewReservedPort": NewReservedPort, "Ephemeral": Ephemeral, "Hedged": Hedged,
	} {
		p := mk(Options{BackOff: steady(250*ms, 30*time.Second), Rand: seeded(2)})
		for round := range 2 {
			for i, w := range want {
				a := Attempt{N: i + 1, PrevPort: 700, Cause: CauseRefused}
				if i == 0 {
					a.Cause = CauseDeadPeer
				}
				if d := p.Next(a); d.Wait != w {
					t.Errorf("%s round %d: attempt %d waits %v, want %v", name, round, i+1, d.Wait, w)
				}
			}
			p.Reset()
		}
	}
}

func TestNewReservedPortAvoidsRecentPorts(t *testing.T) {
	testutil.CheckLeaks(t)
	for name, r := range map[string]func(int) int{"seeded": seeded(3), "lowest": lowest} {
		p := NewReservedPort(Options{Rand: r, BackOff: steady(time.Millisecond, time.Second)})
		var used []int
		prev := 0
		for i := range 60 {
			a := Attempt{N: i + 1, PrevPort: prev, Cause: CauseRefused}
			if i == 0 {
				a.Cause = CauseInitial
			}
			d := p.Next(a)
			if !inRange(d.Port, DefaultMinPort, DefaultMaxPort) {
				t.Fatalf("%s: dial %d from port %d, outside the reserved range", name, i, d.Port)
			}
			if d.Port == prev {
				t.Fatalf("%s: dial %d reuses the previous port %d", name, i, prev)
			}
			recent := used[max(0, len(used)-DefaultAvoid):]
			if slices.Contains(recent, d.Port) {
				t.Fatalf("%s: dial %d reuses port %d, one of the last %d: %v", name, i, d.Port, DefaultAvoid, recent)
			}
			used = append(used, d.Port)
			if i%4 == 3 { // this dial connected and answered a call
				prev = d.Port
				p.Reset()
			}
		}
	}
}

func TestSmallRanges(t *testing.T) {
	testutil.CheckLeaks(t)
	one := NewReservedPort(Options{MinPort: 800, MaxPort: 800})
	for i := range 5 {
		if d := one.Next(Attempt{N: i + 1, PrevPort: 800, Cause: CauseClosed}); d.Port != 800 {
			t.Fatalf("one-port range: got port %d, want 800", d.Port)
		}
	}
	two := NewReservedPort(Options{MinPort: 800, MaxPort: 801, Rand: seeded(4)})
	prev := 0
	for i := range 10 {
		d := two.Next(Attempt{N: i + 1, PrevPort: prev, Cause: CauseClosed})
		if !inRange(d.Port, 800, 801) || d.Port == prev {
			t.Fatalf("two-port range, PrevPort %d: got port %d", prev, d.Port)
		}
		prev = d.Port
	}
}

func TestNegativeAvoidKeepsOnlyPrevPortOut(t *testing.T) {
	testutil.CheckLeaks(t)
	p := NewReservedPort(Options{MinPort: 700, MaxPort: 703, Avoid: -1, Rand: lowest})
	// With only PrevPort and the port just tried kept out, the lowest Rand
	// comes back to 700 as soon as neither holds it.
	got := []int{
		p.Next(Attempt{N: 1, Cause: CauseInitial}).Port,
		p.Next(Attempt{N: 2, Cause: CauseRefused}).Port,
		p.Next(Attempt{N: 3, Cause: CauseRefused}).Port,
	}
	if want := []int{700, 701, 700}; !slices.Equal(got, want) {
		t.Fatalf("ports %v, want %v", got, want)
	}
}

func TestEphemeralAlwaysPortZero(t *testing.T) {
	testutil.CheckLeaks(t)
	p := Ephemeral(Options{BackOff: steady(time.Second, 8*time.Second)})
	for i := range NumCauses {
		a := Attempt{N: i + 1, PrevPort: 40000 + i, Cause: Cause(i), ReservedDenied: i%2 == 0}
		if d := p.Next(a); d.Port != 0 || d.HedgeAfter != 0 || d.GiveUp {
			t.Fatalf("%v: %+v, want port 0, unhedged, not giving up", a.Cause, d)
		}
	}
}

func TestHedgedKeepsOldPortAndHedgesFresh(t *testing.T) {
	testutil.CheckLeaks(t)
	p := Hedged(Options{Rand: seeded(5), BackOff: steady(time.Millisecond, time.Second)})
	first := p.Next(Attempt{N: 1, Cause: CauseInitial})
	if !inRange(first.Port, DefaultMinPort, DefaultMaxPort) || first.HedgeAfter != 0 || first.Wait != 0 {
		t.Fatalf("first dial: %+v, want a reserved port, unhedged, at once", first)
	}
	old := first.Port
	var hedges []int
	for i := range 10 {
		a := Attempt{N: i + 1, PrevPort: old, Cause: CauseRefused}
		if i == 0 {
			a.Cause = CauseReset
		}
		d := p.Next(a)
		if d.Port != old {
			t.Fatalf("redial %d from port %d, want the old port %d", i, d.Port, old)
		}
		if d.HedgeAfter != DefaultHedgeAfter {
			t.Fatalf("redial %d hedges after %v, want %v", i, d.HedgeAfter, DefaultHedgeAfter)
		}
		if !inRange(d.HedgePort, DefaultMinPort, DefaultMaxPort) || d.HedgePort == old {
			t.Fatalf("redial %d hedges from port %d, want a fresh reserved port", i, d.HedgePort)
		}
		if slices.Contains(hedges, d.HedgePort) {
			t.Fatalf("redial %d hedges from port %d again (earlier: %v)", i, d.HedgePort, hedges)
		}
		hedges = append(hedges, d.HedgePort)
	}
	// The fresh port won: it is kept from now on.
	won := hedges[len(hedges)-1]
	p.Reset()
	if d := p.Next(Attempt{N: 1, PrevPort: won, Cause: CauseClosed}); d.Port != won || d.HedgePort == won {
		t.Fatalf("after the hedge won: %+v, want port %d kept", d, won)
	}
}

func TestHedgedCustomHedgeAfter(t *testing.T) {
	testutil.CheckLeaks(t)
	p := Hedged(Options{HedgeAfter: 2 * time.Second})
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	if d := p.Next(Attempt{N: 1, PrevPort: 900, Cause: CauseClosed}); d.HedgeAfter != 2*time.Second {
		t.Fatalf("HedgeAfter %v, want 2s", d.HedgeAfter)
	}
}

func TestHedgedWithReservedPortsDenied(t *testing.T) {
	testutil.CheckLeaks(t)
	ms := time.Millisecond
	p := Hedged(Options{Rand: seeded(6), BackOff: steady(250*ms, time.Second)})
	if d := p.Next(Attempt{N: 1, Cause: CauseInitial, ReservedDenied: true}); d.Port != 0 || d.HedgeAfter != 0 {
		t.Fatalf("first dial, denied: %+v, want port 0, unhedged", d)
	}
	// The connection came from ephemeral port 40000: keep it, hedge with
	// another ephemeral port.
	p.Reset()
	d := p.Next(Attempt{N: 1, PrevPort: 40000, Cause: CauseClosed, ReservedDenied: true})
	if d.Port != 40000 || d.HedgePort != 0 || d.HedgeAfter != DefaultHedgeAfter || d.Wait != 0 {
		t.Fatalf("redial, denied: %+v, want port 40000 hedged by port 0 after %v", d, DefaultHedgeAfter)
	}
	// A reserved old port cannot be bound any more: nothing to keep.
	d = p.Next(Attempt{N: 2, PrevPort: 900, Cause: CauseRefused, ReservedDenied: true})
	if d.Port != 0 || d.HedgeAfter != 0 || d.GiveUp {
		t.Fatalf("reserved old port, denied: %+v, want port 0, unhedged", d)
	}
}

func TestHedgedFallsBackOnPermission(t *testing.T) {
	testutil.CheckLeaks(t)
	ms := time.Millisecond
	p := Hedged(Options{Rand: seeded(7), BackOff: steady(250*ms, time.Second)})
	if d := p.Next(Attempt{N: 1, Cause: CauseInitial}); d.Port == 0 {
		t.Fatalf("first dial from port 0, want a reserved port")
	}
	// EACCES on the reserved port: retry from an ephemeral one at once.
	d := p.Next(Attempt{N: 2, Cause: CausePermission, ReservedDenied: true})
	if d.GiveUp || d.Port != 0 || d.Wait != 0 {
		t.Fatalf("after EACCES: %+v, want port 0 at once", d)
	}
	// That was no backoff step: the first real failure waits the first step.
	if d := p.Next(Attempt{N: 3, Cause: CauseRefused, ReservedDenied: true}); d.Wait != 250*ms {
		t.Fatalf("first failure after EACCES waits %v, want 250ms", d.Wait)
	}
	// EACCES with port 0 already (a firewall, say) has no other port to
	// try: it is paced like any failure.
	if d := p.Next(Attempt{N: 4, Cause: CausePermission, ReservedDenied: true}); d.Wait != 500*ms || d.GiveUp {
		t.Fatalf("EACCES on port 0: %+v, want a 500ms step", d)
	}
}

func TestReservedOnlyPoliciesGiveUpOnPermission(t *testing.T) {
	testutil.CheckLeaks(t)
	for name, mk := range map[string]func(Options) Policy{
		"SameReservedPort": SameReservedPort, "NewReservedPort": NewReservedPort,
	} {
		p := mk(Options{})
		p.Next(Attempt{N: 1, Cause: CauseInitial})
		if d := p.Next(Attempt{N: 2, Cause: CausePermission}); !d.GiveUp {
			t.Errorf("%s on EACCES: %+v, want GiveUp", name, d)
		}
		if d := mk(Options{}).Next(Attempt{N: 1, Cause: CauseInitial, ReservedDenied: true}); !d.GiveUp {
			t.Errorf("%s with ReservedDenied: %+v, want GiveUp", name, d)
		}
	}
	for name, mk := range map[string]func(Options) Policy{"Ephemeral": Ephemeral, "Hedged": Hedged} {
		p := mk(Options{})
		p.Next(Attempt{N: 1, Cause: CauseInitial})
		if d := p.Next(Attempt{N: 2, Cause: CausePermission, ReservedDenied: true}); d.GiveUp {
			t.Errorf("%s on EACCES gives up", name)
		}
	}
}
