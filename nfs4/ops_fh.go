package nfs4

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gonfs/nfs/rpc"
)

// File handle and attribute operations: PUTFH, PUTROOTFH, GETFH, SAVEFH,
// RESTOREFH, LOOKUP, LOOKUPP, GETATTR, SETATTR, ACCESS, SECINFO_NO_NAME
// (RFC 8881 §18).

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

// secinfoNoName adds SECINFO_NO_NAME with style SECINFO_STYLE4_*. On
// success it consumes the current file handle.
func (c *compound) secinfoNoName(style uint32) {
	if c.op(opSecinfoNoName) {
		c.e.Uint32(style)
	}
}

// maxSecinfo bounds the security flavors accepted in a SECINFO reply.
const maxSecinfo = 16

// maxOIDLen bounds an RPCSEC_GSS mechanism OID.
const maxOIDLen = 128

// secinfo is one secinfo4: a flavor and, for RPCSEC_GSS, its mechanism
// (oid aliases the reply), quality of protection and service.
type secinfo struct {
	flavor  uint32
	oid     []byte
	qop     uint32
	service uint32 // RPC_GSS_SVC_*
}

// krb5OID is the Kerberos V5 mechanism's OID, DER without tag and length.
var krb5OID = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// accepts reports whether s is the flavor auth sends: for RPCSEC_GSS, the
// same mechanism and service too.
func (s secinfo) accepts(auth rpc.Auth) bool {
	if s.flavor != auth.Flavor() {
		return false
	}
	g, ok := auth.(*rpc.GSSAuth)
	return !ok || bytes.Equal(s.oid, g.Mechanism().OID()) && s.service == uint32(g.Service())
}

// String names s as mount(8)'s sec= option does: "sys", "none", "krb5",
// "krb5i", "krb5p".
func (s secinfo) String() string {
	switch s.flavor {
	case rpc.AuthFlavorSys:
		return "sys"
	case rpc.AuthFlavorNone:
		return "none"
	case rpc.AuthFlavorGSS:
		if bytes.Equal(s.oid, krb5OID) {
			return rpc.GSSService(s.service).String()
		}
		return fmt.Sprintf("RPCSEC_GSS mechanism %x service %d", s.oid, s.service)
	}
	return fmt.Sprintf("flavor %d", s.flavor)
}

// secName names the flavor auth sends, as secinfo.String does.
func secName(auth rpc.Auth) string {
	s := secinfo{flavor: auth.Flavor()}
	if g, ok := auth.(*rpc.GSSAuth); ok {
		s.oid, s.service = g.Mechanism().OID(), uint32(g.Service())
	}
	return s.String()
}

// secinfoRes is a SECINFO4resok: the flavors in the server's order of
// preference.
type secinfoRes struct {
	n       int
	flavors [maxSecinfo]secinfo
}

// secinfoNoName reads a SECINFO_NO_NAME result into res.
func (r *reply) secinfoNoName(res *secinfoRes) error {
	if err := r.head(opSecinfoNoName); err != nil {
		return err
	}
	d := &r.d
	res.n = d.Count(maxSecinfo, 4)
	for i := 0; i < res.n; i++ {
		s := &res.flavors[i]
		*s = secinfo{flavor: d.Uint32()}
		if s.flavor == rpc.AuthFlavorGSS {
			s.oid = d.Opaque(maxOIDLen)
			s.qop = d.Uint32()
			s.service = d.Uint32()
		}
	}
	if d.Err() != nil {
		res.n = 0
	}
	return r.done(opSecinfoNoName, OK)
}
