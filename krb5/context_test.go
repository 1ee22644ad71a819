package krb5

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The fixed context the AP-REP tests and fuzz seeds use: the authenticator
// the client sent and the session key of its ticket.
var (
	testCTime = time.Unix(1700000000, 0).UTC()
	testCusec = 123456
)

func testContext(t testing.TB) *secContext {
	return &secContext{
		service: "nfs/server@TEST",
		key:     testKey(t, etypeID.AES256_CTS_HMAC_SHA1_96),
		ctime:   testCTime,
		cusec:   testCusec,
		seq:     77,
		expiry:  testCTime.Add(time.Hour),
	}
}

// testSubkey is the acceptor subkey of the AP-REP seeds.
func testSubkey() types.EncryptionKey {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(0xa0 + i)
	}
	return types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: k}
}

// apRep is an AP-REP as an acceptor makes it: EncAPRepPart encrypted in
// key with usage 12, framed as an RFC 4121 token.
type apRepPart struct {
	CTime  time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec  int                 `asn1:"explicit,tag:1"`
	Subkey types.EncryptionKey `asn1:"optional,explicit,tag:2"`
	Seq    int64               `asn1:"optional,explicit,tag:3"`
}

type apRepNoSubkey struct {
	CTime time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec int       `asn1:"explicit,tag:1"`
	Seq   int64     `asn1:"optional,explicit,tag:3"`
}

type apRepOuter struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

