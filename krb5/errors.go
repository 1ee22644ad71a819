package krb5

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Errors a user can act on. The KDC's and the server's refusals come as
// *KerberosError, which matches the sentinel of its code with errors.Is.
var (
	// ErrWrongPassword: the KDC did not accept the password or the
	// keytab's key (KDC_ERR_PREAUTH_FAILED, or a reply that the key does
	// not decrypt). Check the password, or re-export the keytab: kadmin's
	// ktadd without -norandkey changes the key.
	ErrWrongPassword = errors.New("krb5: the KDC rejected the password or key")
	// ErrClientUnknown: the KDC has no such client principal
	// (KDC_ERR_C_PRINCIPAL_UNKNOWN).
	ErrClientUnknown = errors.New("krb5: the KDC does not know the client principal")
	// ErrServiceUnknown: the KDC has no such service principal
	// (KDC_ERR_S_PRINCIPAL_UNKNOWN); Config.Service names the server's
	// principal, such as "nfs/server.example.com".
	ErrServiceUnknown = errors.New("krb5: the KDC does not know the service principal")
	// ErrClockSkew: this machine's clock and the KDC's or the server's
	// differ by more than the allowed skew, usually 5 minutes
	// (KRB_AP_ERR_SKEW).
	ErrClockSkew = errors.New("krb5: clock skew too great")
	// ErrExpired: the credentials have expired and cannot be renewed
	// without a secret — the credential cache's ticket-granting ticket
	// (run kinit again) or a ticket the server saw as expired
	// (KRB_AP_ERR_TKT_EXPIRED).
	ErrExpired = errors.New("krb5: credentials expired")
	// ErrKDCUnreachable: no KDC of the realm answered (krb5.conf's kdc
	// entries, over UDP and TCP).
	ErrKDCUnreachable = errors.New("krb5: no KDC answered")
	// ErrEncType: the session key's encryption type is not one this
	// package makes GSS tokens with (the AES types of RFC 3962 and RFC
	// 8009); allow aes256-cts-hmac-sha1-96 or another AES type for the
	// service principal.
	ErrEncType = errors.New("krb5: unsupported encryption type")
	// ErrToken: a MIC or Wrap token from the server is malformed or does
	// not verify (VerifyMIC, Unwrap); every such error wraps it.
	ErrToken = errors.New("krb5: bad GSS token")
	// ErrNotEstablished: a context was used before Complete succeeded.
	ErrNotEstablished = errors.New("krb5: context not established")
)

// A KerberosError is a KRB-ERROR the KDC or the server sent (RFC 4120
// §5.9.1), or, when gokrb5 reported only its text, the code in that
// text. errors.Is matches it against the sentinel of its code.
type KerberosError struct {
	Op   string // what failed: "AS exchange for alice@EXAMPLE.COM"
	Code int32  // the error code, such as 24 for KDC_ERR_PREAUTH_FAILED
	Text string // the e-text or gokrb5's message, if any
}

// Error says what failed and the code's name and meaning.
func (e *KerberosError) Error() string {
	var b strings.Builder
	b.WriteString("krb5: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if s := sentinelOf(e.Code); s != nil {
		b.WriteString(strings.TrimPrefix(s.Error(), "krb5: "))
		b.WriteString(": ")
	}
	b.WriteString(errorcode.Lookup(e.Code))
	if e.Text != "" {
		b.WriteString(" (")
		b.WriteString(e.Text)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's code.
func (e *KerberosError) Is(target error) bool {
	s := sentinelOf(e.Code)
	return s != nil && s == target
}

func sentinelOf(code int32) error {
	switch code {
	case errorcode.KDC_ERR_PREAUTH_FAILED:
		return ErrWrongPassword
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		return ErrClientUnknown
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return ErrServiceUnknown
	case errorcode.KRB_AP_ERR_SKEW:
		return ErrClockSkew
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return ErrExpired
	case errorcode.KDC_ERR_ETYPE_NOSUPP:
		return ErrEncType
	}
	return nil
}

// kdcError turns what gokrb5 returned for a KDC exchange (op says which)
// into an error that matches the sentinels above. gokrb5 flattens a KDC's
// KRB-ERROR into the text of a krberror.Krberror ("KRB Error: (24)
// KDC_ERR_PREAUTH_FAILED ..."), so the code is read back from that text.
func kdcError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ke messages.KRBError
	if errors.As(err, &ke) {
		return &KerberosError{Op: op, Code: ke.ErrorCode, Text: ke.EText}
	}
	msg := err.Error()
	if code, ok := codeInText(msg); ok {
		return &KerberosError{Op: op, Code: code, Text: eTextAfter(msg, code)}
	}
	var kerr krberror.Krberror
	if errors.As(err, &kerr) {
		switch {
		case kerr.RootCause == krberror.NetworkingError:
			return fmt.Errorf("%w: %s: %s", ErrKDCUnreachable, op, msg)
		case strings.Contains(msg, "clock skew"):
			return fmt.Errorf("%w: %s: %s", ErrClockSkew, op, msg)
		case kerr.RootCause == krberror.DecryptingError && strings.Contains(msg, "AS_REP"):
			// No pre-authentication: the KDC answered, but in a key
			// the password or keytab does not give.
			return fmt.Errorf("%w: %s: %s", ErrWrongPassword, op, msg)
		}
	}
	return fmt.Errorf("krb5: %s: %w", op, err)
}

// codeInText finds the "KRB Error: (N)" gokrb5 writes for a KRB-ERROR.
func codeInText(s string) (int32, bool) {
	const mark = "KRB Error: ("
	i := strings.Index(s, mark)
	if i < 0 {
		return 0, false
	}
	s = s[i+len(mark):]
	j := strings.IndexByte(s, ')')
	if j <= 0 || j > 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:j], 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// eTextAfter returns the e-text gokrb5 writes after a KRB-ERROR's code
// ("KRB Error: (24) KDC_ERR_PREAUTH_FAILED Pre-authentication information
// was invalid - PREAUTH_FAILED"), or "".
func eTextAfter(s string, code int32) string {
	mark := "KRB Error: " + errorcode.Lookup(code) + " - "
	if i := strings.Index(s, mark); i >= 0 {
		return s[i+len(mark):]
	}
	return ""
}

func encTypeName(id int32) string {
	switch id {
	case etypeID.AES128_CTS_HMAC_SHA1_96:
		return "aes128-cts-hmac-sha1-96"
	case etypeID.AES256_CTS_HMAC_SHA1_96:
		return "aes256-cts-hmac-sha1-96"
	case etypeID.AES128_CTS_HMAC_SHA256_128:
		return "aes128-cts-hmac-sha256-128"
	case etypeID.AES256_CTS_HMAC_SHA384_192:
		return "aes256-cts-hmac-sha384-192"
	case etypeID.DES3_CBC_SHA1_KD:
		return "des3-cbc-sha1"
	case etypeID.RC4_HMAC:
		return "arcfour-hmac"
	}
	return "encryption type " + strconv.Itoa(int(id))
}
