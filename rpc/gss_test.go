package rpc

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gonfs/nfs/rpc/xdr"
)

// toyGSS stands in for a GSS mechanism in the tests of the framing: its
// MIC is an HMAC-SHA256 of the message, and its "seal" prefixes the message
// with its HMAC and flips every bit (no secrecy; enough to tell sealed
// from plain, and a tampered token from a sound one). The real mechanism
// (Kerberos V5) is tested against an MIT KDC and NFS-Ganesha.
type toyGSS struct{ key []byte }

func (t toyGSS) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write(msg)
	return h.Sum(nil)
}
func (toyGSS) Complete([]byte) error { return nil }
func (t toyGSS) AppendMIC(dst, msg []byte) ([]byte, error) {
	return append(dst, t.mac(msg)...), nil
}
func (t toyGSS) VerifyMIC(msg, mic []byte) error {
	if !hmac.Equal(t.mac(msg), mic) {
		return errors.New("toy MIC mismatch")
	}
	return nil
}
func (t toyGSS) AppendWrap(dst, msg []byte) ([]byte, error) {
	dst = append(dst, t.mac(msg)...)
	for _, c := range msg {
		dst = append(dst, ^c)
	}
	return dst, nil
}
func (t toyGSS) Unwrap(dst, tok []byte) ([]byte, error) {
	if len(tok) < sha256.Size {
		return nil, errors.New("toy token too short")
	}
	at := len(dst)
	for _, c := range tok[sha256.Size:] {
		dst = append(dst, ^c)
	}
	if err := t.VerifyMIC(dst[at:], tok[:sha256.Size]); err != nil {
		return nil, err
	}
	return dst, nil
}
func (toyGSS) Expiry() time.Time { return time.Now().Add(time.Hour) }

// toyCall returns a call sealed under svc with the toy mechanism, its
// arguments args, or with pay a bulk payload kept by reference after them
// (a WRITE's data) and tail after that.
func toyCall(t testing.TB, svc GSSService, args []byte, payTail ...[]byte) (*call, toyGSS) {
	tg := toyGSS{key: []byte("k")}
	c := &Client{prog: 100003, vers: 4}
	g := &gssState{auth: &GSSAuth{svc: svc}, c: c}
	cl := &call{xid: 7}
	plain := append([]byte{0, 0, 0, 0}, args...)
	cl.gss = gssCall{g: g, x: &gssCtx{gc: tg, handle: []byte("handle"), seq: 41}, proc: 1, plain: &plain, payAt: len(plain)}
	if len(payTail) == 2 {
		cl.gss.pay = payTail[0]
		plain = append(plain, payTail[1]...)
	}
	if err := cl.gss.seal(cl); err != nil {
		t.Fatal(err)
	}
	return cl, tg
}

// wire returns the record as it goes on the wire: with the payload kept
// by reference in its place.
func wire(cl *call) []byte {
	rec := *cl.rec
	if cl.pay == nil {
		return rec
	}
	return append(append(append([]byte(nil), rec[:cl.payAt]...), cl.pay...), rec[cl.payAt:]...)
}

// TestGSSSealLayout reads a sealed call as a server does (RFC 2203 §5.3):
// the credential names the context and a fresh sequence number, the
// verifier is the MIC of the header through the credential, and the
// arguments are plain, checksummed or sealed as the service says.
func TestGSSSealLayout(t *testing.T) {
	head, tail := []byte("arguments of the call"), []byte("tail") // 21 bytes: padded in XDR
	pay := bytes.Repeat([]byte("payload!"), bulkRecord/8+1)
	for _, svc := range []GSSService{GSSNone, GSSIntegrity, GSSPrivacy} {
		for _, bulk := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bulk=%t", svc, bulk), func(t *testing.T) {
				args := head
				var cl *call
				var tg toyGSS
				if bulk {
					args = append(append(append([]byte(nil), head...), pay...), tail...)
					cl, tg = toyCall(t, svc, head, pay, tail)
				} else {
					cl, tg = toyCall(t, svc, head)
				}
				rec := wire(cl)
				if m := binary.BigEndian.Uint32(rec); m != lastFragment|uint32(len(rec)-4) {
					t.Fatalf("record mark %#x for %d bytes", m, len(rec)-4)
				}
				d := xdr.NewDecoder(rec[4:])
				if xid := d.Uint32(); xid != 7 {
					t.Fatalf("xid %d", xid)
				}
				d.Skip(20) // CALL, rpcvers, prog, vers, proc
				if f := d.Uint32(); f != AuthFlavorGSS {
					t.Fatalf("credential flavor %d", f)
				}
				cred := xdr.NewDecoder(d.Opaque(MaxAuthBody))
				credEnd := 4 + d.Offset()
				ver, proc, seq, service, handle := cred.Uint32(), cred.Uint32(), cred.Uint32(), cred.Uint32(), cred.Opaque(100)
				if ver != 1 || proc != gssProcData || seq != 42 || GSSService(service) != svc || string(handle) != "handle" || cred.Err() != nil {
					t.Fatalf("credential: version %d proc %d seq %d service %d handle %q (%v)", ver, proc, seq, service, handle, cred.Err())
				}
				if f := d.Uint32(); f != AuthFlavorGSS {
					t.Fatalf("verifier flavor %d", f)
				}
				if err := tg.VerifyMIC(rec[4:credEnd], d.Opaque(MaxAuthBody)); err != nil {
					t.Fatalf("verifier: %v", err)
				}
				var got []byte
				switch svc {
				case GSSNone:
					got = d.Rest()
				case GSSIntegrity:
					body := d.Opaque(1 << 20)
					if err := tg.VerifyMIC(body, d.Opaque(1<<10)); err != nil {
						t.Fatalf("checksum over the arguments: %v", err)
					}
					if s := binary.BigEndian.Uint32(body); s != seq {
						t.Fatalf("sequence number in the body %d, credential's %d", s, seq)
					}
					got = body[4:]
				case GSSPrivacy:
					body, err := tg.Unwrap(nil, d.Opaque(1<<20))
					if err != nil {
						t.Fatalf("sealed arguments: %v", err)
					}
					if s := binary.BigEndian.Uint32(body); s != seq {
						t.Fatalf("sequence number in the body %d, credential's %d", s, seq)
					}
					got = body[4:]
				}
				if d.Err() != nil || !bytes.Equal(got, args) {
					t.Fatalf("arguments of %d bytes, want %d (%v)", len(got), len(args), d.Err())
				}
			})
		}
	}
}

