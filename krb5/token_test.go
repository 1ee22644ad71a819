package krb5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// testKey returns a fixed key of encryption type id (its octets 1, 2, 3...),
// so tokens made with it can be committed as fuzz seeds.
func testKey(t testing.TB, id int32) types.EncryptionKey {
	t.Helper()
	k := make([]byte, keySize(id))
	for i := range k {
		k[i] = byte(i + 1)
	}
	return types.EncryptionKey{KeyType: id, KeyValue: k}
}

var cfxTypes = []int32{
	etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192,
}

// pair returns the two views of one context: the initiator's (this
// package's client) and the acceptor's (the server's, with the usages and
// flags mirrored).
func pair(t testing.TB, id int32, subkey bool) (ini, acc *cfx) {
	t.Helper()
	key := testKey(t, id)
	ini, err := newCFX(key, false, subkey, 1000)
	if err != nil {
		t.Fatal(err)
	}
	acc, err = newCFX(key, true, subkey, 5000)
	if err != nil {
		t.Fatal(err)
	}
	return ini, acc
}

func message(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestMICRoundTrip(t *testing.T) {
	for _, id := range cfxTypes {
		for _, subkey := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/subkey=%v", encTypeName(id), subkey), func(t *testing.T) {
				ini, acc := pair(t, id, subkey)
				for _, n := range []int{0, 1, 16, 100, 70000} {
					msg := message(n)
					mic := ini.appendMIC([]byte("prefix"), msg)
					if !bytes.HasPrefix(mic, []byte("prefix")) {
						t.Fatal("appendMIC did not append")
					}
					mic = mic[len("prefix"):]
					if err := acc.verifyMIC(msg, mic); err != nil {
						t.Fatalf("acceptor rejects the initiator's MIC of %d octets: %v", n, err)
					}
					back := acc.appendMIC(nil, msg)
					if err := ini.verifyMIC(msg, back); err != nil {
						t.Fatalf("initiator rejects the acceptor's MIC of %d octets: %v", n, err)
					}
					if len(msg) > 0 {
						other := bytes.Clone(msg)
						other[len(other)-1] ^= 1
						if err := ini.verifyMIC(other, back); !errors.Is(err, ErrToken) {
							t.Fatalf("MIC verifies a different message: %v", err)
						}
					}
				}
			})
		}
	}
}

// TestMICKnownAnswer checks this package's MIC tokens against gokrb5's own
// MICToken, which computes the checksum the slow way (concatenating, then
// gokrb5's GetChecksumHash with the key derived afresh).
func TestMICKnownAnswer(t *testing.T) {
	for _, id := range cfxTypes {
		key := testKey(t, id)
		for _, acceptor := range []bool{false, true} {
			c, err := newCFX(key, acceptor, true, 42)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("the RPC header from the XID to the end of the credential")
			got := c.appendMIC(nil, msg)
			usage, flags := uint32(usageInitiatorSign), byte(flagAcceptorSubkey)
			if acceptor {
				usage, flags = usageAcceptorSign, flagAcceptorSubkey|flagSentByAcceptor
			}
			want := gssapi.MICToken{Flags: flags, SndSeqNum: 42, Payload: msg}
			if err := want.SetChecksum(key, usage); err != nil {
				t.Fatal(err)
			}
			wb, err := want.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wb) {
				t.Errorf("%s acceptor=%v: MIC\n%x, gokrb5 makes\n%x", encTypeName(id), acceptor, got, wb)
			}
		}
	}
}

