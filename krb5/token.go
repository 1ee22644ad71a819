package krb5

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/common"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The per-message tokens of RFC 4121 §4.2.6: a 16-octet header, then a
// checksum (MIC) or the sealed message (Wrap).
//
//	MIC:  04 04 | flags | ff ff ff ff ff | SND_SEQ(8) | checksum
//	Wrap: 05 04 | flags | ff | EC(2) | RRC(2) | SND_SEQ(8) | data
const (
	tokenHeaderLen = 16

	// Flags (§4.2.2).
	flagSentByAcceptor = 0x01
	flagSealed         = 0x02
	flagAcceptorSubkey = 0x04

	// Key usages (§2).
	usageAcceptorSeal  = 22
	usageAcceptorSign  = 23
	usageInitiatorSeal = 24
	usageInitiatorSign = 25

	// maxToken bounds a token this package opens: RPCSEC_GSS carries at
	// most one RPC message in a token, and NFSv4 messages stay well below
	// this.
	maxToken = 64 << 20
)

// cfx holds what one side of an established context needs to make and
// check per-message tokens: the token key (the acceptor's subkey, else the
// ticket's session key), the key usages of each direction, and the flags
// that go out and must come in. The checksum keys are derived once, so a
// MIC costs one HMAC and no allocation. Safe for concurrent use.
type cfx struct {
	et  etype.EType
	key []byte // the token key; read-only after newCFX

	sendSign, sendSeal uint32 // key usages of the tokens this side makes
	recvSign, recvSeal uint32 // and of those it opens

	sendFlags byte // SentByAcceptor and AcceptorSubkey as this side sets them
	recvFlags byte // what the peer must set

	sendMAC, recvMAC sync.Pool // of *mac: HMAC keyed with Kc of each direction
	macLen           int       // checksum length in octets

	seq atomic.Uint64 // the next SND_SEQ this side sends

	scratch sync.Pool // of *[]byte: the plaintext of a seal, the un-rotated data of an unwrap
}

// keySize returns the key length of the encryption types whose GSS tokens
// are the RFC 4121 ones and that gokrb5 implements — the AES types of RFC
// 3962 and RFC 8009 — and 0 for any other. (Triple DES and RC4 use the
// older RFC 1964 tokens, which MIT keeps for them; this package does not
// speak those.) The table is here because gokrb5's GetKeyByteSize says 24
// for aes256-cts-hmac-sha384-192, whose keys have 32 octets.
func keySize(id int32) int {
	switch id {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA256_128:
		return 16
	case etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA384_192:
		return 32
	}
	return 0
}

// newCFX returns the token state of the initiator (acceptor false) or of
// the acceptor (true, used by tests) for a context whose token key is key;
// subkey says that key is the acceptor's subkey. seq is the first SND_SEQ
// this side sends.
func newCFX(key types.EncryptionKey, acceptor, subkey bool, seq uint64) (*cfx, error) {
	size := keySize(key.KeyType)
	if size == 0 {
		return nil, fmt.Errorf("%w: %s", ErrEncType, encTypeName(key.KeyType))
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrEncType, encTypeName(key.KeyType))
	}
	if len(key.KeyValue) != size {
		return nil, fmt.Errorf("krb5: a %s key has %d octets, not %d", encTypeName(key.KeyType), len(key.KeyValue), size)
	}
	c := &cfx{
		et:       et,
		key:      append([]byte(nil), key.KeyValue...),
		sendSign: usageInitiatorSign, sendSeal: usageInitiatorSeal,
		recvSign: usageAcceptorSign, recvSeal: usageAcceptorSeal,
		recvFlags: flagSentByAcceptor,
		macLen:    et.GetHMACBitLength() / 8,
	}
	if acceptor {
		c.sendSign, c.recvSign = c.recvSign, c.sendSign
		c.sendSeal, c.recvSeal = c.recvSeal, c.sendSeal
		c.sendFlags, c.recvFlags = c.recvFlags, c.sendFlags
	}
	if subkey {
		c.sendFlags |= flagAcceptorSubkey
		c.recvFlags |= flagAcceptorSubkey
	}
	// Kc = DK(key, usage | 0x99) (RFC 3961 §5.3; RFC 8009 §5 likewise): the
	// checksum of a MIC is HMAC(Kc, message | header), truncated.
	sendKc, err := et.DeriveKey(c.key, common.GetUsageKc(c.sendSign))
	if err != nil {
		return nil, fmt.Errorf("krb5: deriving the checksum key: %w", err)
	}
	recvKc, err := et.DeriveKey(c.key, common.GetUsageKc(c.recvSign))
	if err != nil {
		return nil, fmt.Errorf("krb5: deriving the checksum key: %w", err)
	}
	c.sendMAC.New = func() any { return &mac{h: hmac.New(et.GetHashFunc(), sendKc)} }
	c.recvMAC.New = func() any { return &mac{h: hmac.New(et.GetHashFunc(), recvKc)} }
	c.scratch.New = func() any { return new([]byte) }
	c.seq.Store(seq)
	return c, nil
}

