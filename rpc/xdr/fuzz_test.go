package xdr_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// decodeOps runs the reads that ops describe over in and checks, after each
// one, the decoder's invariants: it never reads outside the input, stays
// 4-byte aligned while error-free, keeps its first error, and returns
// results within their bounds that alias the input.
//
// Each op byte selects a read with its low 3 bits and a parameter with the
// other 5.
func decodeOps(t *testing.T, ops, in []byte) {
	d := xdr.NewDecoder(in)
	for _, op := range ops {
		before, prevErr := d.Offset(), d.Err()
		arg := int(op >> 3)
		var opaque []byte // result of an opaque read, checked below
		switch op & 7 {
		case 0:
			if v := d.Uint32(); prevErr != nil && v != 0 {
				t.Fatalf("Uint32 after error = %d", v)
			}
		case 1:
			if v := d.Int64(); prevErr != nil && v != 0 {
				t.Fatalf("Int64 after error = %d", v)
			}
		case 2:
			if v := d.Bool(); d.Err() != nil && v {
				t.Fatal("Bool returned true along with an error")
			}
		case 3:
			opaque = d.Opaque(arg * 8)
			if len(opaque) > arg*8 {
				t.Fatalf("Opaque(%d) returned %d bytes", arg*8, len(opaque))
			}
		case 4:
			s := d.String(arg)
			if len(s) > arg {
				t.Fatalf("String(%d) returned %d bytes", arg, len(s))
			}
			opaque = []byte(s)
		case 5:
			p := d.FixedOpaque(arg)
			if d.Err() == nil && len(p) != arg {
				t.Fatalf("FixedOpaque(%d) returned %d bytes", arg, len(p))
			}
			if d.Err() == nil && arg > 0 && !bytes.Equal(p, in[before:before+arg]) {
				t.Fatalf("FixedOpaque(%d) = % x, input holds % x", arg, p, in[before:before+arg])
			}
		case 6:
			n := d.Count(arg, 4)
			if n > arg || n*4 > d.Remaining() {
				t.Fatalf("Count(%d, 4) = %d with %d bytes left", arg, n, d.Remaining())
			}
		case 7:
			d.Skip(4 * arg)
		}

		if d.Offset() < 0 || d.Offset() > len(in) || d.Offset()+d.Remaining() != len(in) {
			t.Fatalf("Offset() = %d, Remaining() = %d over %d bytes", d.Offset(), d.Remaining(), len(in))
		}
		if prevErr != nil {
			if d.Err() != prevErr {
				t.Fatalf("error changed from %v to %v", prevErr, d.Err())
			}
			if d.Offset() != before {
				t.Fatalf("read after error moved Offset() from %d to %d", before, d.Offset())
			}
			continue
		}
		if err := d.Err(); err != nil {
			if !errors.Is(err, xdr.ErrShort) && !errors.Is(err, xdr.ErrTooLong) &&
				!errors.Is(err, xdr.ErrPadding) && !errors.Is(err, xdr.ErrBool) {
				t.Fatalf("unexpected error %v", err)
			}
			continue
		}
		if d.Offset()%4 != 0 {
			t.Fatalf("Offset() = %d is not 4-byte aligned after op %#x", d.Offset(), op)
		}
		if opaque != nil && !bytes.Equal(opaque, in[before+4:before+4+len(opaque)]) {
			t.Fatalf("opaque result % x does not match the input after its length", opaque)
		}
	}
}

// FuzzDecoder feeds arbitrary input to a sequence of reads chosen by the
// input itself: the low 4 bits of the first byte say how many of the
// following bytes are operations; the rest is the XDR data.
func FuzzDecoder(f *testing.F) {
	testutil.CheckLeaks(f)
	f.Add([]byte{})
	f.Add([]byte{3, 0x00, 0x01, 0x02, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1})
	f.Add([]byte{2, 0x1b, 0x23, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'h', 'i', 0, 0})
	f.Add([]byte{2, 0x1b, 0x00, 0, 0, 0, 3, 'a', 'b', 'c', 1})
	f.Add([]byte{2, 0x86, 0x00, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{3, 0x2d, 0x0f, 0x02, 'x', 'y', 'z', 'w', 'v', 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			decodeOps(t, nil, nil)
			return
		}
		n := min(int(data[0]&15), len(data)-1)
		decodeOps(t, data[1:1+n], data[1+n:])
	})
}

// FuzzRoundTrip checks that whatever is encoded decodes to the same values,
// in a whole number of 4-byte units, and that the length limits hold
// exactly at the encoded length.
func FuzzRoundTrip(f *testing.F) {
	testutil.CheckLeaks(f)
	f.Add(uint32(0), int64(0), false, []byte(nil), "")
	f.Add(uint32(0xffffffff), int64(-1), true, []byte("abc"), "hello")
	f.Add(uint32(7), int64(-9223372036854775808), true, []byte{0, 1, 2, 3}, "x\x00y")
	f.Fuzz(func(t *testing.T, u uint32, h int64, b bool, p []byte, s string) {
		var e xdr.Encoder
		e.Uint32(u)
		e.Int64(h)
		e.Bool(b)
		e.Opaque(p)
		e.String(s)
		e.FixedOpaque(p)
		if e.Len()%4 != 0 {
			t.Fatalf("encoded %d bytes, not a multiple of 4", e.Len())
		}

		d := xdr.NewDecoder(e.Bytes())
		gu, gh, gb := d.Uint32(), d.Int64(), d.Bool()
		gp := d.Opaque(len(p))
		gs := d.String(len(s))
		gf := d.FixedOpaque(len(p))
		if err := d.Err(); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if gu != u || gh != h || gb != b || !bytes.Equal(gp, p) || gs != s || !bytes.Equal(gf, p) {
			t.Fatalf("decoded (%d, %d, %v, %q, %q, %q), want (%d, %d, %v, %q, %q, %q)",
				gu, gh, gb, gp, gs, gf, u, h, b, p, s, p)
		}
		if d.Remaining() != 0 {
			t.Fatalf("%d bytes left after decoding everything", d.Remaining())
		}

		if len(p) > 0 {
			d.Reset(e.Bytes())
			d.Skip(16)
			if d.Opaque(len(p) - 1); !errors.Is(d.Err(), xdr.ErrTooLong) {
				t.Fatalf("Opaque(%d) on %d bytes: Err() = %v, want ErrTooLong", len(p)-1, len(p), d.Err())
			}
		}
	})
}
