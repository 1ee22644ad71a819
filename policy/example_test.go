package policy_test

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/policy"
)

// A transport asks its policy before every dial. This is the conversation
// SameReservedPort has with one: a first dial, a connection that carried
// data and then broke, and a server that refuses for a while. Here with
// the Linux client's waits (3s, doubling, at most 60s, no jitter) instead
// of the default pacing.
func ExampleSameReservedPort() {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 3 * time.Second
	b.Multiplier = 2
	b.MaxInterval = time.Minute
	b.RandomizationFactor = 0
	b.MaxElapsedTime = 0 // never give up
	p := policy.SameReservedPort(policy.Options{
		BackOff: b,
		Rand:    func(n int) int { return 235 }, // a fixed draw for the example: port 665+235
	})
	d := p.Next(policy.Attempt{N: 1, Cause: policy.CauseInitial})
	fmt.Println("dial from", d.Port, "after", d.Wait)

	p.Reset() // the connection answered a call
	port := d.Port
	for n := 1; n <= 4; n++ {
		cause := policy.CauseRefused
		if n == 1 {
			cause = policy.CauseClosed
		}
		d = p.Next(policy.Attempt{N: n, PrevPort: port, Cause: cause})
		fmt.Println("redial from", d.Port, "after", d.Wait)
	}
	// Output:
	// dial from 900 after 0s
	// redial from 900 after 0s
	// redial from 900 after 3s
	// redial from 900 after 6s
	// redial from 900 after 12s
}

// NewReservedPort takes a new port on every dial. Here with a backoff
// without jitter, so the waits are predictable.
func ExampleNewReservedPort() {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 250 * time.Millisecond
	b.Multiplier = 2
	b.MaxInterval = 30 * time.Second
	b.RandomizationFactor = 0
	b.MaxElapsedTime = 0 // never give up; the library's default is 15 minutes
	b.Reset()

	p := policy.NewReservedPort(policy.Options{
		BackOff: b,
		Rand:    func(n int) int { return 0 }, // always the lowest port allowed
	})
	for n := 1; n <= 4; n++ {
		cause := policy.CauseDialTimeout
		if n == 1 {
			cause = policy.CauseInitial
		}
		d := p.Next(policy.Attempt{N: n, Cause: cause})
		fmt.Println("dial from", d.Port, "after", d.Wait)
	}
	// Output:
	// dial from 665 after 0s
	// dial from 666 after 250ms
	// dial from 667 after 500ms
	// dial from 668 after 1s
}

// Ephemeral always lets the kernel choose the port.
func ExampleEphemeral() {
	p := policy.Ephemeral(policy.Options{})
	d := p.Next(policy.Attempt{N: 1, Cause: policy.CauseInitial})
	fmt.Println("dial from port", d.Port)
	// Output:
	// dial from port 0
}

// Hedged redials from the old port and races a fresh one if the old one
// has not connected within 300ms.
func ExampleHedged() {
	p := policy.Hedged(policy.Options{
		Rand: func(n int) int { return 100 }, // fixed draws for the example
	})
	d := p.Next(policy.Attempt{N: 1, Cause: policy.CauseInitial})
	fmt.Println("dial from", d.Port)

	p.Reset() // the connection answered a call, then the server reset it
	d = p.Next(policy.Attempt{N: 1, PrevPort: d.Port, Cause: policy.CauseReset})
	fmt.Println("redial from", d.Port, "after", d.Wait, "and from", d.HedgePort, "if not connected after", d.HedgeAfter)

	p.Reset() // it answered again, then the path went silent: a stale middlebox, likely
	d = p.Next(policy.Attempt{N: 1, PrevPort: d.Port, Cause: policy.CauseProbeTimeout})
	fmt.Println("redial from", d.Port, "after", d.Wait, "and from", d.HedgePort, "if not connected after", d.HedgeAfter)
	// Output:
	// dial from 765
	// redial from 765 after 0s and from 766 if not connected after 300ms
	// redial from 765 after 0s and from 767 if not connected after 50ms
}

// Func turns a function into a Policy, for rules the stock policies do not
// cover: here, ports from a range a firewall admits, one second apart.
func ExampleFunc() {
	p := policy.Func(func(a policy.Attempt) policy.Decision {
		if a.N > 100 {
			return policy.Decision{GiveUp: true}
		}
		d := policy.Decision{Port: 2000 + a.N%10}
		if a.N > 1 {
			d.Wait = time.Second
		}
		return d
	})
	d := p.Next(policy.Attempt{N: 2, Cause: policy.CauseRefused})
	fmt.Println(d.Wait, d.Port, d.GiveUp)
	// Output:
	// 1s 2002 false
}
