package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
	pc := pacerOf(t, p)
	pc.clock = c
	if b, ok := pc.b.(*backoff.ExponentialBackOff); ok {
		b.Clock = c
		b.Reset()
	}
}

// pacerOf returns the pacer of stock policy p.
func pacerOf(t *testing.T, p Policy) *pacer {
	t.Helper()
	switch p := p.(type) {
	case *sameReserved:
		return &p.pace
	case *newReserved:
		return &p.pace
	case *ephemeral:
		return &p.pace
	case *hedged:
		return &p.pace
	}
	t.Fatalf("%T is not a stock policy", p)
	return nil
}

// frozen gives stock policy p a clock that stands still, so that its
// waits are its BackOff's steps exactly (no dial seems to take time).
func frozen(t *testing.T, p Policy) Policy {
	t.Helper()
	withClock(t, p, &fakeClock{now: time.Unix(1e9, 0)})
	return p
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

// Every stock policy's default: the first redial after a lost connection
// at once, then 250ms, 500ms and 1s steps, 1s for as long as the outage
// lasts (an hour here); every wait within ±25% of its step. Dials that are
// refused take no time, so each wait is a whole step.
func TestDefaultPacing(t *testing.T) {
	testutil.CheckLeaks(t)
	for name, p := range stockDefaults() {
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		withClock(t, p, clock)
		for round := range 2 {
			if d := p.Next(Attempt{N: 1, PrevPort: 700, Cause: CauseReset}); d.Wait != 0 || d.GiveUp {
				t.Fatalf("%s: redial after a lost connection waits %v (give up %v), want 0", name, d.Wait, d.GiveUp)
			}
			start := clock.now
			step := 250 * time.Millisecond
			for i := 0; clock.now.Sub(start) < time.Hour; i++ {
				d := p.Next(Attempt{N: i + 2, PrevPort: 700, Cause: CauseRefused})
				if d.Wait < step*3/4 || d.Wait > step*5/4+1 || d.GiveUp {
					t.Fatalf("%s round %d: failure %d, %v into the outage, waits %v (give up %v), want %v ± 25%%",
						name, round, i+1, clock.now.Sub(start), d.Wait, d.GiveUp, step)
				}
				step = min(2*step, time.Second)
				clock.now = clock.now.Add(d.Wait)
			}
			p.Reset()
		}
	}
}

// Dials start at most once per step, whatever they meet: a dial that took
// longer than the step (it timed out) is followed at once, one that took
// part of it waits the rest. Seen with a fixed step of 1s.
func TestStepSpacesDialStarts(t *testing.T) {
	testutil.CheckLeaks(t)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	p := NewReservedPort(Options{BackOff: steady(time.Second, time.Second)})
	withClock(t, p, clock)
	start := clock.now
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	for i, c := range []struct {
		took time.Duration
		want time.Duration
	}{
		{0, time.Second},
		{2 * time.Second, 0},
		{300 * time.Millisecond, 700 * time.Millisecond},
		{time.Second, 0},
	} {
		clock.now = start.Add(c.took) // the previous dial has failed
		d := p.Next(Attempt{N: i + 2, Cause: CauseDialTimeout})
		if d.Wait != c.want || d.GiveUp {
			t.Errorf("dial %d, after one that took %v: waits %v (give up %v), want %v", i+2, c.took, d.Wait, d.GiveUp, c.want)
		}
		start = clock.now.Add(d.Wait)
	}
}

// foundLate simulates outages of every length in outages, each with every
// dial refused at once (refused) or unanswered (the server's host or the
// path is down), against stock policy p with the default transport's 2s
// dial timeout, trials times each. It returns how late the server is
// found after it comes back: every one, and the dials started per minute
// of outage. An unanswered dial sends a SYN when it starts and the kernel
// sends it again 1s later; the server is found by the first SYN it gets.
func foundLate(t *testing.T, p Policy, outage time.Duration, refused bool, trials int) (late []time.Duration, perMinute float64) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	withClock(t, p, clock)
	const dialTimeout = 2 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	dials, down := 0, time.Duration(0)
	{
		for range trials {
			p.Reset() // the lost connection had answered a call
			start := clock.now
			back := start.Add(outage + time.Duration(r.Int64N(int64(time.Second)))) // not on a whole second
			for n := 1; ; n++ {
				if n > 100000 {
					t.Fatalf("more than 100000 dials in %v", outage)
				}
				cause := CauseRefused
				switch {
				case n == 1:
					cause = CauseReset
				case !refused:
					cause = CauseDialTimeout
				}
				d := p.Next(Attempt{N: n, Cause: cause})
				if d.GiveUp {
					t.Fatal("gave up")
				}
				clock.now = clock.now.Add(d.Wait) // the dial starts: its SYN leaves
				dials++
				if !clock.now.Before(back) {
					break
				}
				if refused {
					continue // refused at once
				}
				if syn2 := clock.now.Add(time.Second); !syn2.Before(back) {
					clock.now = syn2 // the kernel's retransmission gets through
					break
				}
				clock.now = clock.now.Add(dialTimeout)
			}
			late = append(late, clock.now.Sub(back))
			down += clock.now.Sub(start)
		}
	}
	return late, float64(dials) / down.Minutes()
}

