package krb5

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// The fuzz targets feed bytes from the network to each parser of this
// package: the server's reply to RPCSEC_GSS_INIT (Complete), its MIC tokens
// (VerifyMIC) and its Wrap tokens (Unwrap). The seeds in
// testdata/fuzz/<target>/ are valid tokens under the fixed keys of
// testContext and fuzzCFX, so the fuzzer starts from inputs that get past
// every check; TestWriteFuzzSeeds rewrites them.

// fuzzCFX is the client's view of an established context under the fixed
// acceptor subkey.
func fuzzCFX(t testing.TB) *cfx {
	c, err := newCFX(testSubkey(), false, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fuzzAcceptor(t testing.TB) *cfx {
	c, err := newCFX(testSubkey(), true, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func FuzzComplete(f *testing.F) {
	f.Fuzz(func(t *testing.T, token []byte) {
		c := testContext(t)
		if err := c.Complete(token); err != nil {
			if _, err := c.AppendMIC(nil, nil); err == nil {
				t.Fatal("a failed Complete left the context usable")
			}
			return
		}
		if _, err := c.AppendMIC(nil, []byte("x")); err != nil {
			t.Fatalf("Complete succeeded but AppendMIC fails: %v", err)
		}
	})
}

func FuzzVerifyMIC(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg, mic []byte) {
		c := fuzzCFX(t)
		if err := c.verifyMIC(msg, mic); err == nil && len(mic) < tokenHeaderLen+c.macLen {
			t.Fatalf("a MIC of %d octets verified", len(mic))
		}
	})
}

func FuzzUnwrap(f *testing.F) {
	f.Fuzz(func(t *testing.T, token []byte) {
		c := fuzzCFX(t)
		prefix := []byte("dst")
		out, err := c.unwrap(prefix, token)
		if err != nil {
			if len(out) != len(prefix) {
				t.Fatal("a failed Unwrap changed dst's length")
			}
			return
		}
		if len(out)-len(prefix) > len(token) {
			t.Fatalf("Unwrap of %d octets gave %d", len(token), len(out)-len(prefix))
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora when KRB5_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KRB5_WRITE_SEEDS") != "1" {
		t.Skip("set KRB5_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	c := testContext(t)
	sub := testSubkey()
	acc := fuzzAcceptor(t)
	w0, _ := acc.appendWrap(nil, []byte("a sealed NFSv4 reply"), 0, 0)
	w1, _ := acc.appendWrap(nil, []byte("rotated, with filler"), 16, 28)
	w2, _ := acc.appendWrap(nil, nil, 0, 0)
	msg := []byte("\x00\x00\x00\x01seq_num")
	seeds := map[string][][]byte{
		"FuzzComplete/ap_rep_subkey":    {apRep(t, c.key, testCTime, testCusec, &sub)},
		"FuzzComplete/ap_rep_no_subkey": {apRep(t, c.key, testCTime, testCusec, nil)},
		"FuzzComplete/krb_error_skew":   {krbErrorToken(t, errorcode.KRB_AP_ERR_SKEW)},
		"FuzzVerifyMIC/reply_verifier":  {msg, acc.appendMIC(nil, msg)},
		"FuzzVerifyMIC/empty_message":   {nil, acc.appendMIC(nil, nil)},
		"FuzzUnwrap/sealed":             {w0},
		"FuzzUnwrap/rotated_filler":     {w1},
		"FuzzUnwrap/empty":              {w2},
	}
	for name, args := range seeds {
		text := "go test fuzz v1\n"
		for _, a := range args {
			text += fmt.Sprintf("[]byte(%q)\n", a)
		}
		path := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