// TestWrapKnownAnswer opens this package's Wrap token with gokrb5's
// DecryptMessage and checks the layout RFC 4121 §4.2.4 gives it:
// message | EC filler | header with RRC 0.
func TestWrapKnownAnswer(t *testing.T) {
	for _, id := range cfxTypes {
		key := testKey(t, id)
		ini, err := newCFX(key, false, true, 7)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("NFSv4 COMPOUND arguments")
		tok, err := ini.appendWrap(nil, msg, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantHdr := []byte{0x05, 0x04, flagSealed | flagAcceptorSubkey, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
		if !bytes.Equal(tok[:16], wantHdr) {
			t.Fatalf("%s: header %x, want %x", encTypeName(id), tok[:16], wantHdr)
		}
		plain, err := crypto.DecryptMessage(tok[16:], key, usageInitiatorSeal)
		if err != nil {
			t.Fatalf("%s: gokrb5 cannot decrypt the token with usage 24: %v", encTypeName(id), err)
		}
		if want := append(bytes.Clone(msg), wantHdr...); !bytes.Equal(plain, want) {
			t.Fatalf("%s: sealed plaintext\n%x, want\n%x", encTypeName(id), plain, want)
		}
	}
}

func TestWrapRoundTrip(t *testing.T) {
	shapes := []struct{ ec, rrc uint16 }{{0, 0}, {0, 28}, {16, 0}, {16, 28}, {7, 1}, {3, 60000}}
	for _, id := range cfxTypes {
		for _, subkey := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/subkey=%v", encTypeName(id), subkey), func(t *testing.T) {
				ini, acc := pair(t, id, subkey)
				for _, n := range []int{0, 1, 15, 16, 17, 31, 1000, 70000} {
					msg := message(n)
					tok, err := ini.appendWrap([]byte("x"), msg, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					got, err := acc.unwrap([]byte("y"), tok[1:])
					if err != nil {
						t.Fatalf("acceptor cannot unwrap %d octets: %v", n, err)
					}
					if !bytes.Equal(got, append([]byte("y"), msg...)) {
						t.Fatalf("acceptor unwrapped %d octets wrongly", n)
					}
					for _, s := range shapes {
						tok, err := acc.appendWrap(nil, msg, s.ec, s.rrc)
						if err != nil {
							t.Fatal(err)
						}
						if ec := binary.BigEndian.Uint16(tok[4:]); ec != s.ec {
							t.Fatalf("EC %d, want %d", ec, s.ec)
						}
						got, err := ini.unwrap(nil, tok)
						if err != nil {
							t.Fatalf("initiator cannot unwrap %d octets with EC %d RRC %d: %v", n, s.ec, s.rrc, err)
						}
						if !bytes.Equal(got, msg) {
							t.Fatalf("initiator unwrapped %d octets with EC %d RRC %d wrongly", n, s.ec, s.rrc)
						}
					}
				}
			})
		}
	}
}

