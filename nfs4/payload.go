package nfs4

import "github.com/gonfs/nfs/rpc/xdr"

// A READ's data goes from the connection straight into the caller's buffer
// (rpc.PayloadReceiver) instead of through the reply's buffer and a copy:
// the connection's reader asks where in the reply the data starts, and the
// answer comes from walking the results before it, whose size is fixed.

// payloadRequest is a request whose last operation's data is read into a
// buffer of its own: READ's.
type payloadRequest interface {
	payloadBuffer() []byte
}

// sequenceResSize is the size of a successful SEQUENCE's result after its
// status: session ID, sequence ID, slot ID, highest and target highest
// slot IDs, status flags.
const sequenceResSize = sessionIDSize + 5*4

// LocatePayload implements rpc.PayloadReceiver: for a request whose
// operations are SEQUENCE (NFSv4.1 and later), PUTFH and READ, and a reply
// in which all of them succeeded, it returns where READ's data length is.
// Anything else, a failed operation or a malformed reply included, is left
// to UnmarshalXDR, which reads the reply whole and says what is wrong.
func (cc *compoundCall) LocatePayload(results []byte) (int, []byte, bool) {
	pr, ok := cc.req.(payloadRequest)
	if !ok {
		return 0, nil, false
	}
	list := cc.cmp.ops()
	var d xdr.Decoder
	d.Reset(results)
	status := d.Uint32()
	d.Opaque(maxTagLen)
	if n := d.Uint32(); d.Err() != nil || Status(status) != OK || uint64(n) != uint64(list.n) {
		return 0, nil, false
	}
	for i, op := range list.ops[:list.n] {
		if d.Uint32() != op || Status(d.Uint32()) != OK {
			return 0, nil, false
		}
		switch {
		case op == opSequence:
			d.Skip(sequenceResSize)
		case op == opPutFH:
		case op == opRead && i == list.n-1:
			d.Bool() // eof
			if d.Err() != nil || d.Remaining() < 4 {
				return 0, nil, false
			}
			return d.Offset(), pr.payloadBuffer(), true
		default:
			return 0, nil, false
		}
	}
	return 0, nil, false
}
