package xdr_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// TestEncodingLayout checks the bytes of each encoder method against the
// RFC 4506 layout written out by hand.
func TestEncodingLayout(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name string
		enc  func(e *xdr.Encoder)
		want []byte
	}{
		{"Uint32", func(e *xdr.Encoder) { e.Uint32(0x01020304) }, []byte{1, 2, 3, 4}},
		{"Int32 negative", func(e *xdr.Encoder) { e.Int32(-2) }, []byte{0xff, 0xff, 0xff, 0xfe}},
		{"Uint64", func(e *xdr.Encoder) { e.Uint64(0x0102030405060708) }, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"Int64 negative", func(e *xdr.Encoder) { e.Int64(-1) }, bytes.Repeat([]byte{0xff}, 8)},
		{"Bool true", func(e *xdr.Encoder) { e.Bool(true) }, []byte{0, 0, 0, 1}},
		{"Bool false", func(e *xdr.Encoder) { e.Bool(false) }, []byte{0, 0, 0, 0}},
		{"Opaque empty", func(e *xdr.Encoder) { e.Opaque(nil) }, []byte{0, 0, 0, 0}},
		{"Opaque 1", func(e *xdr.Encoder) { e.Opaque([]byte("a")) }, []byte{0, 0, 0, 1, 'a', 0, 0, 0}},
		{"Opaque 3", func(e *xdr.Encoder) { e.Opaque([]byte("abc")) }, []byte{0, 0, 0, 3, 'a', 'b', 'c', 0}},
		{"Opaque 4", func(e *xdr.Encoder) { e.Opaque([]byte("abcd")) }, []byte{0, 0, 0, 4, 'a', 'b', 'c', 'd'}},
		{"String 5", func(e *xdr.Encoder) { e.String("hello") },
			[]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0}},
		{"FixedOpaque 2", func(e *xdr.Encoder) { e.FixedOpaque([]byte("ab")) }, []byte{'a', 'b', 0, 0}},
		{"FixedOpaque 0", func(e *xdr.Encoder) { e.FixedOpaque(nil) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e xdr.Encoder
			tt.enc(&e)
			if !bytes.Equal(e.Bytes(), tt.want) {
				t.Errorf("encoded % x, want % x", e.Bytes(), tt.want)
			}
			if e.Len() != len(tt.want) {
				t.Errorf("Len() = %d, want %d", e.Len(), len(tt.want))
			}
		})
	}
}

// TestRoundTrip encodes one value of every kind, at their extremes, and
// decodes them back in order.
func TestRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	e.Uint32(0)
	e.Uint32(math.MaxUint32)
	e.Int32(math.MinInt32)
	e.Int32(math.MaxInt32)
	e.Uint64(math.MaxUint64)
	e.Int64(math.MinInt64)
	e.Bool(true)
	e.Bool(false)
	for n := 0; n <= 9; n++ {
		e.Opaque(bytes.Repeat([]byte{byte(n + 1)}, n))
	}
	e.String("")
	e.String("héllo")
	e.FixedOpaque([]byte{9, 8, 7})
	if e.Len()%4 != 0 {
		t.Fatalf("encoded length %d is not a multiple of 4", e.Len())
	}

	d := xdr.NewDecoder(e.Bytes())
	if got := d.Uint32(); got != 0 {
		t.Errorf("Uint32 = %d, want 0", got)
	}
	if got := d.Uint32(); got != math.MaxUint32 {
		t.Errorf("Uint32 = %d, want MaxUint32", got)
	}
	if got := d.Int32(); got != math.MinInt32 {
		t.Errorf("Int32 = %d, want MinInt32", got)
	}
	if got := d.Int32(); got != math.MaxInt32 {
		t.Errorf("Int32 = %d, want MaxInt32", got)
	}
	if got := d.Uint64(); got != math.MaxUint64 {
		t.Errorf("Uint64 = %d, want MaxUint64", got)
	}
	if got := d.Int64(); got != math.MinInt64 {
		t.Errorf("Int64 = %d, want MinInt64", got)
	}
	if got := d.Bool(); !got {
		t.Errorf("Bool = false, want true")
	}
	if got := d.Bool(); got {
		t.Errorf("Bool = true, want false")
	}
	for n := 0; n <= 9; n++ {
		want := bytes.Repeat([]byte{byte(n + 1)}, n)
		if got := d.Opaque(n); !bytes.Equal(got, want) {
			t.Errorf("Opaque(%d) = % x, want % x", n, got, want)
		}
	}
	if got := d.String(0); got != "" {
		t.Errorf("String = %q, want empty", got)
	}
	if got := d.String(6); got != "héllo" {
		t.Errorf("String = %q, want %q", got, "héllo")
	}
	if got := d.FixedOpaque(3); !bytes.Equal(got, []byte{9, 8, 7}) {
		t.Errorf("FixedOpaque = % x", got)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	if d.Remaining() != 0 || d.Offset() != e.Len() {
		t.Errorf("Remaining() = %d, Offset() = %d after reading all %d bytes", d.Remaining(), d.Offset(), e.Len())
	}
}

