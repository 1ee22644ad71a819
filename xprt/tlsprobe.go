package xprt

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The AUTH_TLS probe of RFC 9289, section 4.1: before the TLS handshake the
// client sends, as an ordinary record-marked RPC on the new TCP connection,
// a NULL call whose credential has flavor AUTH_TLS (7) and an empty body,
// with an AUTH_NONE verifier. A server that offers RPC-over-TLS accepts it
// with an AUTH_NONE verifier whose body is the eight bytes "STARTTLS"; the
// next bytes on the connection are then the TLS handshake. Any other
// answer means the server does not offer TLS on this connection.
//
// This package otherwise knows nothing of ONC RPC; the probe is the one
// message it builds and parses itself, because it belongs to the life of
// the connection (every new connection probes before the RPC client gets
// it), not to the calls on it.
const (
	authNone = 0
	authTLS  = 7

	// maxProbeReply bounds the reply to the probe: a NULL reply is 24
	// bytes plus its verifier, whose body RFC 5531 bounds at 400 bytes.
	maxProbeReply = 1024
	// maxProbeFragments bounds the record fragments of the reply.
	maxProbeFragments = 8
)

// startTLS is the verifier body that accepts the probe.
var startTLS = [8]byte{'S', 'T', 'A', 'R', 'T', 'T', 'L', 'S'}

// probeLen is the length of the probe record, marker included.
const probeLen = 4 + 40

// appendProbe appends the probe, one complete record, for program prog
// version vers with transaction id xid.
func appendProbe(b []byte, xid, prog, vers uint32) []byte {
	for _, v := range [...]uint32{
		0x80000000 | 40, // record marker: last fragment, 40 bytes
		xid,
		0, // CALL
		2, // RPC version
		prog,
		vers,
		0,          // NULL procedure
		authTLS, 0, // credential: AUTH_TLS, empty body
		authNone, 0, // verifier: AUTH_NONE, empty body
	} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// ProbeReplyError is a reply to the AUTH_TLS probe that does not offer TLS
// (it matches ErrTLSNotOffered), or one that is not a well-formed reply at
// all.
type ProbeReplyError struct {
	// Reason says what the reply was, e.g. "denied (auth_stat 1)".
	Reason string
	// Malformed is true when the bytes were not an RPC reply to the
	// probe; false when they were a valid reply without STARTTLS.
	Malformed bool
}

func (e *ProbeReplyError) Error() string {
	if e.Malformed {
		return "xprt: malformed reply to the AUTH_TLS probe: " + e.Reason
	}
	return "xprt: the server does not offer RPC-over-TLS (RFC 9289): its reply to the AUTH_TLS probe is " + e.Reason
}

// Is makes a well-formed refusal match ErrTLSNotOffered.
func (e *ProbeReplyError) Is(target error) bool {
	return target == ErrTLSNotOffered && !e.Malformed
}

// readProbeReply reads one record (at most maxProbeReply bytes over at most
// maxProbeFragments fragments) from r into buf and returns it.
func readProbeReply(r io.Reader, buf []byte) ([]byte, error) {
	rec := buf[:0]
	var hdr [4]byte
	for i := 0; i < maxProbeFragments; i++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		m := binary.BigEndian.Uint32(hdr[:])
		n := int(m & 0x7fffffff)
		if len(rec)+n > maxProbeReply {
			return nil, &ProbeReplyError{Reason: fmt.Sprintf("record longer than %d bytes", maxProbeReply), Malformed: true}
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if m&0x80000000 != 0 {
			return rec, nil
		}
	}
	return nil, &ProbeReplyError{Reason: fmt.Sprintf("more than %d record fragments", maxProbeFragments), Malformed: true}
}

// parseProbeReply checks rec, one RPC record, as the reply to a probe with
// transaction id xid. It returns nil if the server answered STARTTLS, a
// *ProbeReplyError otherwise. A reply with another XID is malformed, not
// skipped: nothing else is in flight on a connection not yet handed out.
// It never panics, whatever rec holds.
func parseProbeReply(rec []byte, xid uint32) error {
	p := rec
	word := func() (uint32, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(p)
		p = p[4:]
		return v, true
	}
	short := &ProbeReplyError{Reason: fmt.Sprintf("truncated (%d bytes)", len(rec)), Malformed: true}
	gotXID, ok1 := word()
	mtype, ok2 := word()
	stat, ok3 := word()
	if !ok1 || !ok2 || !ok3 {
		return short
	}
	if gotXID != xid || mtype != 1 {
		return &ProbeReplyError{Reason: fmt.Sprintf("not the reply to the probe (xid %#x, message type %d)", gotXID, mtype), Malformed: true}
	}
	switch stat {
	case 0: // MSG_ACCEPTED
	case 1: // MSG_DENIED
		rs, ok := word()
		if !ok {
			return short
		}
		detail, _ := word()
		if rs == 1 { // AUTH_ERROR
			return &ProbeReplyError{Reason: fmt.Sprintf("denied (auth_stat %d)", detail)}
		}
		return &ProbeReplyError{Reason: fmt.Sprintf("denied (reject_stat %d)", rs)}
	default:
		return &ProbeReplyError{Reason: fmt.Sprintf("reply status %d", stat), Malformed: true}
	}
	flavor, ok1 := word()
	n, ok2 := word()
	if !ok1 || !ok2 {
		return short
	}
	if n > 400 || uint64(len(p)) < (uint64(n)+3)&^3 {
		return short
	}
	body := p[:n]
	p = p[(n+3)&^3:]
	accept, ok := word()
	if !ok {
		return short
	}
	if accept != 0 {
		return &ProbeReplyError{Reason: fmt.Sprintf("accepted with accept_stat %d", accept)}
	}
	if flavor != authNone || string(body) != string(startTLS[:]) {
		return &ProbeReplyError{Reason: fmt.Sprintf("accepted without STARTTLS (verifier flavor %d, %d bytes)", flavor, n)}
	}
	return nil
}
