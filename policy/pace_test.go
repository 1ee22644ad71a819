package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/testutil"
)

// reservedPolicies are the policies that choose their own ports.
var reservedPolicies = map[string]func(Options) Policy{
	"SameReservedPort": SameReservedPort,
	"NewReservedPort":  NewReservedPort,
	"Hedged":           Hedged,
}

func TestAddrInUseTakesNoStep(t *testing.T) {
	testutil.CheckLeaks(t)
	s := time.Second
	for name, mk := range reservedPolicies {
		p := mk(Options{Rand: seeded(8), BackOff: steady(s, time.Minute)})
		if d := p.Next(Attempt{N: 1, Cause: CauseInitial}); d.Wait != 0 {
			t.Fatalf("%s: first dial waits %v", name, d.Wait)
		}
		before := p.Next(Attempt{N: 2, Cause: CauseRefused})
		if before.Wait != s {
			t.Fatalf("%s: first failure waits %v, want 1s", name, before.Wait)
		}
		busy := p.Next(Attempt{N: 3, Cause: CauseAddrInUse})
		if busy.Wait != 0 || busy.GiveUp || busy.Port == before.Port || !inRange(busy.Port, DefaultMinPort, DefaultMaxPort) {
			t.Fatalf("%s: port %d busy: %+v, want another reserved port at once", name, before.Port, busy)
		}
		if d := p.Next(Attempt{N: 4, Cause: CauseRefused}); d.Wait != 2*s {
			t.Fatalf("%s: failure after a busy port waits %v, want 2s, the step after 1s", name, d.Wait)
		}
	}
}

func TestSameReservedPortSticksToReplacement(t *testing.T) {
	testutil.CheckLeaks(t)
	p := SameReservedPort(Options{Rand: seeded(9)})
	old := p.Next(Attempt{N: 1, Cause: CauseInitial}).Port
	repl := p.Next(Attempt{N: 2, Cause: CauseAddrInUse}).Port
	if repl == old {
		t.Fatalf("busy port %d chosen again", old)
	}
	p.Reset()
	for i := range 5 {
		if d := p.Next(Attempt{N: i + 1, PrevPort: repl, Cause: CauseClosed}); d.Port != repl {
			t.Fatalf("redial %d from port %d, want the replacement %d", i, d.Port, repl)
		}
	}
}

// The port of the connection just lost, found busy, is the old socket
// still holding its 4-tuple for a moment: SameReservedPort tries it again
// 8 times, 25ms apart, before it gives it up for another.
func TestSameReservedPortWaitsForItsOldPort(t *testing.T) {
	testutil.CheckLeaks(t)
	p := frozen(t, SameReservedPort(Options{Rand: seeded(12)}))
	old := p.Next(Attempt{N: 1, Cause: CauseInitial}).Port
	p.Reset()
	if d := p.Next(Attempt{N: 1, PrevPort: old, Cause: CauseReset}); d.Port != old || d.Wait != 0 {
		t.Fatalf("redial after a reset: %+v, want port %d at once", d, old)
	}
	for i := range samePortRetries {
		if d := p.Next(Attempt{N: i + 2, PrevPort: old, Cause: CauseAddrInUse}); d.Port != old || d.Wait != samePortWait || d.GiveUp {
			t.Fatalf("busy %d: %+v, want port %d again after %v", i+1, d, old, samePortWait)
		}
	}
	d := p.Next(Attempt{N: 99, PrevPort: old, Cause: CauseAddrInUse})
	if d.Port == old || d.Wait != 0 || d.GiveUp {
		t.Fatalf("still busy after %d tries: %+v, want another port at once", samePortRetries, d)
	}
	// A refused dial in between starts the patience afresh.
	p.Reset()
	p.Next(Attempt{N: 1, PrevPort: d.Port, Cause: CauseReset})
	p.Next(Attempt{N: 2, PrevPort: d.Port, Cause: CauseRefused})
	if e := p.Next(Attempt{N: 3, PrevPort: d.Port, Cause: CauseAddrInUse}); e.Port != d.Port || e.Wait != samePortWait {
		t.Fatalf("busy after a refusal: %+v, want port %d again after %v", e, d.Port, samePortWait)
	}
}