// Errors of per-message tokens. Each wraps ErrToken.
var (
	errShort     = fmt.Errorf("%w: shorter than its header", ErrToken)
	errLong      = fmt.Errorf("%w: longer than %d octets", ErrToken, maxToken)
	errTokID     = fmt.Errorf("%w: not a token of this kind (TOK_ID)", ErrToken)
	errFiller    = fmt.Errorf("%w: filler octets are not ff", ErrToken)
	errDirection = fmt.Errorf("%w: not sent by the acceptor (SentByAcceptor flag)", ErrToken)
	errMirror    = fmt.Errorf("%w: sent by this side (SentByAcceptor flag)", ErrToken)
	errSubkey    = fmt.Errorf("%w: AcceptorSubkey flag does not match the context's key", ErrToken)
	errNotSealed = fmt.Errorf("%w: not sealed (the Wrap token has no confidentiality)", ErrToken)
	errChecksum  = fmt.Errorf("%w: checksum does not verify", ErrToken)
	errDecrypt   = fmt.Errorf("%w: does not decrypt and verify", ErrToken)
	errInner     = fmt.Errorf("%w: the encrypted copy of the header differs", ErrToken)
	errEC        = fmt.Errorf("%w: EC exceeds the data", ErrToken)
)

// checkFlags checks a received token's flags octet.
func (c *cfx) checkFlags(f byte) error {
	if f&flagSentByAcceptor != c.recvFlags&flagSentByAcceptor {
		if c.recvFlags&flagSentByAcceptor != 0 {
			return errDirection
		}
		return errMirror
	}
	if f&flagAcceptorSubkey != c.recvFlags&flagAcceptorSubkey {
		return errSubkey
	}
	return nil
}

// appendMIC appends the MIC token of msg to dst (RFC 4121 §4.2.6.1).
func (c *cfx) appendMIC(dst, msg []byte) []byte {
	n := len(dst)
	dst = append(dst, 0x04, 0x04, c.sendFlags, 0xff, 0xff, 0xff, 0xff, 0xff)
	dst = binary.BigEndian.AppendUint64(dst, c.seq.Add(1)-1)
	m := c.sum(&c.sendMAC, msg, dst[n:])
	dst = append(dst, m.sum[:c.macLen]...)
	c.sendMAC.Put(m)
	return dst
}

// A mac is an HMAC keyed with one direction's Kc, and room for its sum
// (the longest, SHA-384's, is 48 octets): kept in a pool so that a MIC
// allocates nothing.
type mac struct {
	h   hash.Hash
	sum [64]byte
}

// sum computes HMAC(Kc, msg | hdr) into m.sum of an HMAC from pool; the
// caller puts m back once it has used the sum.
func (c *cfx) sum(pool *sync.Pool, msg, hdr []byte) *mac {
	m := pool.Get().(*mac)
	m.h.Reset()
	m.h.Write(msg)
	m.h.Write(hdr)
	m.h.Sum(m.sum[:0])
	return m
}

