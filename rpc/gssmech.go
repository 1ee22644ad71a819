package rpc

import (
	"context"
	"strconv"
	"time"
)

// GSSService is the protection RPCSEC_GSS gives each call (RFC 2203
// rpc_gss_service_t); mount(8) spells them sec=krb5, krb5i and krb5p.
type GSSService uint32

// RPCSEC_GSS services.
const (
	// GSSNone authenticates the caller and the server, and protects the
	// header of each message (krb5).
	GSSNone GSSService = 1
	// GSSIntegrity adds a checksum over the arguments and the results of
	// every call (krb5i).
	GSSIntegrity GSSService = 2
	// GSSPrivacy encrypts the arguments and the results as well (krb5p).
	GSSPrivacy GSSService = 3
)

// String returns the name mount(8) gives the service with Kerberos:
// "krb5", "krb5i" or "krb5p".
func (s GSSService) String() string {
	switch s {
	case GSSNone:
		return "krb5"
	case GSSIntegrity:
		return "krb5i"
	case GSSPrivacy:
		return "krb5p"
	}
	return "gss-service-" + strconv.FormatUint(uint64(s), 10)
}

// A GSSMechanism starts the security contexts of RPCSEC_GSS with one server
// as one client principal: the Kerberos V5 mechanism of module
// github.com/gonfs/nfs/krb5 is one. It must be safe for concurrent use.
type GSSMechanism interface {
	// OID returns the mechanism's object identifier, DER-encoded without
	// its tag and length (as NFSv4 SECINFO lists it): for Kerberos V5,
	// 1.2.840.113554.1.2.2, the bytes 2a 86 48 86 f7 12 01 02 02.
	OID() []byte
	// InitContext starts a new context: it returns the context, not yet
	// established, and the token the client sends in RPCSEC_GSS_INIT
	// (for Kerberos, the AP-REQ carrying a service ticket, which it may
	// have to fetch from the KDC within ctx). Each call starts an
	// independent context.
	InitContext(ctx context.Context) (GSSContext, []byte, error)
}

// A GSSContext is one security context between a client and a server, as
// a GSSMechanism started it. Only mechanisms that establish a context in
// one round trip are supported (Kerberos V5 does). After Complete, its
// methods are called from many goroutines at once and must be safe for
// that; they must not retain their arguments.
type GSSContext interface {
	// Complete takes the token of the server's RPCSEC_GSS_INIT reply (for
	// Kerberos with mutual authentication, the AP-REP) and returns nil
	// when the context is established and the server authenticated.
	Complete(token []byte) error
	// AppendMIC appends to dst the checksum token (GSS_GetMIC) of msg.
	AppendMIC(dst, msg []byte) ([]byte, error)
	// VerifyMIC checks that mic is the server's checksum token
	// (GSS_VerifyMIC) of msg.
	VerifyMIC(msg, mic []byte) error
	// AppendWrap appends to dst msg sealed (GSS_Wrap with confidentiality:
	// encrypted and integrity-protected).
	AppendWrap(dst, msg []byte) ([]byte, error)
	// Unwrap opens a token the server sealed (GSS_Unwrap) and appends the
	// message to dst. It fails if the token was not sealed with
	// confidentiality or does not verify.
	Unwrap(dst, token []byte) ([]byte, error)
	// Expiry is when the context's credentials end (a Kerberos service
	// ticket's end time). The client starts a new context before then.
	Expiry() time.Time
}
