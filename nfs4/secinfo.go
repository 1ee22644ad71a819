package nfs4

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"

	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// Security flavors a server accepts: SECINFO (RFC 8881 §18.29), asked by
// Client.SecInfo, and SECINFO_NO_NAME on the root, which Dial asks to check
// the flavor it was given.

// SecFlavor is one security flavor a server accepts for a file: AUTH_SYS,
// AUTH_NONE, or RPCSEC_GSS with a mechanism and a service.
type SecFlavor struct {
	// Flavor is the RPC authentication flavor: rpc.AuthFlavorSys,
	// rpc.AuthFlavorNone or rpc.AuthFlavorGSS.
	Flavor uint32
	// Mechanism is the GSS mechanism's OID (DER, without tag and length;
	// Kerberos V5: 2a 86 48 86 f7 12 01 02 02), for RPCSEC_GSS only.
	Mechanism []byte
	// Service is the RPCSEC_GSS service, for RPCSEC_GSS only.
	Service rpc.GSSService
}

// String names f as mount(8)'s sec= option does: "sys", "none", "krb5",
// "krb5i" or "krb5p".
func (f SecFlavor) String() string {
	return secinfo{flavor: f.Flavor, oid: f.Mechanism, service: uint32(f.Service)}.String()
}

// Accepts reports whether f is the flavor auth sends: for RPCSEC_GSS, with
// the same mechanism and service.
func (f SecFlavor) Accepts(auth rpc.Auth) bool {
	return secinfo{flavor: f.Flavor, oid: f.Mechanism, service: uint32(f.Service)}.accepts(auth)
}

// SecInfo returns the security flavors the server accepts for name, in
// its order of preference (SECINFO on name's directory): for an export's
// path, what the export takes. A server answers whatever flavor asks; a
// client that is refused with ErrWrongSec under one flavor learns here
// which to use (mount's sec= names them as SecFlavor.String does).
func (c *Client) SecInfo(ctx context.Context, name string) ([]SecFlavor, error) {
	dir, base, err := c.lookupParent(ctx, name)
	if err != nil {
		return nil, &fs.PathError{Op: "secinfo", Path: name, Err: err}
	}
	var res secinfoRes
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putfh(dir); cmp.secinfo(base) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.secinfo(&res)
		},
	})
	if err != nil {
		return nil, &fs.PathError{Op: "secinfo", Path: name, Err: err}
	}
	out := make([]SecFlavor, res.n)
	for i, s := range res.flavors[:res.n] {
		out[i] = SecFlavor{Flavor: s.flavor, Mechanism: bytes.Clone(s.oid), Service: rpc.GSSService(s.service)}
	}
	return out, nil
}

// secinfo adds SECINFO of name in the current directory. It consumes
// the current file handle (RFC 8881 §2.6.3.1.1.8).
func (c *compound) secinfo(name string) {
	if c.op(opSecinfo) {
		c.e.String(name)
	}
}

// secinfo reads a SECINFO result into res; an RPCSEC_GSS entry's oid
// aliases the reply.
func (r *reply) secinfo(res *secinfoRes) error {
	if err := r.head(opSecinfo); err != nil {
		return err
	}
	readSecinfo(&r.d, res)
	return r.done(opSecinfo, OK)
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

// secinfoNoName reads a SECINFO_NO_NAME result into res; an RPCSEC_GSS
// entry's oid aliases the reply.
func (r *reply) secinfoNoName(res *secinfoRes) error {
	if err := r.head(opSecinfoNoName); err != nil {
		return err
	}
	readSecinfo(&r.d, res)
	return r.done(opSecinfoNoName, OK)
}

// readSecinfo reads a SECINFO4resok into res; nothing if it is malformed.
func readSecinfo(d *xdr.Decoder, res *secinfoRes) {
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
}