// TestLengthLimits checks variable-length reads at exactly their maximum
// and one past it, and lengths the input cannot hold.
func TestLengthLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	enc := func(n int) []byte {
		var e xdr.Encoder
		e.Opaque(bytes.Repeat([]byte{'x'}, n))
		return e.Bytes()
	}
	tests := []struct {
		name    string
		in      []byte
		max     int
		wantErr error
	}{
		{"empty, max 0", enc(0), 0, nil},
		{"exactly max", enc(400), 400, nil},
		{"max+1", enc(401), 400, xdr.ErrTooLong},
		{"one over zero max", enc(1), 0, xdr.ErrTooLong},
		{"length beyond input", []byte{0, 0, 0, 8, 'a', 'b', 'c', 'd'}, 100, xdr.ErrShort},
		{"hostile length", []byte{0xff, 0xff, 0xff, 0xff}, math.MaxInt, xdr.ErrTooLong},
		{"length past MaxInt32", []byte{0x80, 0, 0, 0}, math.MaxInt, xdr.ErrTooLong},
		{"no length", []byte{0, 0}, 100, xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := xdr.NewDecoder(tt.in)
			p := d.Opaque(tt.max)
			if !errors.Is(d.Err(), tt.wantErr) || (tt.wantErr == nil) != (d.Err() == nil) {
				t.Fatalf("Opaque(%d): Err() = %v, want %v", tt.max, d.Err(), tt.wantErr)
			}
			if tt.wantErr != nil && p != nil {
				t.Errorf("Opaque returned %d bytes along with error", len(p))
			}
			d = xdr.NewDecoder(tt.in)
			s := d.String(tt.max)
			if !errors.Is(d.Err(), tt.wantErr) || (tt.wantErr == nil) != (d.Err() == nil) {
				t.Fatalf("String(%d): Err() = %v, want %v", tt.max, d.Err(), tt.wantErr)
			}
			if tt.wantErr != nil && s != "" {
				t.Errorf("String returned %q along with error", s)
			}
		})
	}
}

// TestPadding checks that pad bytes must be present and zero.
func TestPadding(t *testing.T) {
	testutil.CheckLeaks(t)
	for n := 1; n <= 3; n++ {
		var e xdr.Encoder
		e.Opaque(bytes.Repeat([]byte{'y'}, n))
		good := e.Bytes()
		for i := 4 + n; i < len(good); i++ {
			bad := bytes.Clone(good)
			bad[i] = 1
			d := xdr.NewDecoder(bad)
			if p := d.Opaque(10); p != nil || !errors.Is(d.Err(), xdr.ErrPadding) {
				t.Errorf("len %d, pad byte %d set: Opaque = %q, Err() = %v; want ErrPadding", n, i-4-n, p, d.Err())
			}
			d = xdr.NewDecoder(bad[4:])
			if p := d.FixedOpaque(n); p != nil || !errors.Is(d.Err(), xdr.ErrPadding) {
				t.Errorf("len %d, pad byte %d set: FixedOpaque = %q, Err() = %v; want ErrPadding", n, i-4-n, p, d.Err())
			}
		}
		d := xdr.NewDecoder(good[:4+n]) // padding missing
		if p := d.Opaque(10); p != nil || !errors.Is(d.Err(), xdr.ErrShort) {
			t.Errorf("len %d without padding: Opaque = %q, Err() = %v; want ErrShort", n, p, d.Err())
		}
	}
}