func apRep(t testing.TB, key types.EncryptionKey, ctime time.Time, cusec int, subkey *types.EncryptionKey) []byte {
	t.Helper()
	var part any = apRepNoSubkey{CTime: ctime, Cusec: cusec, Seq: 99}
	if subkey != nil {
		part = apRepPart{CTime: ctime, Cusec: cusec, Subkey: *subkey, Seq: 99}
	}
	b, err := asn1.Marshal(part)
	if err != nil {
		t.Fatal(err)
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(b, key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err = asn1.Marshal(apRepOuter{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		t.Fatal(err)
	}
	return frame(tokIDAPRep, asn1tools.AddASNAppTag(b, asnAppTag.APREP))
}

// frame wraps a Kerberos message in the RFC 2743 framing with its TOK_ID.
func frame(id [2]byte, msg []byte) []byte {
	inner := append(append(bytes.Clone(krb5OID), id[:]...), msg...)
	return append([]byte{0x60}, append(asn1tools.MarshalLengthBytes(len(inner)), inner...)...)
}

func krbErrorToken(t testing.TB, code int32) []byte {
	t.Helper()
	ke := messages.NewKRBError(types.NewPrincipalName(2, "nfs/server"), "TEST", code, "")
	b, err := ke.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return frame(tokIDKRBErr, b)
}

func TestCompleteWithSubkey(t *testing.T) {
	c := testContext(t)
	if _, err := c.AppendMIC(nil, nil); !errors.Is(err, ErrNotEstablished) {
		t.Fatalf("AppendMIC before Complete: %v", err)
	}
	sub := testSubkey()
	if err := c.Complete(apRep(t, c.key, testCTime, testCusec, &sub)); err != nil {
		t.Fatal(err)
	}
	// The server's view: the same subkey, usages mirrored.
	acc, err := newCFX(sub, true, true, 99)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("xdr(seq_window)")
	if err := c.VerifyMIC(msg, acc.appendMIC(nil, msg)); err != nil {
		t.Fatalf("the acceptor's MIC under its subkey: %v", err)
	}
	mic, err := c.AppendMIC(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.verifyMIC(msg, mic); err != nil {
		t.Fatalf("the acceptor rejects the client's MIC: %v", err)
	}
	if mic[2] != flagAcceptorSubkey {
		t.Fatalf("flags %#x, want AcceptorSubkey alone", mic[2])
	}
	w, err := c.AppendWrap(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := acc.unwrap(nil, w); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the acceptor unwraps %q, %v", got, err)
	}
	w, _ = acc.appendWrap(nil, msg, 0, 28)
	if got, err := c.Unwrap(nil, w); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Unwrap gives %q, %v", got, err)
	}
	// Tokens under the session key are refused once there is a subkey.
	old, _ := newCFX(c.key, true, true, 1)
	if err := c.VerifyMIC(msg, old.appendMIC(nil, msg)); !errors.Is(err, ErrToken) {
		t.Fatalf("a MIC under the session key: %v", err)
	}
	if err := c.Complete(apRep(t, c.key, testCTime, testCusec, &sub)); !errors.Is(err, errCompleted) {
		t.Fatalf("second Complete: %v", err)
	}
	if !c.Expiry().Equal(testCTime.Add(time.Hour)) {
		t.Fatalf("Expiry %v", c.Expiry())
	}
}

func TestCompleteWithoutSubkey(t *testing.T) {
	c := testContext(t)
	if err := c.Complete(apRep(t, c.key, testCTime, testCusec, nil)); err != nil {
		t.Fatal(err)
	}
	acc, _ := newCFX(c.key, true, false, 99)
	msg := []byte("reply")
	if err := c.VerifyMIC(msg, acc.appendMIC(nil, msg)); err != nil {
		t.Fatal(err)
	}
	mic, _ := c.AppendMIC(nil, msg)
	if mic[2] != 0 {
		t.Fatalf("flags %#x without a subkey, want 0", mic[2])
	}
}

func TestCompleteRejects(t *testing.T) {
	key := testKey(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	other := testSubkey()
	sub := testSubkey()
	rc4 := types.EncryptionKey{KeyType: etypeID.RC4_HMAC, KeyValue: make([]byte, 16)}
	cases := []struct {
		name  string
		token []byte
		want  error // nil: any error
	}{
		{"empty", nil, nil},
		{"garbage", []byte("not a token"), errFraming},
		{"bad framing length", append(apRep(t, key, testCTime, testCusec, &sub), 0), errFraming},
		{"wrong OID", bytes.Replace(apRep(t, key, testCTime, testCusec, &sub), krb5OID, []byte{6, 9, 42, 134, 72, 134, 247, 18, 1, 2, 3}, 1), errFraming},
		{"AP-REQ TOK_ID", bytes.Replace(apRep(t, key, testCTime, testCusec, &sub), append(bytes.Clone(krb5OID), 2, 0), append(bytes.Clone(krb5OID), 1, 0), 1), errFraming},
		{"other time", apRep(t, key, testCTime.Add(time.Second), testCusec, &sub), nil},
		{"other usec", apRep(t, key, testCTime, testCusec+1, &sub), nil},
		{"other key", apRep(t, other, testCTime, testCusec, &sub), nil},
		{"RC4 subkey", apRep(t, key, testCTime, testCusec, &rc4), ErrEncType},
		{"skew", krbErrorToken(t, errorcode.KRB_AP_ERR_SKEW), ErrClockSkew},
		{"ticket expired", krbErrorToken(t, errorcode.KRB_AP_ERR_TKT_EXPIRED), ErrExpired},
	}
	for _, tc := range cases {
		c := testContext(t)
		err := c.Complete(tc.token)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if _, err := c.AppendWrap(nil, nil); !errors.Is(err, ErrNotEstablished) {
			t.Errorf("%s: AppendWrap after a failed Complete: %v", tc.name, err)
		}
	}
	var ke *KerberosError
	if err := testContext(t).Complete(krbErrorToken(t, errorcode.KRB_AP_ERR_SKEW)); !errors.As(err, &ke) || ke.Code != errorcode.KRB_AP_ERR_SKEW {
		t.Errorf("skew: %v is not a *KerberosError with code 37", err)
	}
}

// TestKDCErrorText reads a KRB-ERROR's code and e-text back from the text
// gokrb5 flattens it into.
func TestKDCErrorText(t *testing.T) {
	gokrb5 := errors.New("[Root cause: KDC_Error] KDC_Error: AS Exchange Error: kerberos error response from KDC: KRB Error: (24) KDC_ERR_PREAUTH_FAILED Pre-authentication information was invalid - PREAUTH_FAILED")
	err := kdcError("AS exchange for alice@R", gokrb5)
	var ke *KerberosError
	if !errors.As(err, &ke) || ke.Code != 24 || ke.Text != "PREAUTH_FAILED" || !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("%#v", err)
	}
	want := "krb5: AS exchange for alice@R: the KDC rejected the password or key: (24) KDC_ERR_PREAUTH_FAILED Pre-authentication information was invalid (PREAUTH_FAILED)"
	if err.Error() != want {
		t.Fatalf("message\n%s, want\n%s", err, want)
	}
	for _, s := range []string{"KRB Error: (", "KRB Error: (x)", "KRB Error: (99999999999)", "KRB Error: )("} {
		if _, ok := codeInText(s); ok {
			t.Errorf("code read from %q", s)
		}
	}
}
