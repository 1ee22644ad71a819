package lab

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gonfs/nfs/internal/netlab"
)

// dnsServer is the name server of a lab network: it answers A queries for
// one name with the address it holds now, with a TTL of 0, so that every
// lookup sees a move at once (a cloud file system's mount target
// re-created elsewhere, a DNS failover). Other names get NXDOMAIN, other
// types of the name no records.
type dnsServer struct {
	pc   net.PacketConn
	name string // lower case, without the final dot
	wg   sync.WaitGroup

	mu sync.Mutex
	ip netip.Addr
}

// startDNS starts a dnsServer on addr (port 53) in ns, answering name with
// ip; it stops when the test ends.
func startDNS(t *testing.T, ns *netlab.NS, addr, name, ip string) *dnsServer {
	t.Helper()
	pc, err := ns.ListenPacket(addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{pc: pc, name: strings.ToLower(name), ip: netip.MustParseAddr(ip)}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() {
		pc.Close()
		d.wg.Wait()
	})
	return d
}

// set points the name at ip.
func (d *dnsServer) set(ip string) {
	d.mu.Lock()
	d.ip = netip.MustParseAddr(ip)
	d.mu.Unlock()
}

// serve answers queries until the socket is closed.
func (d *dnsServer) serve() {
	defer d.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.pc.WriteTo(resp, from) // a lost answer is retried by the resolver
		}
	}
}

// DNS wire constants (RFC 1035).
const (
	dnsHeaderLen = 12
	dnsTypeA     = 1
	dnsClassIN   = 1
)

// answer returns the response to the query q, or nil for a malformed one.
func (d *dnsServer) answer(q []byte) []byte {
	if len(q) < dnsHeaderLen || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil // short, a response, or not one question
	}
	// The question: labels up to the root, then type and class.
	var labels []string
	i := dnsHeaderLen
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil // a pointer or too long: not in a query
		}
		labels = append(labels, strings.ToLower(string(q[i:i+l])))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype, qclass := binary.BigEndian.Uint16(q[i:]), binary.BigEndian.Uint16(q[i+2:])
	question := q[dnsHeaderLen : i+4]

	resp := make([]byte, dnsHeaderLen, dnsHeaderLen+len(question)+16)
	copy(resp, q[:2])                       // ID
	resp[2] = 0x84 | q[2]&0x01              // a response, authoritative; RD as asked
	binary.BigEndian.PutUint16(resp[4:], 1) // the question, echoed
	resp = append(resp, question...)
	switch {
	case strings.Join(labels, ".") != d.name:
		resp[3] = 3 // NXDOMAIN
	case qtype == dnsTypeA && qclass == dnsClassIN:
		d.mu.Lock()
		ip := d.ip.As4()
		d.mu.Unlock()
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, dnsHeaderLen) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, dnsTypeA)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, 4)
		resp = append(resp, ip[:]...)
	}
	return resp
}
