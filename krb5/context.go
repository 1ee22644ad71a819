package krb5

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// secContext is one Kerberos security context, as InitContext starts it.
// Complete establishes it; its other methods are then safe for concurrent
// use.
type secContext struct {
	service string              // "nfs/host@REALM", for messages
	key     types.EncryptionKey // the service ticket's session key
	ctime   time.Time           // the authenticator's time, which the AP-REP echoes
	cusec   int
	seq     uint64 // the authenticator's sequence number: the first SND_SEQ
	expiry  time.Time

	completing atomic.Bool
	tokens     atomic.Pointer[cfx] // set once Complete succeeds
}

// Tokens of context establishment (RFC 4121 §4.1): the GSS framing of RFC
// 2743 §3.1 around a two-octet TOK_ID and a Kerberos message.
var (
	krb5OID      = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	tokIDAPRep   = [2]byte{0x02, 0x00}
	tokIDKRBErr  = [2]byte{0x03, 0x00}
	errFraming   = errors.New("krb5: the server's reply token is not a Kerberos V5 GSS token")
	errCompleted = errors.New("krb5: Complete called twice on one context")
)

// unframe returns the TOK_ID and the Kerberos message of an
// establishment token.
func unframe(tok []byte) (id [2]byte, msg []byte, err error) {
	if len(tok) < 2 || tok[0] != 0x60 {
		return id, nil, errFraming
	}
	// A DER length: one octet below 0x80, else 0x80|n and n octets.
	n, rest := int(tok[1]), tok[2:]
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(rest) < k {
			return id, nil, errFraming
		}
		n = 0
		for _, b := range rest[:k] {
			n = n<<8 | int(b)
		}
		rest = rest[k:]
	}
	if n != len(rest) || !bytes.HasPrefix(rest, krb5OID) || len(rest) < len(krb5OID)+2 {
		return id, nil, errFraming
	}
	rest = rest[len(krb5OID):]
	return [2]byte{rest[0], rest[1]}, rest[2:], nil
}

// Complete checks the server's AP-REP: that it decrypts with the ticket's
// session key and echoes the authenticator's time (the server proved it
// holds the service key), and takes its acceptor subkey as the key of every
// later token. A KRB-ERROR in its place becomes a *KerberosError (a clock
// skew at the server is ErrClockSkew).
func (c *secContext) Complete(token []byte) (err error) {
	if !c.completing.CompareAndSwap(false, true) {
		return errCompleted
	}
	defer func() {
		// gokrb5's ASN.1 decoder sees bytes from the network; a panic in
		// it must not take the client down.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errFraming, r)
		}
	}()
	if len(token) == 0 {
		return fmt.Errorf("krb5: %s sent no AP-REP: it did not authenticate itself", c.service)
	}
	if len(token) > maxToken {
		return errLong
	}
	id, msg, err := unframe(token)
	if err != nil {
		return err
	}
	op := "AP exchange with " + c.service
	switch id {
	case tokIDKRBErr:
		var ke messages.KRBError
		if err := ke.Unmarshal(msg); err != nil {
			return fmt.Errorf("krb5: %s: unreadable KRB-ERROR: %w", op, err)
		}
		return &KerberosError{Op: op, Code: ke.ErrorCode, Text: ke.EText}
	case tokIDAPRep:
	default:
		return fmt.Errorf("%w (TOK_ID %x)", errFraming, id)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(msg); err != nil {
		return fmt.Errorf("krb5: %s: unreadable AP-REP: %w", op, err)
	}
	part, err := c.decryptAPRep(rep.EncPart)
	if err != nil {
		return fmt.Errorf("krb5: %s: %w", op, err)
	}
	if part.CTime.Unix() != c.ctime.Unix() || part.Cusec != c.cusec {
		return fmt.Errorf("krb5: %s: the AP-REP does not echo the authenticator's time", op)
	}
	key, subkey := c.key, false
	if part.Subkey.KeyType != 0 || len(part.Subkey.KeyValue) != 0 {
		key, subkey = part.Subkey, true
	}
	t, err := newCFX(key, false, subkey, c.seq)
	if err != nil {
		return fmt.Errorf("%w (the acceptor subkey in the AP-REP of %s)", err, c.service)
	}
	c.tokens.Store(t)
	return nil
}

// decryptAPRep decrypts the EncAPRepPart with the session key, after the
// length checks gokrb5's decryption leaves to its caller.
func (c *secContext) decryptAPRep(ed types.EncryptedData) (messages.EncAPRepPart, error) {
	var part messages.EncAPRepPart
	if ed.EType != c.key.KeyType {
		return part, fmt.Errorf("the AP-REP is encrypted with %s, not the session key's %s", encTypeName(ed.EType), encTypeName(c.key.KeyType))
	}
	et, err := crypto.GetEtype(ed.EType)
	if err != nil {
		return part, err
	}
	if len(ed.Cipher) < et.GetConfounderByteSize()+et.GetHMACBitLength()/8+1 || len(ed.Cipher) > maxToken {
		return part, errors.New("the AP-REP's encrypted part has an impossible length")
	}
	plain, err := crypto.DecryptMessage(ed.Cipher, c.key, keyusage.AP_REP_ENCPART)
	if err != nil {
		return part, errors.New("the AP-REP does not decrypt with the session key: the server does not hold the service key")
	}
	if err := part.Unmarshal(plain); err != nil {
		return part, fmt.Errorf("unreadable EncAPRepPart: %w", err)
	}
	return part, nil
}

func (c *secContext) established() (*cfx, error) {
	t := c.tokens.Load()
	if t == nil {
		return nil, ErrNotEstablished
	}
	return t, nil
}

// AppendMIC appends the MIC token (RFC 4121 §4.2.6.1) of msg to dst.
func (c *secContext) AppendMIC(dst, msg []byte) ([]byte, error) {
	t, err := c.established()
	if err != nil {
		return dst, err
	}
	return t.appendMIC(dst, msg), nil
}

// VerifyMIC checks that mic is the server's MIC token of msg.
func (c *secContext) VerifyMIC(msg, mic []byte) error {
	t, err := c.established()
	if err != nil {
		return err
	}
	return t.verifyMIC(msg, mic)
}

// AppendWrap appends msg sealed in a Wrap token (RFC 4121 §4.2.6.2, with
// confidentiality) to dst.
func (c *secContext) AppendWrap(dst, msg []byte) ([]byte, error) {
	t, err := c.established()
	if err != nil {
		return dst, err
	}
	return t.appendWrap(dst, msg, 0, 0)
}

// Unwrap opens the server's sealed Wrap token and appends the message to
// dst.
func (c *secContext) Unwrap(dst, token []byte) ([]byte, error) {
	t, err := c.established()
	if err != nil {
		return dst, err
	}
	return t.unwrap(dst, token)
}

// Expiry returns the service ticket's end time.
func (c *secContext) Expiry() time.Time { return c.expiry }