func TestHedgedDropsBusyOldPort(t *testing.T) {
	testutil.CheckLeaks(t)
	p := Hedged(Options{Rand: seeded(10), BackOff: steady(time.Second, time.Minute)})
	const old = 900
	if d := p.Next(Attempt{N: 1, PrevPort: old, Cause: CauseClosed}); d.Port != old {
		t.Fatalf("redial from %d, want the old port %d", d.Port, old)
	}
	// The old 4-tuple is busy: tried again 8 times, 25ms apart, still
	// hedged; then a fresh port at once, unhedged, and the old port is not
	// tried again in this outage.
	for i := range samePortRetries {
		if d := p.Next(Attempt{N: 2 + i, PrevPort: old, Cause: CauseAddrInUse}); d.Port != old || d.Wait != samePortWait || d.HedgeAfter == 0 {
			t.Fatalf("old port busy, try %d: %+v, want port %d again after %v, hedged", i+1, d, old, samePortWait)
		}
	}
	d := p.Next(Attempt{N: 2, PrevPort: old, Cause: CauseAddrInUse})
	if d.Port == old || d.Port == 0 || d.HedgeAfter != 0 || d.Wait != 0 {
		t.Fatalf("old port busy: %+v, want a fresh port at once, unhedged", d)
	}
	if d := p.Next(Attempt{N: 3, PrevPort: old, Cause: CauseRefused}); d.Port == old || d.Wait != time.Second {
		t.Fatalf("next round: %+v, want a fresh port after 1s", d)
	}
	// A new connection from another port is kept again.
	p.Reset()
	if d := p.Next(Attempt{N: 1, PrevPort: 901, Cause: CauseClosed}); d.Port != 901 || d.HedgeAfter == 0 {
		t.Fatalf("after a new connection: %+v, want port 901 kept and hedged", d)
	}
}

func TestLocalRetriesAreBounded(t *testing.T) {
	testutil.CheckLeaks(t)
	s := time.Second
	for name, mk := range reservedPolicies {
		p := mk(Options{Rand: seeded(11), BackOff: steady(s, time.Minute)})
		p.Next(Attempt{N: 1, Cause: CauseInitial})
		for i := range maxLocalRetries {
			if d := p.Next(Attempt{N: i + 2, Cause: CauseAddrInUse}); d.Wait != 0 {
				t.Fatalf("%s: busy port %d waits %v, want 0", name, i+1, d.Wait)
			}
		}
		if d := p.Next(Attempt{N: 99, Cause: CauseAddrInUse}); d.Wait != s {
			t.Fatalf("%s: busy port past the limit waits %v, want the first step, 1s", name, d.Wait)
		}
	}
	// With one port there is nothing else to try: pace it.
	p := SameReservedPort(Options{MinPort: 800, MaxPort: 800, BackOff: steady(s, time.Minute)})
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	if d := p.Next(Attempt{N: 2, Cause: CauseAddrInUse}); d.Wait != s || d.Port != 800 {
		t.Fatalf("one-port range, port busy: %+v, want port 800 after 1s", d)
	}
	// Ephemeral asks for port 0 again, which cannot help at once.
	e := Ephemeral(Options{BackOff: steady(s, time.Minute)})
	e.Next(Attempt{N: 1, Cause: CauseInitial})
	if d := e.Next(Attempt{N: 2, Cause: CauseAddrInUse}); d.Wait != s {
		t.Fatalf("Ephemeral, no ephemeral port free: waits %v, want 1s", d.Wait)
	}
}

