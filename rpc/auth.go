package rpc

import (
	"fmt"
	"os"
	"slices"

	"github.com/gonfs/nfs/rpc/xdr"
)

// Auth produces the credential and verifier of each call and checks the
// verifier of each accepted reply. Implementations must be safe for
// concurrent use: a client calls them from many goroutines at once.
type Auth interface {
	// AppendCredVerf appends the call's credential and verifier (two
	// opaque_auth) to e. hdr holds the call header encoded so far, from
	// the xid through the procedure number, for flavors whose verifier
	// signs it (RPCSEC_GSS). hdr aliases e's buffer: it must not be
	// retained, and it is not updated as e grows.
	AppendCredVerf(e *xdr.Encoder, hdr []byte)
	// Verify checks the verifier of an accepted reply and returns nil if
	// it is acceptable. verf.Body aliases the received message and must
	// not be retained.
	Verify(verf OpaqueAuth) error
	// Flavor returns the flavor of the credentials it sends, such as
	// AuthFlavorSys: what a server's list of accepted flavors (NFSv4
	// SECINFO) is checked against.
	Flavor() uint32
}

// AuthNone is the AUTH_NONE flavor: empty credential and verifier. Its
// Verify accepts any AUTH_NONE verifier and rejects every other flavor with
// an error wrapping ErrVerifier: a server that answers an unauthenticated
// call with, say, an RPCSEC_GSS verifier is not answering this call. The
// body of an AUTH_NONE verifier is meant to be empty; it is ignored.
// AuthNone is safe for concurrent use.
var AuthNone Auth = noneAuth{}

type noneAuth struct{}

// noneCredVerf is an AUTH_NONE credential followed by an AUTH_NONE verifier.
var noneCredVerf = [16]byte{}

func (noneAuth) AppendCredVerf(e *xdr.Encoder, _ []byte) { e.FixedOpaque(noneCredVerf[:]) }

// Flavor returns AuthFlavorNone.
func (noneAuth) Flavor() uint32 { return AuthFlavorNone }

func (noneAuth) Verify(verf OpaqueAuth) error {
	if verf.Flavor == AuthFlavorNone {
		return nil
	}
	return verifierError(verf.Flavor, "AUTH_NONE")
}

func verifierError(got uint32, sent string) error {
	return fmt.Errorf("%w: %s verifier in reply to an %s call", ErrVerifier, flavorName(got), sent)
}

// Limits on an AUTH_SYS credential (RFC 5531 appendix A).
const (
	// MaxSysGIDs is the most supplementary groups an AUTH_SYS credential
	// carries. Servers that need more look the user's groups up themselves
	// (for example rpc.mountd --manage-gids on Linux).
	MaxSysGIDs = 16
	// MaxMachineName is the longest machine name, in bytes.
	MaxMachineName = 255
)

// SysCred is the body of an AUTH_SYS credential.
type SysCred struct {
	// Stamp is an arbitrary number the caller may use to tell its
	// credentials apart; servers ignore it. The Linux client uses a per-boot
	// value. Zero is fine; this package leaves it to the caller.
	Stamp uint32
	// Machine is the client's host name, at most MaxMachineName bytes.
	Machine string
	// UID and GID are the caller's user and primary group.
	UID, GID uint32
	// GIDs are the supplementary groups, at most MaxSysGIDs of them.
	GIDs []uint32
}

// ProcessCred returns the AUTH_SYS credential of the calling process: its
// host name (cut to MaxMachineName bytes), uid, gid, and supplementary
// groups other than the gid (the first MaxSysGIDs of them). NewAuthSys
// accepts it as it is:
//
//	auth, err := rpc.NewAuthSys(rpc.ProcessCred())
func ProcessCred() SysCred {
	host, _ := os.Hostname()
	if len(host) > MaxMachineName {
		host = host[:MaxMachineName]
	}
	groups, _ := os.Getgroups()
	var gids []uint32
	for _, g := range groups {
		if len(gids) == MaxSysGIDs {
			break
		}
		if g != os.Getgid() {
			gids = append(gids, uint32(g))
		}
	}
	return SysCred{Machine: host, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), GIDs: gids}
}

// AuthSys is the AUTH_SYS flavor: the client asserts a uid, gid and groups,
// and the server trusts it. The credential is encoded once, by NewAuthSys,
// so that AppendCredVerf only copies bytes and never allocates.
//
// Verify accepts AUTH_NONE verifiers, which RFC 5531 says servers should
// send, and also AUTH_SHORT and AUTH_SYS ones, which some servers send; the
// body is ignored, so an AUTH_SHORT shorthand is never used in later calls.
// Other flavors are rejected with an error wrapping ErrVerifier.
//
// An AuthSys is immutable after NewAuthSys and safe for concurrent use.
type AuthSys struct {
	cred SysCred
	enc  []byte // credential and AUTH_NONE verifier, XDR-encoded
}

// NewAuthSys checks c against the AUTH_SYS limits and encodes it. It
// returns an error wrapping ErrSysCred if c has more than MaxSysGIDs groups
// or a machine name longer than MaxMachineName bytes. c.GIDs is copied.
func NewAuthSys(c SysCred) (*AuthSys, error) {
	if len(c.GIDs) > MaxSysGIDs {
		return nil, fmt.Errorf("%w: %d supplementary groups, at most %d allowed",
			ErrSysCred, len(c.GIDs), MaxSysGIDs)
	}
	if len(c.Machine) > MaxMachineName {
		return nil, fmt.Errorf("%w: machine name is %d bytes, at most %d allowed",
			ErrSysCred, len(c.Machine), MaxMachineName)
	}
	c.GIDs = slices.Clone(c.GIDs)

	var e xdr.Encoder
	e.Uint32(AuthFlavorSys)
	lenOff := e.Reserve(4)
	e.Uint32(c.Stamp)
	e.String(c.Machine)
	e.Uint32(c.UID)
	e.Uint32(c.GID)
	e.Uint32(uint32(len(c.GIDs)))
	for _, g := range c.GIDs {
		e.Uint32(g)
	}
	e.PutUint32(lenOff, uint32(e.Len()-lenOff-4))
	e.Uint32(AuthFlavorNone) // verifier
	e.Uint32(0)
	return &AuthSys{cred: c, enc: e.Bytes()}, nil
}

// Cred returns a copy of the credential a was made from.
func (a *AuthSys) Cred() SysCred {
	c := a.cred
	c.GIDs = slices.Clone(c.GIDs)
	return c
}

// AppendCredVerf appends the AUTH_SYS credential and an AUTH_NONE verifier.
func (a *AuthSys) AppendCredVerf(e *xdr.Encoder, _ []byte) {
	// enc is a whole number of XDR units, so FixedOpaque adds no padding.
	e.FixedOpaque(a.enc)
}

// Flavor returns AuthFlavorSys.
func (a *AuthSys) Flavor() uint32 { return AuthFlavorSys }

// Verify accepts AUTH_NONE, AUTH_SHORT and AUTH_SYS verifiers (see AuthSys).
func (a *AuthSys) Verify(verf OpaqueAuth) error {
	switch verf.Flavor {
	case AuthFlavorNone, AuthFlavorShort, AuthFlavorSys:
		return nil
	}
	return verifierError(verf.Flavor, "AUTH_SYS")
}