func TestBool(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, v := range []uint32{2, 0x100, math.MaxUint32} {
		var e xdr.Encoder
		e.Uint32(v)
		d := xdr.NewDecoder(e.Bytes())
		if d.Bool() || !errors.Is(d.Err(), xdr.ErrBool) {
			t.Errorf("Bool on %#x: Err() = %v, want ErrBool", v, d.Err())
		}
	}
}

// TestShortInput checks that each fixed-size read reports ErrShort on
// input of every length short of what it needs.
func TestShortInput(t *testing.T) {
	testutil.CheckLeaks(t)
	reads := map[string]struct {
		size int
		read func(d *xdr.Decoder)
	}{
		"Uint32":        {4, func(d *xdr.Decoder) { d.Uint32() }},
		"Int32":         {4, func(d *xdr.Decoder) { d.Int32() }},
		"Uint64":        {8, func(d *xdr.Decoder) { d.Uint64() }},
		"Int64":         {8, func(d *xdr.Decoder) { d.Int64() }},
		"Bool":          {4, func(d *xdr.Decoder) { d.Bool() }},
		"FixedOpaque 5": {8, func(d *xdr.Decoder) { d.FixedOpaque(5) }},
		"Skip 6":        {6, func(d *xdr.Decoder) { d.Skip(6) }},
		"Count":         {4, func(d *xdr.Decoder) { d.Count(10, 0) }},
	}
	for name, r := range reads {
		for n := 0; n < r.size; n++ {
			d := xdr.NewDecoder(make([]byte, n))
			r.read(d)
			if !errors.Is(d.Err(), xdr.ErrShort) {
				t.Errorf("%s on %d bytes: Err() = %v, want ErrShort", name, n, d.Err())
			}
		}
		d := xdr.NewDecoder(make([]byte, r.size))
		r.read(d)
		if d.Err() != nil || d.Remaining() != 0 {
			t.Errorf("%s on %d bytes: Err() = %v, Remaining() = %d; want nil, 0", name, r.size, d.Err(), d.Remaining())
		}
	}
}

// TestStickyError checks that after the first error every read returns a
// zero value, consumes nothing and leaves Err unchanged, until Reset.
func TestStickyError(t *testing.T) {
	testutil.CheckLeaks(t)
	in := []byte{0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9}
	d := xdr.NewDecoder(in)
	if d.Bool(); !errors.Is(d.Err(), xdr.ErrBool) {
		t.Fatalf("Err() = %v, want ErrBool", d.Err())
	}
	off := d.Offset()
	if v := d.Uint32(); v != 0 {
		t.Errorf("Uint32 after error = %d, want 0", v)
	}
	if v := d.Uint64(); v != 0 {
		t.Errorf("Uint64 after error = %d, want 0", v)
	}
	if p := d.FixedOpaque(0); p != nil {
		t.Errorf("FixedOpaque after error = %q, want nil", p)
	}
	if n := d.Count(10, 0); n != 0 {
		t.Errorf("Count after error = %d, want 0", n)
	}
	d.SetErr(errors.New("later"))
	d.Skip(4)
	if !errors.Is(d.Err(), xdr.ErrBool) {
		t.Errorf("Err() = %v after more reads and SetErr, want the first error ErrBool", d.Err())
	}
	if d.Offset() != off {
		t.Errorf("Offset() moved from %d to %d after the error", off, d.Offset())
	}

	d.Reset(in[4:])
	if d.Err() != nil || d.Offset() != 0 {
		t.Fatalf("after Reset: Err() = %v, Offset() = %d", d.Err(), d.Offset())
	}
	if v := d.Uint32(); v != 7 {
		t.Errorf("Uint32 after Reset = %d, want 7", v)
	}
	semantic := errors.New("semantic")
	d.SetErr(semantic)
	if d.Err() != semantic || d.Uint64() != 0 {
		t.Errorf("SetErr on a clean decoder: Err() = %v, want it to stick", d.Err())
	}
}