func TestGiveUpWhenBackOffStops(t *testing.T) {
	testutil.CheckLeaks(t)
	for name, mk := range map[string]func(Options) Policy{
		"SameReservedPort": SameReservedPort, "NewReservedPort": NewReservedPort,
		"Ephemeral": Ephemeral, "Hedged": Hedged,
	} {
		p := mk(Options{BackOff: &backoff.StopBackOff{}})
		if d := p.Next(Attempt{N: 1, Cause: CauseInitial}); d.GiveUp {
			t.Errorf("%s: gives up before the first dial", name)
		}
		if d := p.Next(Attempt{N: 2, Cause: CauseRefused}); !d.GiveUp {
			t.Errorf("%s with StopBackOff: %+v after a failure, want GiveUp", name, d)
		}

		clock := &fakeClock{now: time.Unix(1e9, 0)}
		b := steady(time.Second, time.Minute)
		b.Clock = clock
		b.MaxElapsedTime = 10 * time.Second
		p = mk(Options{BackOff: b})
		p.Next(Attempt{N: 1, Cause: CauseInitial})
		var waited []time.Duration
		for i := range 10 {
			d := p.Next(Attempt{N: i + 2, Cause: CauseDialTimeout})
			if d.GiveUp {
				break
			}
			waited = append(waited, d.Wait)
			clock.now = clock.now.Add(d.Wait)
		}
		if len(waited) != 3 {
			t.Errorf("%s with a 10s limit: waited %v, then want GiveUp after 1s, 2s, 4s", name, waited)
		}
	}
}

func TestElapsedTimeCountsFromTheOutage(t *testing.T) {
	testutil.CheckLeaks(t)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	b := steady(time.Second, time.Minute)
	b.Clock = clock
	b.MaxElapsedTime = time.Minute
	p := NewReservedPort(Options{BackOff: b})
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	p.Reset() // the connection answered a call ...
	clock.now = clock.now.Add(2 * time.Hour)
	// ... for two hours before it broke: the one-minute budget starts now.
	if d := p.Next(Attempt{N: 1, PrevPort: 700, Cause: CauseClosed}); d.Wait != 0 || d.GiveUp {
		t.Fatalf("redial after a long connection: %+v, want at once", d)
	}
	if d := p.Next(Attempt{N: 2, PrevPort: 700, Cause: CauseRefused}); d.GiveUp || d.Wait != time.Second {
		t.Fatalf("first failure of a new outage: %+v, want a 1s step", d)
	}
}

func TestStructLiteralBackOff(t *testing.T) {
	testutil.CheckLeaks(t)
	// Clock and Stop left zero: the policy must neither panic nor read
	// "stop" as "retry at once".
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	b := &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 4 * time.Second}
	p := Ephemeral(Options{BackOff: b})
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	for i, w := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if d := p.Next(Attempt{N: i + 2, Cause: CauseRefused}); d.Wait != w {
			t.Fatalf("failure %d waits %v, want %v", i+1, d.Wait, w)
		}
	}

	lim := &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2,
		MaxInterval: time.Minute, MaxElapsedTime: time.Second, Clock: clock}
	p = Ephemeral(Options{BackOff: lim})
	p.Next(Attempt{N: 1, Cause: CauseInitial})
	clock.now = clock.now.Add(time.Hour)
	if d := p.Next(Attempt{N: 2, Cause: CauseRefused}); !d.GiveUp {
		t.Fatalf("past MaxElapsedTime with a zero Stop: %+v, want GiveUp", d)
	}
}

func TestFunc(t *testing.T) {
	testutil.CheckLeaks(t)
	var seen []Attempt
	var p Policy = Func(func(a Attempt) Decision {
		seen = append(seen, a)
		return Decision{Wait: time.Duration(a.N) * time.Second, Port: 2000 + a.N}
	})
	p.Reset()
	d := p.Next(Attempt{N: 3, PrevPort: 2002, Cause: CauseReset})
	if d.Wait != 3*time.Second || d.Port != 2003 {
		t.Fatalf("Func decided %+v, want the function's answer", d)
	}
	if len(seen) != 1 || seen[0].Cause != CauseReset || seen[0].PrevPort != 2002 {
		t.Fatalf("function saw %+v, want the attempt passed to Next", seen)
	}
}

func TestOptions(t *testing.T) {
	testutil.CheckLeaks(t)
	c := Options{MinPort: 1000}.resolve()
	if c.minPort != 1000 || c.maxPort != DefaultMaxPort || c.avoid != DefaultAvoid || c.hedgeAfter != DefaultHedgeAfter {
		t.Fatalf("resolved %+v, want MinPort 1000 and defaults elsewhere", c)
	}
	for _, o := range []Options{
		{MinPort: 1000, MaxPort: 900},
		{MinPort: 2000},
		{MaxPort: 70000},
		{MinPort: -1},
		{HedgeAfter: -time.Second},
	} {
		func() {
			defer func() {
				r, _ := recover().(string)
				if !strings.HasPrefix(r, "policy: ") {
					t.Errorf("Options %+v: panic %q, want one starting with %q", o, r, "policy: ")
				}
			}()
			Hedged(o)
		}()
	}
}

