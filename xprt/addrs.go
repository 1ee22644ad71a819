package xprt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Resolver looks up a host name's addresses. *net.Resolver is one;
// net.DefaultResolver is the default (Config.Resolver).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// addrSpec is one "host:port" of Config.Addr and Config.Addrs: a fixed
// address, or a name resolved before every dial attempt.
type addrSpec struct {
	host  string
	port  uint16
	fixed netip.Addr       // valid if host is an IP address
	last  []netip.AddrPort // the name's latest successful resolution
}

// parseAddrs checks Config.Addr and Config.Addrs.
func parseAddrs(first string, more []string) ([]addrSpec, error) {
	specs := make([]addrSpec, 0, 1+len(more))
	for _, s := range append([]string{first}, more...) {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("xprt: server address %q: %w", s, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("xprt: server address %q: the port must be a number from 1 to 65535", s)
		}
		if host == "" {
			return nil, fmt.Errorf("xprt: server address %q has no host", s)
		}
		spec := addrSpec{host: host, port: uint16(p)}
		if ip, err := netip.ParseAddr(host); err == nil {
			spec.fixed = ip.Unmap()
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// resolveTimeout bounds one round of name lookups when the transport has
// no dial timeout.
const resolveTimeout = 10 * time.Second

// maxAddrs bounds the addresses one attempt is offered: a resolver's
// answer is not trusted to be small.
const maxAddrs = 64

// resolve returns the server's addresses for the next dial attempt: each
// fixed address, and each name's addresses looked up now, in the order
// configured and without duplicates. A name whose lookup fails keeps its
// last successful answer; the error is returned only if no address is
// left. Only the supervisor goroutine calls it.
func (t *Transport) resolve() ([]netip.AddrPort, error) {
	var addrs []netip.AddrPort
	var errs []error
	add := func(ap netip.AddrPort) {
		if len(addrs) < maxAddrs && !containsAddr(addrs, ap) {
			addrs = append(addrs, ap)
		}
	}
	for i := range t.specs {
		s := &t.specs[i]
		if s.fixed.IsValid() {
			add(netip.AddrPortFrom(s.fixed, s.port))
			continue
		}
		timeout := t.dialTimeout
		if timeout <= 0 {
			timeout = resolveTimeout
		}
		ctx, cancel := context.WithTimeout(t.ctx, timeout)
		ips, err := t.resolver.LookupNetIP(ctx, "ip", s.host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = fmt.Errorf("xprt: %s has no addresses", s.host)
		}
		if err == nil {
			s.last = s.last[:0]
			for _, ip := range ips {
				if len(s.last) < maxAddrs {
					s.last = append(s.last, netip.AddrPortFrom(ip.Unmap(), s.port))
				}
			}
		} else {
			errs = append(errs, err)
			if len(s.last) > 0 {
				t.log.Warn("xprt: lookup failed; dialing its last addresses", "host", s.host, "err", err)
			}
		}
		for _, ap := range s.last {
			add(ap)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.Join(errs...)
	}
	if k := t.spread % len(addrs); k > 0 {
		addrs = append(addrs[k:], addrs[:k]...)
	}
	return addrs, nil
}

// containsAddr reports whether addrs holds ap.
func containsAddr(addrs []netip.AddrPort, ap netip.AddrPort) bool {
	for _, x := range addrs {
		if x == ap {
			return true
		}
	}
	return false
}

// remoteAddr returns tc's remote address.
func remoteAddr(tc *net.TCPConn) netip.AddrPort {
	if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
