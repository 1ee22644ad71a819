package rpc

import "github.com/gonfs/nfs/rpc/xdr"

// A PayloadReceiver is a call's results that take one bulk opaque of the
// reply, a READ's data, straight from the connection into a buffer of
// their own instead of through the reply's buffer and a copy. The reader
// of the connection calls LocatePayload with the start of the results of
// an accepted, successful reply (at most a kilobyte, or less if the reply
// is shorter): it returns the offset in results of the opaque's length
// word and the buffer for its data, or ok false to have the reply read
// whole. Data that does not fit dst, or does not arrive in one piece (one
// record fragment), is left in the reply. UnmarshalXDR then decodes that
// opaque with xdr.Decoder.Payload, which returns dst's part.
//
// LocatePayload runs on the connection's reader goroutine, whatever the
// server sent: it must not block, and must not trust results. It is not
// asked for RPCSEC_GSS calls, whose replies are checked whole.
type PayloadReceiver interface {
	LocatePayload(results []byte) (at int, dst []byte, ok bool)
}

// resultsAt returns where the results begin in head, the start of a
// reply, if it is an accepted reply with accept_stat SUCCESS (RFC 5531
// §9); the verifier is not checked here, but by the decoding of the reply.
func resultsAt(head []byte) (int, bool) {
	var d xdr.Decoder
	d.Reset(head)
	d.Uint32() // xid
	mtype, rstat := d.Uint32(), d.Uint32()
	d.Uint32() // verifier's flavor
	d.Opaque(MaxAuthBody)
	stat := d.Uint32()
	if d.Err() != nil || mtype != msgReply || rstat != msgAccepted || AcceptStat(stat) != Success {
		return 0, false
	}
	return d.Offset(), true
}
