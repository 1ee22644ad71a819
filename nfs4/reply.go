package nfs4

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gonfs/nfs/rpc/xdr"
)

// errBadReply marks a reply that breaks the protocol: too many results, a
// result for an operation that was not sent, a truncated or oversized
// field. Every such error wraps it, so errors.Is(err, errBadReply) tells a
// broken server (or connection) from an NFS status.
var errBadReply = errors.New("nfs4: malformed COMPOUND reply")

// reply walks a COMPOUND4res, checking each result against the operation
// sent at the same position:
//
//	var r reply
//	if err := r.init(body, c.ops()); err != nil { ... }
//	if err := r.sequence(&seq); err != nil { ... }
//	if err := r.statusOnly(opPutRootFH); err != nil { ... }
//	if err := r.getattr(&attr); err != nil { ... }
//	if err := r.end(); err != nil { ... }
//
// Each decoder returns nil when the operation succeeded; its Status when it
// failed (the result array stops at the first failure, RFC 8881 §16.2.3);
// or an error wrapping errBadReply when the reply is malformed. The first
// non-nil error is sticky: later calls return it again. Byte slices in
// results alias the reply body and are valid only as long as it is.
//
// A reply is not safe for concurrent use. Its zero value is ready for init.
type reply struct {
	d      xdr.Decoder
	list   *opList
	status Status // the COMPOUND status: that of the last operation evaluated
	count  int    // results in the reply
	next   int    // index of the next result
	failed uint32 // the operation that failed, when status is not OK
	err    error
}

// init reads the COMPOUND4res header from body, the RPC reply's results,
// for a request whose operations are list.
func (r *reply) init(body []byte, list *opList) error {
	*r = reply{list: list}
	if list == nil {
		return r.setErr(errors.New("nfs4: reply init without the request's operations"))
	}
	r.d.Reset(body)
	r.status = Status(r.d.Uint32())
	r.d.Opaque(maxTagLen) // the tag we sent, echoed
	n := r.d.Uint32()
	if err := r.d.Err(); err != nil {
		return r.setErr(fmt.Errorf("%w: header: %w", errBadReply, err))
	}
	if uint64(n) > uint64(list.n) {
		return r.setErr(fmt.Errorf("%w: %d results for %d operations", errBadReply, n, list.n))
	}
	r.count = int(n)
	return nil
}

