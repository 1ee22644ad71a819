package xdr

import (
	"encoding/binary"
	"errors"
	"math"
)

// Errors returned by Decoder. Each is sticky: after the first error every
// further read returns a zero value and Err reports that first error.
var (
	// ErrShort means the input ended before the value being read.
	ErrShort = errors.New("xdr: input too short")
	// ErrTooLong means a variable-length item announced more than its maximum
	// (or more than the remaining input could hold).
	ErrTooLong = errors.New("xdr: length exceeds limit")
	// ErrPadding means the 0–3 pad bytes after an opaque or string were not zero.
	ErrPadding = errors.New("xdr: non-zero padding")
	// ErrBool means a boolean was neither 0 nor 1.
	ErrBool = errors.New("xdr: invalid boolean")
)

// pad returns the number of zero bytes that follow n bytes of opaque data.
func pad(n int) int { return (4 - n&3) & 3 }

// Encoder appends XDR values to a byte slice owned by the caller.
// The zero value is ready to use and appends to a nil slice.
// An Encoder is not safe for concurrent use.
//
// One large opaque value per encoding may be kept by reference instead of
// copied (ReferenceFrom, Payload): a WRITE's data then goes from the
// caller's buffer to the socket without a copy into the record.
type Encoder struct {
	b []byte

	refMin int    // Payload keeps p of at least this many bytes by reference; 0: never
	ref    []byte // the payload kept by reference, or nil
	refAt  int    // where in b it belongs: before b[refAt:]
}

// Reset makes the encoder append to buf[:len(buf)], reusing its capacity,
// and forgets any payload kept by reference; ReferenceFrom must be called
// again.
func (e *Encoder) Reset(buf []byte) { e.b, e.refMin, e.ref, e.refAt = buf, 0, nil, 0 }

// ReferenceFrom lets Payload keep one payload of at least n bytes by
// reference until the next Reset; the caller then writes the encoding as
// Bytes()[:at], the payload and Bytes()[at:] (see Referenced), and must
// keep the payload's bytes unchanged while it does. n <= 0 turns it off.
func (e *Encoder) ReferenceFrom(n int) { e.refMin = n }

// Referenced returns the payload kept by reference, if any, and the offset
// in Bytes() before which it belongs.
func (e *Encoder) Referenced() (p []byte, at int) { return e.ref, e.refAt }

// Bytes returns everything encoded so far, including what buf held at
// Reset, except a payload kept by reference (Referenced).
func (e *Encoder) Bytes() []byte { return e.b }

// Len returns the length of the encoding: len(e.Bytes()) and that of a
// payload kept by reference.
func (e *Encoder) Len() int { return len(e.b) + len(e.ref) }

// Uint32 appends an unsigned int.
func (e *Encoder) Uint32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }

// Int32 appends a signed int.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper.
func (e *Encoder) Uint64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

// Int64 appends a signed hyper.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Bool appends a bool as 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// Opaque appends variable-length opaque data: length, bytes, padding.
func (e *Encoder) Opaque(p []byte) {
	e.Uint32(uint32(len(p)))
	e.FixedOpaque(p)
}

// String appends a string with the same layout as Opaque.
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.b = append(e.b, s...)
	e.b = append(e.b, zeros[:pad(len(s))]...)
}

// FixedOpaque appends fixed-length opaque data and its padding (no length).
func (e *Encoder) FixedOpaque(p []byte) {
	e.b = append(e.b, p...)
	e.b = append(e.b, zeros[:pad(len(p))]...)
}

// Payload is FixedOpaque for bulk data, which it keeps by reference if
// ReferenceFrom allows one of its size and none is kept yet.
func (e *Encoder) Payload(p []byte) {
	if e.refMin <= 0 || len(p) < e.refMin || e.ref != nil {
		e.FixedOpaque(p)
		return
	}
	e.ref, e.refAt = p, len(e.b)
	e.b = append(e.b, zeros[:pad(len(p))]...)
}

// Reserve appends n zero bytes and returns their offset, so that a value
// known only later (a length, a count) can be filled in with PutUint32.
func (e *Encoder) Reserve(n int) int {
	off := len(e.b)
	e.b = append(e.b, make([]byte, n)...)
	return off
}

// PutUint32 overwrites 4 bytes at off, an offset in Bytes() (Reserve's).
func (e *Encoder) PutUint32(off int, v uint32) { binary.BigEndian.PutUint32(e.b[off:], v) }

var zeros [4]byte

