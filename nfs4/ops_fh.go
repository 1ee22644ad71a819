package nfs4

import (
	"errors"
)

// File handle and attribute operations: PUTFH, PUTROOTFH, GETFH, SAVEFH,
// RESTOREFH, LOOKUP, LOOKUPP, GETATTR, SETATTR, ACCESS (RFC 8881 §18).
// SECINFO and SECINFO_NO_NAME are in secinfo.go.

// putfh adds PUTFH; its result is statusOnly.
func (c *compound) putfh(fh []byte) {
	if c.checkFH(fh) && c.op(opPutFH) {
		c.e.Opaque(fh)
	}
}

// putrootfh adds PUTROOTFH; its result is statusOnly.
func (c *compound) putrootfh() { c.op(opPutRootFH) }

// savefh adds SAVEFH; its result is statusOnly.
func (c *compound) savefh() { c.op(opSaveFH) }

// restorefh adds RESTOREFH; its result is statusOnly.
func (c *compound) restorefh() { c.op(opRestoreFH) }

// lookup adds LOOKUP of one name; its result is statusOnly.
func (c *compound) lookup(name string) {
	if c.checkNames(name) && c.op(opLookup) {
		c.e.String(name)
	}
}

// lookupp adds LOOKUPP (the parent directory); its result is statusOnly.
func (c *compound) lookupp() { c.op(opLookupP) }

// getfh adds GETFH.
func (c *compound) getfh() { c.op(opGetFH) }

var errEmptyFH = errors.New("nfs4: empty file handle")

// getfh reads a GETFH result: the current file handle, aliasing the reply.
// The caller copies it to keep it.
func (r *reply) getfh() ([]byte, error) {
	if err := r.head(opGetFH); err != nil {
		return nil, err
	}
	fh := r.d.Opaque(fhMaxSize)
	if r.d.Err() == nil && len(fh) == 0 {
		r.d.SetErr(errEmptyFH)
	}
	if err := r.done(opGetFH, OK); err != nil {
		return nil, err
	}
	return fh, nil
}

// getattr adds GETATTR for the attributes in m.
func (c *compound) getattr(m AttrMask) {
	if c.op(opGetattr) {
		encodeBitmap(c.e, m)
	}
}

// getattr reads a GETATTR result into a, replacing its contents.
func (r *reply) getattr(a *Attr) error {
	if err := r.head(opGetattr); err != nil {
		return err
	}
	decodeFattr(&r.d, a)
	return r.done(opGetattr, OK)
}

// setattr adds SETATTR of the attributes in s. sid is the open stateid
// when the size changes, the anonymous stateid otherwise.
func (c *compound) setattr(sid *stateID, s *sattr) {
	if s == nil {
		c.fail(errors.New("nfs4: SETATTR without attributes"))
		return
	}
	if c.checkSattr(s) && c.op(opSetattr) {
		encodeStateID(c.e, sid)
		encodeFattr(c.e, s)
	}
}

// setattr reads a SETATTR result: the attributes the server set, which it
// reports even when the operation failed (RFC 8881 §18.30), so *set is
// filled in either way.
func (r *reply) setattr(set *AttrMask) error {
	st, err := r.begin(opSetattr)
	if err != nil {
		return err
	}
	var extra bool
	*set, extra = decodeBitmap(&r.d)
	if extra && r.d.Err() == nil {
		r.d.SetErr(errors.New("nfs4: SETATTR set attributes numbered 96 or above"))
	}
	return r.done(opSetattr, st)
}

// access adds ACCESS for the ACCESS4_* bits in mask.
func (c *compound) access(mask uint32) {
	if c.op(opAccess) {
		c.e.Uint32(mask)
	}
}

// accessRes is an ACCESS4resok.
type accessRes struct {
	supported uint32 // the bits the server could check
	access    uint32 // the bits granted
}

// access reads an ACCESS result into res.
func (r *reply) access(res *accessRes) error {
	if err := r.head(opAccess); err != nil {
		return err
	}
	res.supported = r.d.Uint32()
	res.access = r.d.Uint32()
	return r.done(opAccess, OK)
}