// setErr records err as the walk's error unless one is recorded already,
// and returns the recorded one.
func (r *reply) setErr(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// begin reads the opcode and status of the next result, which must be for
// op. It returns an error only when the walk cannot go on: an earlier
// failure, a mismatch with the request, or a malformed reply. A failed
// operation is reported through st, with err nil, because some results
// (SETATTR) carry data even then; the caller passes st to done.
func (r *reply) begin(op uint32) (st Status, err error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.list == nil {
		return 0, errors.New("nfs4: reply walked before init")
	}
	i := r.next
	switch {
	case i >= r.list.n:
		return 0, r.setErr(fmt.Errorf("nfs4: asked for a result of %s after all %d operations", opName(op), r.list.n))
	case r.list.ops[i] != op:
		return 0, r.setErr(fmt.Errorf("nfs4: asked for a %s result but operation %d was %s", opName(op), i, opName(r.list.ops[i])))
	case i >= r.count:
		if r.status != OK {
			// The server stopped before this operation (for example with
			// NFS4ERR_MINOR_VERS_MISMATCH and no results at all).
			return 0, r.setErr(r.status)
		}
		return 0, r.setErr(fmt.Errorf("%w: no result for operation %d (%s) though the COMPOUND succeeded", errBadReply, i, opName(op)))
	}
	resop := r.d.Uint32()
	st = Status(r.d.Uint32())
	if err := r.d.Err(); err != nil {
		return 0, r.bad(op, err)
	}
	r.next++
	if resop != op {
		if resop == opIllegal && st != OK {
			// The server does not know the operation we sent; ILLEGAL4res
			// is only a status.
			return 0, r.done(op, st)
		}
		return 0, r.setErr(fmt.Errorf("%w: result %d is for %s, but %s was sent", errBadReply, i, opName(resop), opName(op)))
	}
	return st, nil
}

// done finishes the result begun for op: it checks the decoder and turns a
// failed status into the walk's error. A failed operation must be the last
// result.
func (r *reply) done(op uint32, st Status) error {
	if err := r.d.Err(); err != nil {
		return r.bad(op, err)
	}
	if st == OK {
		return nil
	}
	r.failed = op
	if r.next < r.count {
		return r.setErr(&afterFailureError{op: op, st: st})
	}
	return r.setErr(st)
}

// head begins the result for op and, if the operation failed, ends the
// walk with its status. It is begin for results that carry nothing unless
// the operation succeeded.
func (r *reply) head(op uint32) error {
	st, err := r.begin(op)
	if err != nil {
		return err
	}
	if st != OK {
		return r.done(op, st)
	}
	return nil
}

// bad records a malformed result for op.
func (r *reply) bad(op uint32, err error) error {
	return r.setErr(&resultError{op: op, err: err})
}

// resultError reports a malformed result of one operation. It wraps both
// errBadReply and the decoding error (an xdr error, or a check of ours).
type resultError struct {
	op  uint32
	err error
}

func (e *resultError) Error() string {
	return "nfs4: malformed " + opName(e.op) + " result: " + strings.TrimPrefix(e.err.Error(), "nfs4: ")
}

func (e *resultError) Unwrap() []error { return []error{errBadReply, e.err} }

// end checks that every result was read and nothing follows them. Call it
// after the last decoder when all operations succeeded.
func (r *reply) end() error {
	if r.err != nil {
		return r.err
	}
	if r.next != r.count {
		return r.setErr(fmt.Errorf("nfs4: %d of %d results not read", r.count-r.next, r.count))
	}
	if r.d.Remaining() != 0 {
		return r.setErr(fmt.Errorf("%w: %d bytes after the last result", errBadReply, r.d.Remaining()))
	}
	return nil
}

// statusOnly reads the result of an operation whose result is just its
// status: PUTFH, PUTROOTFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP,
// DELEGRETURN, FREE_STATEID, DESTROY_SESSION, DESTROY_CLIENTID,
// RECLAIM_COMPLETE, NFSv4.0's SETCLIENTID_CONFIRM and RENEW, and
// NFSv4.2's ALLOCATE, DEALLOCATE and CLONE.
func (r *reply) statusOnly(op uint32) error {
	switch op {
	case opPutFH, opPutRootFH, opPutPubFH, opSaveFH, opRestoreFH, opLookup,
		opLookupP, opDelegReturn, opFreeStateID, opDestroySession,
		opDestroyClientID, opReclaimComplete, opSetClientIDConfirm, opRenew,
		opAllocate, opDeallocate, opClone:
	default:
		return r.setErr(fmt.Errorf("nfs4: %s result carries more than a status", opName(op)))
	}
	st, err := r.begin(op)
	if err != nil {
		return err
	}
	return r.done(op, st)
}

// decodeStateID reads a stateid4.
func decodeStateID(d *xdr.Decoder, s *stateID) {
	s.seqid = d.Uint32()
	copy(s.other[:], d.FixedOpaque(otherSize))
}

// decodeChangeInfo reads a change_info4.
func decodeChangeInfo(d *xdr.Decoder, c *changeInfo) {
	c.atomic = d.Bool()
	c.before = d.Uint64()
	c.after = d.Uint64()
}

// afterFailureError reports results that continue past a failed operation,
// which the protocol forbids. It wraps errBadReply and the operation's
// status, so the status still answers errors.Is.
type afterFailureError struct {
	op uint32
	st Status
}

func (e *afterFailureError) Error() string {
	return "nfs4: malformed COMPOUND reply: results continue after " + opName(e.op) + " failed with " + e.st.String()
}

func (e *afterFailureError) Unwrap() []error { return []error{errBadReply, e.st} }