// TestGSSResealNewSequence: each transmission of a call (a re-send after a
// reconnect) carries a new sequence number, and its reply is accepted
// under any of them.
func TestGSSResealNewSequence(t *testing.T) {
	cl, tg := toyCall(t, GSSIntegrity, []byte("x"))
	first := append([]byte(nil), *cl.rec...)
	if err := cl.gss.seal(cl); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, *cl.rec) {
		t.Fatal("a re-sent call went out with the same sequence number and verifier")
	}
	if binary.BigEndian.Uint32((*cl.rec)[4:]) != 7 {
		t.Fatal("the re-sent call lost its XID")
	}
	for _, seq := range []uint32{42, 43} {
		var s [4]byte
		binary.BigEndian.PutUint32(s[:], seq)
		mic, _ := tg.AppendMIC(nil, s[:])
		if err := cl.gss.Verify(OpaqueAuth{Flavor: AuthFlavorGSS, Body: mic}); err != nil {
			t.Errorf("reply verifier for sequence %d: %v", seq, err)
		}
	}
	mic, _ := tg.AppendMIC(nil, []byte{0, 0, 0, 44})
	if err := cl.gss.Verify(OpaqueAuth{Flavor: AuthFlavorGSS, Body: mic}); !errors.Is(err, ErrGSSIntegrity) {
		t.Errorf("verifier of a sequence number never sent: %v, want ErrGSSIntegrity", err)
	}
}

// replyBody returns the results as the server protects them under svc.
func replyBody(tg toyGSS, svc GSSService, seq uint32, results []byte) []byte {
	body := binary.BigEndian.AppendUint32(nil, seq)
	body = append(body, results...)
	var e xdr.Encoder
	switch svc {
	case GSSNone:
		return results
	case GSSIntegrity:
		e.Opaque(body)
		mic, _ := tg.AppendMIC(nil, body)
		e.Opaque(mic)
	case GSSPrivacy:
		tok, _ := tg.AppendWrap(nil, body)
		e.Opaque(tok)
	}
	return e.Bytes()
}

// TestGSSOpenReply: results are handed on only when their checksum or seal
// holds and they carry the call's sequence number; a flipped byte anywhere
// fails the call with ErrGSSIntegrity.
func TestGSSOpenReply(t *testing.T) {
	results := []byte("results!")
	for _, svc := range []GSSService{GSSIntegrity, GSSPrivacy} {
		t.Run(svc.String(), func(t *testing.T) {
			cl, tg := toyCall(t, svc, nil)
			body := replyBody(tg, svc, 42, results)
			d := xdr.NewDecoder(body)
			if err := cl.gss.openReply(d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Rest(), results) {
				t.Fatalf("results %q, want %q", d.Rest(), results)
			}
			for i := range body {
				bad := bytes.Clone(body)
				bad[i] ^= 0x40
				if err := cl.gss.openReply(xdr.NewDecoder(bad)); err == nil {
					t.Fatalf("byte %d flipped: results accepted", i)
				} else if !errors.Is(err, ErrGSSIntegrity) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("byte %d flipped: %v", i, err)
				}
			}
			other := replyBody(tg, svc, 99, results)
			if err := cl.gss.openReply(xdr.NewDecoder(other)); !errors.Is(err, ErrGSSIntegrity) {
				t.Fatalf("results of another sequence number: %v, want ErrGSSIntegrity", err)
			}
			cl.gss.release()
		})
	}
}

// FuzzGSSOpenReply: no reply body, under any service, makes openReply
// panic or hand on results that did not check.
func FuzzGSSOpenReply(f *testing.F) {
	tg := toyGSS{key: []byte("k")}
	for _, svc := range []GSSService{GSSIntegrity, GSSPrivacy} {
		f.Add(uint8(svc), replyBody(tg, svc, 42, []byte("results!")))
	}
	f.Fuzz(func(t *testing.T, svc uint8, body []byte) {
		s := GSSService(svc%3 + 1)
		cl, _ := toyCall(t, s, nil)
		d := xdr.NewDecoder(body)
		if err := cl.gss.openReply(d); err == nil && s != GSSNone && d.Remaining() > len(body) {
			t.Fatalf("results longer than the body")
		}
		cl.gss.release()
	})
}

// FuzzGSSInitRes: no RPCSEC_GSS_INIT result makes the decoder panic or
// keep more than its bounds allow.
func FuzzGSSInitRes(f *testing.F) {
	var e xdr.Encoder
	e.Opaque([]byte("handle"))
	e.Uint32(0)
	e.Uint32(0)
	e.Uint32(128)
	e.Opaque([]byte("token"))
	f.Add(e.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		var r gssInitRes
		if err := r.UnmarshalXDR(xdr.NewDecoder(b)); err == nil {
			if len(r.handle) > maxGSSHandle || len(r.token) > maxGSSToken {
				t.Fatalf("handle %d or token %d bytes kept", len(r.handle), len(r.token))
			}
		}
	})
}