// TestCount checks that array counts are bounded by their maximum and by
// the input left, so a hostile count drives neither a loop nor an
// allocation.
func TestCount(t *testing.T) {
	testutil.CheckLeaks(t)
	counted := func(n uint32, elems int) []byte {
		var e xdr.Encoder
		e.Uint32(n)
		for i := 0; i < elems; i++ {
			e.Uint32(uint32(i))
		}
		return e.Bytes()
	}
	tests := []struct {
		name         string
		in           []byte
		max, minSize int
		want         int
		wantErr      error
	}{
		{"fits", counted(3, 3), 16, 4, 3, nil},
		{"exactly max", counted(16, 16), 16, 4, 16, nil},
		{"max+1", counted(17, 17), 16, 4, 0, xdr.ErrTooLong},
		{"more than input holds", counted(4, 3), 16, 4, 0, xdr.ErrShort},
		{"minSize 8", counted(2, 3), 16, 8, 0, xdr.ErrShort},
		{"hostile count", counted(math.MaxUint32, 0), math.MaxInt, 4, 0, xdr.ErrShort},
		{"hostile count, small max", counted(math.MaxUint32, 0), 1000, 4, 0, xdr.ErrTooLong},
		{"zero", counted(0, 0), 0, 4, 0, nil},
		{"minSize 0 trusts max", counted(5, 0), 5, 0, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := xdr.NewDecoder(tt.in)
			n := d.Count(tt.max, tt.minSize)
			if n != tt.want || !errors.Is(d.Err(), tt.wantErr) || (tt.wantErr == nil) != (d.Err() == nil) {
				t.Errorf("Count(%d, %d) = %d, Err() = %v; want %d, %v", tt.max, tt.minSize, n, d.Err(), tt.want, tt.wantErr)
			}
		})
	}

	hostile := counted(math.MaxUint32, 0)
	var d xdr.Decoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(hostile)
		d.Count(math.MaxInt, 4)
	})
	if allocs != 0 {
		t.Errorf("Count on a hostile count allocated %.1f times, want 0", allocs)
	}
}

// TestReserve checks filling in a length after the data it describes.
func TestReserve(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	e.Uint32(0xaabbccdd)
	off := e.Reserve(4)
	if off != 4 {
		t.Fatalf("Reserve returned offset %d, want 4", off)
	}
	e.String("abc")
	e.PutUint32(off, uint32(e.Len()-off-4))
	want := []byte{0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 8, 0, 0, 0, 3, 'a', 'b', 'c', 0}
	if !bytes.Equal(e.Bytes(), want) {
		t.Errorf("encoded % x, want % x", e.Bytes(), want)
	}
	if off := e.Reserve(0); off != e.Len() || e.Len() != len(want) {
		t.Errorf("Reserve(0) = %d with Len() %d, want both %d", off, e.Len(), len(want))
	}
	d := xdr.NewDecoder(e.Bytes())
	d.Skip(4)
	if body := d.Opaque(8); d.Err() != nil || len(body) != 8 {
		t.Errorf("reserved length does not frame the body: %d bytes, Err() = %v", len(body), d.Err())
	}
}

// TestEncoderReset checks that the encoder appends into the caller's buffer.
func TestEncoderReset(t *testing.T) {
	testutil.CheckLeaks(t)
	buf := make([]byte, 2, 64)
	buf[0], buf[1] = 'h', 'i'
	var e xdr.Encoder
	e.Reset(buf)
	e.Uint32(1)
	got := e.Bytes()
	if !bytes.Equal(got, []byte{'h', 'i', 0, 0, 0, 1}) {
		t.Errorf("encoded % x, want the prefix kept", got)
	}
	if &got[0] != &buf[0] {
		t.Error("encoder did not append into the buffer given to Reset")
	}
}