func TestRandOutOfRangeIsFolded(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, r := range []func(int) int{
		func(int) int { return -7 },
		func(n int) int { return n + 5 },
	} {
		p := NewReservedPort(Options{MinPort: 700, MaxPort: 709, Rand: r})
		for i := range 20 {
			if d := p.Next(Attempt{N: i + 1, Cause: CauseRefused}); !inRange(d.Port, 700, 709) {
				t.Fatalf("port %d outside [700, 709]", d.Port)
			}
		}
	}
}

// FuzzPolicies drives every stock policy through an arbitrary sequence of
// attempts, one per input byte, and checks what a transport relies on: no
// panic, ports in range, no negative waits, and no busy loop (at most
// 1+maxLocalRetries dials in a row without a wait, between Resets). A
// spare asked for with CauseSuspect is answered without a wait and is not
// counted: it is not a redial the policy paces, and the transport asks for
// one at most once per suspicion of a live connection.
//
// Each byte: the low nibble picks the Cause (values past the last Cause
// included), bit 4 says the previous dial connected and answered a call (the
// transport calls Reset and PrevPort becomes that dial's port), bit 5 sets
// ReservedDenied, bit 6 makes PrevPort an ephemeral port instead.
func FuzzPolicies(f *testing.F) {
	testutil.CheckLeaks(f)
	f.Add([]byte{0x00, 0x05, 0x05, 0x05})
	f.Add([]byte{0x00, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07})
	f.Add([]byte{0x00, 0x08, 0x28, 0x28, 0x28, 0x11, 0x07, 0x07})
	f.Add([]byte{0x00, 0x11, 0x11, 0x11, 0x51, 0x67, 0x27, 0x0f, 0xff})
	// Busy ports before and after the free redial of one outage.
	f.Add([]byte{0x00, 0x17, 7, 7, 7, 7, 7, 7, 7, 0x01, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Fuzz(checkScript)
}

// checkScript runs script (see FuzzPolicies) against every stock policy.
func checkScript(t *testing.T, script []byte) {
	if len(script) > 512 {
		script = script[:512]
	}
	for name, mk := range map[string]func(Options) Policy{
		"SameReservedPort": SameReservedPort, "NewReservedPort": NewReservedPort,
		"Ephemeral": Ephemeral, "Hedged": Hedged,
	} {
		lo, hi := 700, 705
		p := mk(Options{MinPort: lo, MaxPort: hi, Rand: seeded(uint64(len(script))), Avoid: 3})
		var last Decision
		prev, n, zeros := 0, 0, 0
		for i, op := range script {
			cause := Cause(op & 0x0f)
			if i == 0 {
				cause = CauseInitial
			}
			if op&0x10 != 0 && i > 0 {
				p.Reset()
				prev, n, zeros = last.Port, 0, 0
				if op&0x40 != 0 {
					prev = 40000 + i
				}
			}
			n++
			a := Attempt{N: n, PrevPort: prev, Cause: cause, ReservedDenied: op&0x20 != 0}
			d := p.Next(a)
			if d.GiveUp {
				continue
			}
			ok := func(port int) bool { return port == 0 || port == prev || port >= lo && port <= hi }
			if !ok(d.Port) || !ok(d.HedgePort) || d.Wait < 0 || d.HedgeAfter < 0 {
				t.Fatalf("%s, step %d, %+v: bad decision %+v", name, i, a, d)
			}
			if cause == CauseSuspect {
				if d.Wait != 0 {
					t.Fatalf("%s, step %d: a spare waits %v", name, i, d.Wait)
				}
				continue
			}
			if d.Wait == 0 {
				zeros++
			} else {
				zeros = 0
			}
			if zeros > 1+maxLocalRetries {
				t.Fatalf("%s, step %d: %d dials in a row without a wait", name, i, zeros)
			}
			if d.Wait > time.Minute {
				t.Fatalf("%s, step %d: waits %v, beyond every default cap", name, i, d.Wait)
			}
			last = d
		}
	}
}