// verifyMIC checks the peer's MIC token of msg.
func (c *cfx) verifyMIC(msg, tok []byte) error {
	if len(tok) < tokenHeaderLen {
		return errShort
	}
	if tok[0] != 0x04 || tok[1] != 0x04 {
		return errTokID
	}
	if err := c.checkFlags(tok[2]); err != nil {
		return err
	}
	for _, b := range tok[3:8] {
		if b != 0xff {
			return errFiller
		}
	}
	m := c.sum(&c.recvMAC, msg, tok[:tokenHeaderLen])
	ok := hmac.Equal(m.sum[:c.macLen], tok[tokenHeaderLen:])
	c.recvMAC.Put(m)
	if !ok {
		return errChecksum
	}
	return nil
}

// appendWrap appends msg sealed to dst: the Wrap token of RFC 4121
// §4.2.6.2 with confidentiality, ec filler octets and the data rotated
// right by rrc octets (§4.2.5). The initiator sends ec = rrc = 0; tests
// use others to play an acceptor that does not.
func (c *cfx) appendWrap(dst, msg []byte, ec, rrc uint16) ([]byte, error) {
	if len(msg) > maxToken {
		return dst, errLong
	}
	var hdr [tokenHeaderLen]byte
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x05, 0x04, c.sendFlags|flagSealed, 0xff
	binary.BigEndian.PutUint16(hdr[4:], ec)
	binary.BigEndian.PutUint64(hdr[8:], c.seq.Add(1)-1)

	// E(message | filler | header with RRC 0) (§4.2.4).
	bp := c.scratch.Get().(*[]byte)
	plain := append((*bp)[:0], msg...)
	for range ec {
		plain = append(plain, 0)
	}
	plain = append(plain, hdr[:]...)
	_, ct, err := c.et.EncryptMessage(c.key, plain, c.sendSeal)
	*bp = plain
	c.scratch.Put(bp)
	if err != nil {
		return dst, fmt.Errorf("krb5: sealing: %w", err)
	}
	binary.BigEndian.PutUint16(hdr[6:], rrc)
	dst = append(dst, hdr[:]...)
	if r := int(rrc) % len(ct); r != 0 {
		dst = append(dst, ct[len(ct)-r:]...)
		ct = ct[:len(ct)-r]
	}
	return append(dst, ct...), nil
}

// unwrap opens the peer's sealed Wrap token and appends the message to dst.
func (c *cfx) unwrap(dst, tok []byte) ([]byte, error) {
	if len(tok) < tokenHeaderLen {
		return dst, errShort
	}
	if len(tok) > maxToken {
		return dst, errLong
	}
	if tok[0] != 0x05 || tok[1] != 0x04 {
		return dst, errTokID
	}
	if err := c.checkFlags(tok[2]); err != nil {
		return dst, err
	}
	if tok[2]&flagSealed == 0 {
		return dst, errNotSealed
	}
	if tok[3] != 0xff {
		return dst, errFiller
	}
	ec := int(binary.BigEndian.Uint16(tok[4:]))
	rrc := int(binary.BigEndian.Uint16(tok[6:]))
	data := tok[tokenHeaderLen:]
	// The sealed data holds at least a confounder, the header's copy and
	// the integrity checksum; gokrb5's decryption needs that many octets.
	if len(data) < c.et.GetConfounderByteSize()+tokenHeaderLen+c.macLen {
		return dst, errShort
	}

	var bp *[]byte
	if r := rrc % len(data); r != 0 {
		// Undo the rotation: the first r octets were the last.
		bp = c.scratch.Get().(*[]byte)
		*bp = append(append((*bp)[:0], data[r:]...), data[:r]...)
		data = *bp
	}
	plain, err := c.et.DecryptMessage(c.key, data, c.recvSeal)
	if bp != nil {
		c.scratch.Put(bp)
	}
	if err != nil {
		return dst, errDecrypt
	}
	if len(plain) < tokenHeaderLen+ec {
		return dst, errEC
	}
	// The encrypted header must match the one outside, RRC aside (the
	// inner RRC is 0; the outer one says how the data was rotated).
	inner := plain[len(plain)-tokenHeaderLen:]
	if !bytes.Equal(inner[:6], tok[:6]) || !bytes.Equal(inner[8:], tok[8:tokenHeaderLen]) {
		return dst, errInner
	}
	return append(dst, plain[:len(plain)-tokenHeaderLen-ec]...), nil
}
