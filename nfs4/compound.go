package nfs4

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gonfs/nfs/rpc/xdr"
)

// maxOps is the most operations one COMPOUND may carry. Servers advertise
// their own limit (ca_maxoperations, often 8–16 for small ones); the
// session layer keeps requests under both.
const maxOps = 16

// stateID is a stateid4: a server-issued handle on open, lock, delegation
// or layout state (RFC 8881 §8.2).
type stateID struct {
	seqid uint32
	other [otherSize]byte
}

// Special stateids (RFC 8881 §8.2.3).
var (
	// anonStateID is the anonymous stateid: I/O without open state.
	anonStateID = stateID{}
	// currentStateID names the stateid set by an earlier operation of the
	// same COMPOUND (OPEN, then READ).
	currentStateID = stateID{seqid: 1}
)

// sessionID is a sessionid4.
type sessionID [sessionIDSize]byte

// verifier is a verifier4: an opaque 8 bytes the server or client uses to
// detect a restart (WRITE, COMMIT, READDIR cookies, EXCHANGE_ID).
type verifier [verifierSize]byte

// changeInfo is a change_info4: a directory's change attribute before and
// after an operation, and whether the pair was taken atomically.
type changeInfo struct {
	atomic        bool
	before, after uint64
}

// opList records the operations of one COMPOUND, in order, so that the
// reply can be checked against the request. It is a fixed array so that
// building a request does not allocate.
type opList struct {
	ops [maxOps]uint32
	n   int
}

// compound builds the COMPOUND4args of one NFSv4.1 request into an
// xdr.Encoder the caller owns:
//
//	var c compound
//	c.begin(&enc, "")
//	c.sequence(&sid, seq, slot, highest, false)
//	c.putrootfh()
//	c.getattr(MaskOf(AttrType, AttrSize))
//	if err := c.finish(); err != nil { ... }
//
// Operation methods record errors (a name too long, too many operations)
// rather than returning them; finish reports the first. After an error the
// encoder holds a partial request that must not be sent. A compound is not
// safe for concurrent use; its zero value is ready for begin.
type compound struct {
	e        *xdr.Encoder
	countOff int // offset of the argarray count, filled in by finish
	list     opList
	err      error
}

var (
	errTooManyOps = fmt.Errorf("nfs4: more than %d operations in one COMPOUND", maxOps)
	errNotBegun   = errors.New("nfs4: COMPOUND operation added before begin")
)

// begin starts a COMPOUND4args: the tag, minor version 1 and a placeholder
// for the operation count. The tag is echoed by the server; it is for
// humans reading packet traces and may be empty.
func (c *compound) begin(e *xdr.Encoder, tag string) { c.beginMinor(e, tag, minorVersion) }

// beginMinor is begin for minor version minor (0, 1 or 2).
func (c *compound) beginMinor(e *xdr.Encoder, tag string, minor uint32) {
	*c = compound{e: e}
	if len(tag) > maxTagLen {
		c.err = fmt.Errorf("nfs4: COMPOUND tag longer than %d bytes", maxTagLen)
		return
	}
	e.String(tag)
	e.Uint32(minor)
	c.countOff = e.Reserve(4)
}

// finish writes the operation count and returns the first error met while
// building, if any.
func (c *compound) finish() error {
	if c.err != nil {
		return c.err
	}
	if c.e == nil {
		return errNotBegun
	}
	c.e.PutUint32(c.countOff, uint32(c.list.n))
	return nil
}

// ops returns the operations added so far, for checking the reply.
func (c *compound) ops() *opList { return &c.list }

// op starts operation op, recording it. It reports false, adding nothing,
// if the request already failed or is full.
func (c *compound) op(op uint32) bool {
	if c.err != nil {
		return false
	}
	if c.e == nil {
		c.err = errNotBegun
		return false
	}
	if c.list.n == maxOps {
		c.err = errTooManyOps
		return false
	}
	c.list.ops[c.list.n] = op
	c.list.n++
	c.e.Uint32(op)
	return true
}

// fail records err as the request's error unless one is recorded already.
func (c *compound) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// checkName reports why name cannot be sent as a component4: empty, "." or
// "..", containing '/' or NUL (wrapping ErrInval or ErrBadName), or longer
// than 255 bytes (wrapping ErrNameTooLong), so that the caller sees the
// Status the server would have returned.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("nfs4: empty file name: %w", ErrInval)
	case len(name) > maxNameLen:
		return fmt.Errorf("nfs4: file name of %d bytes exceeds %d: %w", len(name), maxNameLen, ErrNameTooLong)
	case name == "." || name == "..":
		return fmt.Errorf("nfs4: file name %q: %w", name, ErrBadName)
	case strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("nfs4: file name %q contains '/' or NUL: %w", name, ErrBadName)
	}
	return nil
}

// checkNames records an error for the first unsendable name and reports
// whether all are sendable. Operations check their names before starting,
// so that a bad name adds nothing.
func (c *compound) checkNames(names ...string) bool {
	for _, n := range names {
		if err := checkName(n); err != nil {
			c.fail(err)
			return false
		}
	}
	return c.err == nil
}

// checkFH records an error unless fh is a valid nfs_fh4 (1 to 128 bytes).
func (c *compound) checkFH(fh []byte) bool {
	if len(fh) == 0 || len(fh) > fhMaxSize {
		c.fail(fmt.Errorf("nfs4: file handle of %d bytes; want 1 to %d", len(fh), fhMaxSize))
		return false
	}
	return c.err == nil
}

// checkSattr records an error unless s can be encoded.
func (c *compound) checkSattr(s *sattr) bool {
	if s == nil {
		return c.err == nil
	}
	if err := s.check(); err != nil {
		c.fail(err)
		return false
	}
	return c.err == nil
}

// encodeStateID appends a stateid4.
func encodeStateID(e *xdr.Encoder, s *stateID) {
	e.Uint32(s.seqid)
	e.FixedOpaque(s.other[:])
}