// TestDecoderAliasing checks that opaque data aliases the input without
// letting an append through the result overwrite the input that follows.
func TestDecoderAliasing(t *testing.T) {
	testutil.CheckLeaks(t)
	in := []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 5}
	d := xdr.NewDecoder(in)
	p := d.Opaque(10)
	in[4] = 'z'
	if p[0] != 'z' {
		t.Error("Opaque copied its result instead of aliasing the input")
	}
	_ = append(p, 'q', 'q', 'q')
	if in[6] != 0 {
		t.Error("appending to an Opaque result overwrote the input after it")
	}
	if !bytes.Equal(d.Rest(), []byte{0, 0, 0, 5}) || d.Remaining() != 4 || d.Offset() != 8 {
		t.Errorf("Rest() = % x, Remaining() = %d, Offset() = %d", d.Rest(), d.Remaining(), d.Offset())
	}
	if v := d.Uint32(); v != 5 {
		t.Errorf("Rest() consumed input: next Uint32 = %d, want 5", v)
	}
}

// TestAllocs checks the hot-path promise: no allocation to decode fixed-size
// values or opaque data, or to encode into a buffer with room.
func TestAllocs(t *testing.T) {
	testutil.CheckLeaks(t)
	var src xdr.Encoder
	src.Uint32(7)
	src.Uint64(8)
	src.Bool(true)
	src.Opaque([]byte("opaque"))
	src.FixedOpaque([]byte("fix"))
	src.Uint32(2)
	in := src.Bytes()

	var d xdr.Decoder
	if a := testing.AllocsPerRun(100, func() {
		d.Reset(in)
		d.Uint32()
		d.Uint64()
		d.Bool()
		d.Opaque(100)
		d.FixedOpaque(3)
		d.Count(10, 0)
	}); a != 0 || d.Err() != nil {
		t.Errorf("decoding allocated %.1f times (Err() = %v), want 0", a, d.Err())
	}

	buf := make([]byte, 0, 256)
	var e xdr.Encoder
	p := []byte("payload")
	if a := testing.AllocsPerRun(100, func() {
		e.Reset(buf)
		e.Uint32(1)
		e.Int64(-1)
		e.Bool(true)
		e.Opaque(p)
		e.String("name")
		e.FixedOpaque(p)
		off := e.Reserve(4)
		e.PutUint32(off, 9)
	}); a != 0 {
		t.Errorf("encoding with capacity allocated %.1f times, want 0", a)
	}
}

// A payload of at least ReferenceFrom's size is kept by reference, once
// per encoding: Bytes leaves it out (its padding stays, where it
// belongs), Len counts it, and the three pieces written in order are the
// encoding FixedOpaque would have made. Smaller ones, a second one, and
// any after Reset are copied.
func TestPayloadByReference(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 1001) // 3 bytes of padding
	small := []byte{1, 2, 3}
	var want xdr.Encoder
	want.Uint32(9)
	want.FixedOpaque(big)
	want.FixedOpaque(small)
	want.FixedOpaque(big)
	want.Uint32(10)

	var e xdr.Encoder
	e.ReferenceFrom(1000)
	e.Uint32(9)
	e.Payload(big)
	e.Payload(small)
	e.Payload(big) // a second: copied
	e.Uint32(10)
	p, at := e.Referenced()
	if &p[0] != &big[0] || len(p) != len(big) || at != 4 {
		t.Fatalf("Referenced() = %d bytes at %d; want the first payload itself at 4", len(p), at)
	}
	if e.Len() != want.Len() || len(e.Bytes()) != want.Len()-len(big) {
		t.Fatalf("Len %d, len(Bytes) %d; want %d and %d", e.Len(), len(e.Bytes()), want.Len(), want.Len()-len(big))
	}
	got := append(append(append([]byte(nil), e.Bytes()[:at]...), p...), e.Bytes()[at:]...)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the pieces in order differ from FixedOpaque's encoding")
	}

	e.Reset(nil)
	e.Payload(big)
	if p, _ := e.Referenced(); p != nil || !bytes.Equal(e.Bytes(), want.Bytes()[4:4+len(big)+3]) {
		t.Fatal("after Reset a payload was kept by reference without ReferenceFrom")
	}
}
