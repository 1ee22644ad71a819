package policy

import "net/netip"

// DefaultAddr is the server address the stock policies dial, and the one
// a transport dials when a policy leaves Decision.Addr zero:
//
//   - the address of the last connection (a.PrevAddr), for the first
//     attempt after it was lost (a.N == 1), as long as it is among
//     a.Addrs: the path to it was working, and against NFSv3 or NFSv4.0
//     its duplicate request cache matches replays only there;
//   - the address just tried (a.LastAddr) again after a local failure
//     (CauseAddrInUse, CausePermission), which says nothing about it;
//   - otherwise the address after a.LastAddr in a.Addrs, round the list,
//     so that each failed attempt moves on to the next address;
//   - a.Addrs[0] when none of these applies (the first dial).
//
// With one address it always returns that one. It returns the zero
// AddrPort only if a.Addrs is empty.
func DefaultAddr(a Attempt) netip.AddrPort {
	if len(a.Addrs) == 0 {
		return netip.AddrPort{}
	}
	if a.N <= 1 && a.PrevAddr.IsValid() && indexAddr(a.Addrs, a.PrevAddr) >= 0 {
		return a.PrevAddr
	}
	i := indexAddr(a.Addrs, a.LastAddr)
	switch {
	case i < 0:
		return a.Addrs[0]
	case a.Cause == CauseAddrInUse || a.Cause == CausePermission:
		return a.LastAddr
	}
	return a.Addrs[(i+1)%len(a.Addrs)]
}

// NextAddr returns the address after addr in addrs, round the list: a
// second address to race the first with. It returns addr itself if addrs
// holds no other, and addrs[0] if addr is not among them.
func NextAddr(addrs []netip.AddrPort, addr netip.AddrPort) netip.AddrPort {
	if len(addrs) == 0 {
		return addr
	}
	i := indexAddr(addrs, addr)
	return addrs[(i+1)%len(addrs)]
}

// indexAddr returns the index of addr in addrs, or -1.
func indexAddr(addrs []netip.AddrPort, addr netip.AddrPort) int {
	for i, x := range addrs {
		if x == addr {
			return i
		}
	}
	return -1
}
