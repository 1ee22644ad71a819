package nfs4

import "fmt"

// NFSv4.2 operations on a file's data (RFC 7862): SEEK (§15.11),
// ALLOCATE (§15.1), DEALLOCATE (§15.4), COPY (§15.2, intra-server and
// synchronous only) and CLONE (§15.13). Each needs a session of minor
// version 2; File's methods in v42.go check that before sending.

// data_content4 (RFC 7862 §15.11): what SEEK looks for.
const (
	contentData = 0 // NFS4_CONTENT_DATA
	contentHole = 1 // NFS4_CONTENT_HOLE
)

// seek adds SEEK from off for data (contentData) or a hole (contentHole).
func (c *compound) seek(sid *stateID, off uint64, what uint32) {
	if c.op(opSeek) {
		encodeStateID(c.e, sid)
		c.e.Uint64(off)
		c.e.Uint32(what)
	}
}

// seekRes is a seek_res4.
type seekRes struct {
	eof bool   // sr_eof: nothing of the kind asked for lies after off
	off uint64 // sr_offset: where the data or hole begins
}

// seek reads a SEEK result into res.
func (r *reply) seek(res *seekRes) error {
	if err := r.head(opSeek); err != nil {
		return err
	}
	res.eof = r.d.Bool()
	res.off = r.d.Uint64()
	return r.done(opSeek, OK)
}

// allocate adds ALLOCATE (reserve space) or, with op opDeallocate,
// DEALLOCATE (punch a hole) of n bytes at off.
func (c *compound) allocate(op uint32, sid *stateID, off, n uint64) {
	if op != opAllocate && op != opDeallocate {
		c.fail(fmt.Errorf("nfs4: %s is not ALLOCATE or DEALLOCATE", opName(op)))
		return
	}
	if c.op(op) {
		encodeStateID(c.e, sid)
		c.e.Uint64(off)
		c.e.Uint64(n)
	}
}

// copyArgs are the arguments of an intra-server COPY (or CLONE, which
// takes the same but ca_consecutive, ca_synchronous and the source
// servers) from the saved filehandle to the current one.
type copyArgs struct {
	src, dst       *stateID
	srcOff, dstOff uint64
	count          uint64 // bytes; 0 means to the end of the source
}

// copyRange adds COPY, synchronous and with no source server (the source
// is the saved filehandle, on this server).
func (c *compound) copyRange(a *copyArgs) {
	if c.op(opCopy) {
		encodeStateID(c.e, a.src)
		encodeStateID(c.e, a.dst)
		c.e.Uint64(a.srcOff)
		c.e.Uint64(a.dstOff)
		c.e.Uint64(a.count)
		c.e.Bool(true) // ca_consecutive
		c.e.Bool(true) // ca_synchronous
		c.e.Uint32(0)  // ca_source_server: none, intra-server
	}
}

// clone adds CLONE.
func (c *compound) clone(a *copyArgs) {
	if c.op(opClone) {
		encodeStateID(c.e, a.src)
		encodeStateID(c.e, a.dst)
		c.e.Uint64(a.srcOff)
		c.e.Uint64(a.dstOff)
		c.e.Uint64(a.count)
	}
}

// copyRes is a COPY4resok: a write_response4 and the copy_requirements4
// the server met. A copy_requirements4 also comes with
// NFS4ERR_OFFLOAD_NO_REQS.
type copyRes struct {
	async       bool     // wr_callback_id present: the server made the copy asynchronous
	callbackID  stateID  // its stateid, for OFFLOAD_CANCEL
	count       uint64   // wr_count: bytes copied
	committed   uint32   // wr_committed: stable_how4
	verf        verifier // wr_writeverf
	consecutive bool     // cr_consecutive
	synchronous bool     // cr_synchronous
}

// copyRange reads a COPY result into res. asked is the number of bytes
// asked for (0: to the end of the source), which a server claiming to have
// copied more sent a malformed reply.
func (r *reply) copyRange(asked uint64, res *copyRes) error {
	st, err := r.begin(opCopy)
	if err != nil {
		return err
	}
	d := &r.d
	switch st {
	case OK:
		switch n := d.Uint32(); n {
		case 0:
		case 1:
			res.async = true
			decodeStateID(d, &res.callbackID)
		default:
			if d.Err() == nil {
				d.SetErr(fmt.Errorf("nfs4: %d callback stateids; want at most 1", n))
			}
		}
		res.count = d.Uint64()
		res.committed = d.Uint32()
		copy(res.verf[:], d.FixedOpaque(verifierSize))
		res.consecutive = d.Bool()
		res.synchronous = d.Bool()
		if d.Err() == nil {
			switch {
			case asked != 0 && res.count > asked:
				d.SetErr(fmt.Errorf("nfs4: server copied %d of %d bytes", res.count, asked))
			case res.committed > fileSync4:
				d.SetErr(fmt.Errorf("nfs4: unknown stable_how4 %d", res.committed))
			}
		}
	case ErrOffloadNoReqs:
		res.consecutive = d.Bool()
		res.synchronous = d.Bool()
	}
	return r.done(opCopy, st)
}