// Decoder reads XDR values from a byte slice without copying it.
// Byte slices it returns alias the input. Errors are sticky (see Err).
// A Decoder is not safe for concurrent use.
type Decoder struct {
	b   []byte
	off int
	err error

	// lift, if not nil, is the data of the opaque whose length word is at
	// liftAt: the reader of the message put it in a buffer of its own
	// instead of in b, which holds the length word and the padding (Lift).
	lift   []byte
	liftAt int
}

// NewDecoder returns a decoder over b. For a reusable value, use Reset.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Reset makes the decoder read b from its start and clears any error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{b: b} }

// Lift tells the decoder that the data of the opaque whose length word is
// at offset at of its input was read into p instead: the input holds the
// length word, then the padding. Payload returns p when it reaches that
// opaque. Reset forgets it. The decoding mirror of Encoder.Payload: a
// READ's data goes from the connection to the caller's buffer.
func (d *Decoder) Lift(at int, p []byte) { d.lift, d.liftAt = p, at }

// Lifted returns what Lift was given, or nil.
func (d *Decoder) Lifted() (p []byte, at int) { return d.lift, d.liftAt }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// SetErr records err as the decoder's error unless one is already set.
// Callers use it to report semantic errors found while decoding.
func (d *Decoder) SetErr(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.b) - d.off }

// Rest returns the unread bytes without consuming them.
func (d *Decoder) Rest() []byte { return d.b[d.off:] }

// Offset returns how many bytes have been consumed.
func (d *Decoder) Offset() int { return d.off }

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = ErrShort
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// Int32 reads a signed int.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Int64 reads a signed hyper.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Bool reads a bool; any value but 0 or 1 is ErrBool.
func (d *Decoder) Bool() bool {
	v := d.Uint32()
	if v > 1 {
		d.SetErr(ErrBool)
		return false
	}
	return v == 1
}

// length reads a length prefix and checks it against max and the input left.
func (d *Decoder) length(limit int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if uint64(n) > uint64(max(limit, 0)) || uint64(n) > math.MaxInt32 {
		d.err = ErrTooLong
		return 0
	}
	if int(n) > len(d.b)-d.off {
		d.err = ErrShort
		return 0
	}
	return int(n)
}

// Opaque reads variable-length opaque data of at most max bytes (a negative
// max allows none) and consumes
// its padding, which must be zero. The result aliases the input.
func (d *Decoder) Opaque(max int) []byte {
	n := d.length(max)
	if d.err != nil {
		return nil
	}
	return d.FixedOpaque(n)
}

// Payload is Opaque for bulk data: at the opaque Lift named, the data is
// the lifted buffer (its length the one on the wire, checked against limit),
// and the input holds only the padding after the length word.
func (d *Decoder) Payload(limit int) []byte {
	if d.lift == nil || d.off != d.liftAt {
		return d.Opaque(limit)
	}
	n := d.Uint32()
	switch {
	case d.err != nil:
		return nil
	case uint64(n) > uint64(max(limit, 0)):
		d.err = ErrTooLong
		return nil
	case uint64(n) != uint64(len(d.lift)):
		d.err = ErrShort
		return nil
	case !d.padding(int(n)):
		return nil
	}
	return d.lift
}

// padding reads the zero bytes that pad n bytes of opaque data.
func (d *Decoder) padding(n int) bool {
	for _, c := range d.take(pad(n)) {
		if c != 0 {
			d.err = ErrPadding
		}
	}
	return d.err == nil
}

// FixedOpaque reads n bytes of fixed-length opaque data and their padding.
// The result aliases the input.
func (d *Decoder) FixedOpaque(n int) []byte {
	p := d.take(n)
	if d.err != nil || !d.padding(n) {
		return nil
	}
	return p
}

// String reads a string of at most max bytes (it allocates the string).
func (d *Decoder) String(max int) string { return string(d.Opaque(max)) }

// Count reads an array length of at most max elements, each taking at least
// minSize bytes on the wire, and fails if the remaining input cannot hold
// that many. Checking the count up front bounds both loops and allocations
// driven by a hostile length.
func (d *Decoder) Count(max, minSize int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if max < 0 && n > 0 || max >= 0 && uint64(n) > uint64(max) {
		d.err = ErrTooLong
		return 0
	}
	if minSize > 0 && uint64(n)*uint64(minSize) > uint64(len(d.b)-d.off) {
		d.err = ErrShort
		return 0
	}
	return int(n)
}

// Skip consumes n bytes.
func (d *Decoder) Skip(n int) { d.take(n) }