// TestTamperDetected flips every bit of a MIC and a Wrap token, one at a
// time, and expects each to be rejected — except the two RRC octets of a
// Wrap token, where a change re-rotates the data, which then fails too.
func TestTamperDetected(t *testing.T) {
	for _, id := range cfxTypes {
		ini, acc := pair(t, id, true)
		msg := message(40)
		mic := acc.appendMIC(nil, msg)
		for i := range mic {
			for bit := range 8 {
				bad := bytes.Clone(mic)
				bad[i] ^= 1 << bit
				if err := ini.verifyMIC(msg, bad); !errors.Is(err, ErrToken) {
					t.Fatalf("%s: MIC with octet %d bit %d flipped: %v", encTypeName(id), i, bit, err)
				}
			}
		}
		if err := ini.verifyMIC(msg, mic[:len(mic)-1]); !errors.Is(err, ErrToken) {
			t.Fatalf("truncated MIC: %v", err)
		}
		if err := ini.verifyMIC(msg, append(bytes.Clone(mic), 0)); !errors.Is(err, ErrToken) {
			t.Fatalf("extended MIC: %v", err)
		}
		wrap, err := acc.appendWrap(nil, msg, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wrap {
			for bit := range 8 {
				bad := bytes.Clone(wrap)
				bad[i] ^= 1 << bit
				if _, err := ini.unwrap(nil, bad); !errors.Is(err, ErrToken) {
					t.Fatalf("%s: Wrap with octet %d bit %d flipped: %v", encTypeName(id), i, bit, err)
				}
			}
		}
		for _, n := range []int{0, 15, 16, len(wrap) - 1} {
			if _, err := ini.unwrap(nil, wrap[:n]); !errors.Is(err, ErrToken) {
				t.Fatalf("Wrap truncated to %d octets: %v", n, err)
			}
		}
	}
}

func TestDirectionAndSubkeyFlags(t *testing.T) {
	key := testKey(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	ini, acc := pair(t, etypeID.AES256_CTS_HMAC_SHA1_96, true)
	msg := []byte("seq_window")

	// A token the initiator made, reflected back to it.
	if err := ini.verifyMIC(msg, ini.appendMIC(nil, msg)); !errors.Is(err, errDirection) {
		t.Errorf("own MIC reflected: %v, want %v", err, errDirection)
	}
	own, _ := ini.appendWrap(nil, msg, 0, 0)
	if _, err := ini.unwrap(nil, own); !errors.Is(err, errDirection) {
		t.Errorf("own Wrap reflected: %v, want %v", err, errDirection)
	}
	// The acceptor's view refuses tokens from another acceptor.
	if err := acc.verifyMIC(msg, acc.appendMIC(nil, msg)); !errors.Is(err, errMirror) {
		t.Errorf("acceptor's MIC to acceptor: %v, want %v", err, errMirror)
	}

	// An acceptor that does not set AcceptorSubkey though the context has
	// its subkey (or sets it when there is none).
	noSub, err := newCFX(key, true, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ini.verifyMIC(msg, noSub.appendMIC(nil, msg)); !errors.Is(err, errSubkey) {
		t.Errorf("MIC without AcceptorSubkey: %v, want %v", err, errSubkey)
	}
	w, _ := noSub.appendWrap(nil, msg, 0, 0)
	if _, err := ini.unwrap(nil, w); !errors.Is(err, errSubkey) {
		t.Errorf("Wrap without AcceptorSubkey: %v, want %v", err, errSubkey)
	}
	iniNoSub, _ := newCFX(key, false, false, 1)
	if err := iniNoSub.verifyMIC(msg, acc.appendMIC(nil, msg)); !errors.Is(err, errSubkey) {
		t.Errorf("MIC with an unexpected AcceptorSubkey: %v, want %v", err, errSubkey)
	}

	// A Wrap token without confidentiality (Sealed clear) is refused even
	// before its checksum is looked at.
	w, _ = acc.appendWrap(nil, msg, 0, 0)
	w[2] &^= flagSealed
	if _, err := ini.unwrap(nil, w); !errors.Is(err, errNotSealed) {
		t.Errorf("unsealed Wrap: %v, want %v", err, errNotSealed)
	}
	// A MIC token offered as a Wrap token and the reverse.
	if _, err := ini.unwrap(nil, acc.appendMIC(nil, msg)); !errors.Is(err, errTokID) {
		t.Errorf("MIC as Wrap: %v, want %v", err, errTokID)
	}
	if err := ini.verifyMIC(msg, w); !errors.Is(err, errTokID) {
		t.Errorf("Wrap as MIC: %v, want %v", err, errTokID)
	}
}

// TestEncTypes refuses the encryption types whose tokens are RFC 1964's.
func TestEncTypes(t *testing.T) {
	for _, id := range []int32{etypeID.DES3_CBC_SHA1_KD, etypeID.RC4_HMAC, 0, 999} {
		_, err := newCFX(types.EncryptionKey{KeyType: id, KeyValue: make([]byte, 24)}, false, true, 0)
		if !errors.Is(err, ErrEncType) {
			t.Errorf("%s: %v, want ErrEncType", encTypeName(id), err)
		}
	}
	_, err := newCFX(types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 16)}, false, true, 0)
	if err == nil {
		t.Error("a 16-octet AES-256 key was accepted")
	}
}

func TestSequenceNumbers(t *testing.T) {
	ini, _ := pair(t, etypeID.AES128_CTS_HMAC_SHA1_96, true)
	a := ini.appendMIC(nil, nil)
	b, _ := ini.appendWrap(nil, nil, 0, 0)
	c := ini.appendMIC(nil, nil)
	for i, tok := range [][]byte{a, b, c} {
		if got := binary.BigEndian.Uint64(tok[8:]); got != uint64(1000+i) {
			t.Errorf("token %d: SND_SEQ %d, want %d", i, got, 1000+i)
		}
	}
}