// A server back after an outage of any length is found within about a
// second by every stock policy with its default pacing, and dials start
// about once a second meanwhile: 500 simulated outages of 5s, 15s, 60s
// and 5min each, refused or unanswered. The package documentation's
// table comes from this test (go test -v -run TestOutageFoundQuickly).
func TestOutageFoundQuickly(t *testing.T) {
	testutil.CheckLeaks(t)
	outages := []time.Duration{5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute}
	for _, name := range []string{"SameReservedPort", "NewReservedPort", "Ephemeral", "Hedged"} {
		for _, refused := range []bool{true, false} {
			how := "unanswered"
			if refused {
				how = "refused"
			}
			var row []string
			for _, outage := range outages {
				late, perMinute := foundLate(t, stockDefaults()[name], outage, refused, 500)
				slices.Sort(late)
				median, worst := late[len(late)/2], late[len(late)-1]
				if worst > 1250*time.Millisecond || perMinute > 240 {
					t.Errorf("%s, %s dials, %v outage: found %v late at worst (median %v), %.0f dials a minute; want at most 1.25s and 240",
						name, how, outage, worst, median, perMinute)
				}
				row = append(row, fmt.Sprintf("%v: %v, %v, %.0f/min", outage, median.Round(10*time.Millisecond), worst.Round(10*time.Millisecond), perMinute))
			}
			t.Logf("%s, %s: %s", name, how, strings.Join(row, "; "))
		}
	}
}

// The same simulation with the Linux client's waits (3s, doubling to 60s,
// no jitter), against which the package documentation compares: the
// default pacing finds a returning server several times sooner.
func TestOutageFoundSoonerThanWithLinuxSteps(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, outage := range []time.Duration{5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute} {
		linux, linuxRate := foundLate(t, SameReservedPort(Options{BackOff: steady(3*time.Second, time.Minute)}), outage, true, 500)
		ours, _ := foundLate(t, Hedged(Options{}), outage, true, 500)
		slices.Sort(linux)
		slices.Sort(ours)
		lm, om := linux[len(linux)/2], ours[len(ours)/2]
		t.Logf("%v outage, refused: Linux steps find it %v late (median), %v at worst, %.0f dials/min; default %v",
			outage, lm.Round(100*time.Millisecond), linux[len(linux)-1].Round(100*time.Millisecond), linuxRate, om.Round(10*time.Millisecond))
		if om*3 > lm {
			t.Errorf("%v outage: default found it %v late (median), Linux steps %v; want at least 3 times sooner", outage, om, lm)
		}
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

// TestHedgedRacesSoonerAfterSilence: after a path went silent, the old
// port's default head start shrinks to silentHedgeAfter (a poisoned
// 4-tuple is likely); after a reset it stays DefaultHedgeAfter, and a
// HedgeAfter the caller set applies after either.
func TestHedgedRacesSoonerAfterSilence(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, tc := range []struct {
		cause Cause
		after time.Duration // Options.HedgeAfter
		want  time.Duration
	}{
		{CauseProbeTimeout, 0, silentHedgeAfter},
		{CauseDeadPeer, 0, silentHedgeAfter},
		{CauseReset, 0, DefaultHedgeAfter},
		{CauseMajorTimeout, 0, DefaultHedgeAfter},
		{CauseProbeTimeout, 20 * time.Millisecond, 20 * time.Millisecond},
		{CauseDeadPeer, 2 * time.Second, 2 * time.Second},
	} {
		p := Hedged(Options{Rand: seeded(7), HedgeAfter: tc.after})
		p.Next(Attempt{N: 1, Cause: CauseInitial})
		d := p.Next(Attempt{N: 1, PrevPort: 900, Cause: tc.cause})
		if d.Port != 900 || d.HedgePort == 900 || d.HedgeAfter != tc.want {
			t.Errorf("after %v (HedgeAfter %v): %+v; want port 900 kept, a fresh port after %v", tc.cause, tc.after, d, tc.want)
		}
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

func TestFreshMakesAPolicyOfTheSameKind(t *testing.T) {
	o := Options{MinPort: 700, MaxPort: 710}
	for _, p := range []Policy{SameReservedPort(o), NewReservedPort(o), Ephemeral(o), Hedged(o)} {
		f := Fresh(p)
		if f == nil || f == p || fmt.Sprintf("%T", f) != fmt.Sprintf("%T", p) {
			t.Errorf("Fresh(%T) = %T (%p, original %p), want a new one of the same kind", p, f, f, p)
			continue
		}
		if d := f.Next(Attempt{N: 1, Cause: CauseInitial}); d.Port != 0 && (d.Port < 700 || d.Port > 710) {
			t.Errorf("Fresh(%T) dials from port %d, outside the original's range", p, d.Port)
		}
	}
	if Fresh(Func(func(Attempt) Decision { return Decision{} })) != nil {
		t.Error("Fresh of a policy of another package is not nil")
	}
}
