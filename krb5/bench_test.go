package krb5

import (
	"testing"
)

// The per-call cost of the tokens, as RPCSEC_GSS pays it: a MIC over a
// call's header (every call), and a 1 MiB WRITE sealed and a 1 MiB READ
// reply opened (krb5p). dst is reused, as the RPC client reuses its
// buffers.

func benchContext(b *testing.B) (*secContext, *cfx) {
	c := testContext(b)
	sub := testSubkey()
	if err := c.Complete(apRep(b, c.key, testCTime, testCusec, &sub)); err != nil {
		b.Fatal(err)
	}
	acc, err := newCFX(sub, true, true, 1)
	if err != nil {
		b.Fatal(err)
	}
	return c, acc
}

func BenchmarkAppendMIC(b *testing.B) {
	c, _ := benchContext(b)
	msg := message(120)
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		dst, _ = c.AppendMIC(dst[:0], msg)
	}
}

func BenchmarkVerifyMIC(b *testing.B) {
	c, acc := benchContext(b)
	msg := message(120)
	mic := acc.appendMIC(nil, msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := c.VerifyMIC(msg, mic); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMIC1MiB(b *testing.B) {
	c, _ := benchContext(b)
	msg := message(1 << 20)
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		dst, _ = c.AppendMIC(dst[:0], msg)
	}
}

func BenchmarkAppendWrap1MiB(b *testing.B) {
	c, _ := benchContext(b)
	msg := message(1 << 20)
	dst := make([]byte, 0, 2<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		dst, _ = c.AppendWrap(dst[:0], msg)
	}
}

func BenchmarkUnwrap1MiB(b *testing.B) {
	for _, rrc := range []uint16{0, 28} {
		b.Run(map[uint16]string{0: "rrc0", 28: "rrc28"}[rrc], func(b *testing.B) {
			c, acc := benchContext(b)
			tok, err := acc.appendWrap(nil, message(1<<20), 0, rrc)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 2<<20)
			b.ReportAllocs()
			b.SetBytes(1 << 20)
			for b.Loop() {
				if dst, err = c.Unwrap(dst[:0], tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
