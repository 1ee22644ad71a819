package policy

import (
	"net/netip"
	"testing"
)

func TestDefaultAddr(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:2049")
	b := netip.MustParseAddrPort("10.0.0.2:2049")
	c := netip.MustParseAddrPort("[fd00::3]:2049")
	gone := netip.MustParseAddrPort("10.0.0.9:2049")
	abc := []netip.AddrPort{a, b, c}
	for _, tc := range []struct {
		name string
		at   Attempt
		want netip.AddrPort
	}{
		{"first dial", Attempt{N: 1, Cause: CauseInitial, Addrs: abc}, a},
		{"redial after a loss keeps the address", Attempt{N: 1, Cause: CauseReset, Addrs: abc, PrevAddr: b, LastAddr: b}, b},
		{"a failed redial moves on", Attempt{N: 2, Cause: CauseRefused, Addrs: abc, PrevAddr: b, LastAddr: b}, c},
		{"round the list", Attempt{N: 3, Cause: CauseDialTimeout, Addrs: abc, PrevAddr: b, LastAddr: c}, a},
		{"a busy port keeps the address", Attempt{N: 3, Cause: CauseAddrInUse, Addrs: abc, LastAddr: c}, c},
		{"a denied port keeps the address", Attempt{N: 2, Cause: CausePermission, Addrs: abc, LastAddr: b}, b},
		{"the old address no longer resolves", Attempt{N: 1, Cause: CauseReset, Addrs: abc, PrevAddr: gone, LastAddr: gone}, a},
		{"one address", Attempt{N: 7, Cause: CauseRefused, Addrs: []netip.AddrPort{b}, PrevAddr: b, LastAddr: b}, b},
		{"no addresses", Attempt{N: 1}, netip.AddrPort{}},
	} {
		if got := DefaultAddr(tc.at); got != tc.want {
			t.Errorf("%s: DefaultAddr = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNextAddr(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:2049")
	b := netip.MustParseAddrPort("10.0.0.2:2049")
	if got := NextAddr([]netip.AddrPort{a, b}, b); got != a {
		t.Errorf("NextAddr(a b, b) = %v, want %v", got, a)
	}
	if got := NextAddr([]netip.AddrPort{a}, a); got != a {
		t.Errorf("NextAddr(a, a) = %v, want %v", got, a)
	}
	if got := NextAddr([]netip.AddrPort{a, b}, netip.AddrPort{}); got != a {
		t.Errorf("NextAddr(a b, zero) = %v, want %v", got, a)
	}
}

// TestHedgedRacesTheNextAddress: with several addresses every Hedged dial
// is hedged, its second leg to the next address from another port; with
// one, a first dial is not.
func TestHedgedRacesTheNextAddress(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:2049")
	b := netip.MustParseAddrPort("10.0.0.2:2049")
	p := Hedged(Options{})
	d := p.Next(Attempt{N: 1, Cause: CauseInitial, Addrs: []netip.AddrPort{a, b}})
	if d.HedgeAfter <= 0 || d.HedgeAddr != b || d.HedgePort == d.Port || d.HedgePort == 0 {
		t.Errorf("first dial to two addresses: %+v; want a hedge to %v from another reserved port", d, b)
	}
	if addr := DefaultAddr(Attempt{N: 1, Cause: CauseInitial, Addrs: []netip.AddrPort{a, b}}); addr != a {
		t.Errorf("its first leg goes to %v, want %v", addr, a)
	}
	// A redial after the connection to b was lost: first leg to b from
	// its old port, hedge to a.
	d = p.Next(Attempt{N: 1, Cause: CauseReset, Addrs: []netip.AddrPort{a, b}, PrevAddr: b, LastAddr: b, PrevPort: 800})
	if d.Port != 800 || d.HedgeAddr != a || d.HedgePort == 800 {
		t.Errorf("redial after losing b from port 800: %+v; want port 800 and a hedge to %v from another port", d, a)
	}
	q := Hedged(Options{})
	if d := q.Next(Attempt{N: 1, Cause: CauseInitial, Addrs: []netip.AddrPort{a}}); d.HedgeAfter != 0 || d.HedgeAddr.IsValid() {
		t.Errorf("first dial to one address: %+v; want no hedge", d)
	}
}
