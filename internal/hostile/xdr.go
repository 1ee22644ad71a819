package hostile

import (
	"encoding/binary"
	"errors"
)

// A minimal XDR (RFC 4506) writer and reader of the server's own. They are
// not package rpc/xdr: see the package documentation for why.

// errShort is a call whose arguments end early or announce more than they
// hold.
var errShort = errors.New("hostile: call arguments truncated")

// wbuf appends XDR items to a byte slice.
type wbuf struct{ b []byte }

func (w *wbuf) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *wbuf) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

func (w *wbuf) boolean(v bool) {
	if v {
		w.u32(1)
	} else {
		w.u32(0)
	}
}

// fixed appends p padded to a multiple of 4 bytes, without a length.
func (w *wbuf) fixed(p []byte) {
	w.b = append(w.b, p...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// opaque appends a variable-length opaque or string: length, bytes, padding.
func (w *wbuf) opaque(p []byte) {
	w.u32(uint32(len(p)))
	w.fixed(p)
}

func (w *wbuf) str(s string) { w.opaque([]byte(s)) }

// bitmap appends a bitmap4 of as many words as it takes to hold bits.
func (w *wbuf) bitmap(bits []uint32) {
	var words []uint32
	for _, b := range bits {
		for int(b/32) >= len(words) {
			words = append(words, 0)
		}
		words[b/32] |= 1 << (b % 32)
	}
	w.u32(uint32(len(words)))
	for _, v := range words {
		w.u32(v)
	}
}

// rbuf reads XDR items from a byte slice. The first failure is sticky:
// later reads return zero values and err stays set.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errShort
		r.b = nil
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *rbuf) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (r *rbuf) u64() uint64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// fixed reads n bytes and their padding.
func (r *rbuf) fixed(n int) []byte {
	p := r.take(n)
	r.take((4 - n%4) % 4)
	return p
}

// opaque reads a variable-length opaque of at most limit bytes.
func (r *rbuf) opaque(limit int) []byte {
	n := r.u32()
	if r.err == nil && n > uint32(limit) {
		r.err = errShort
		return nil
	}
	return r.fixed(int(n))
}

// bitmap reads a bitmap4 of at most 8 words.
func (r *rbuf) bitmap() []uint32 {
	n := r.u32()
	if r.err == nil && n > 8 {
		r.err = errShort
		return nil
	}
	words := make([]uint32, 0, n)
	for range n {
		words = append(words, r.u32())
	}
	return words
}

// has reports whether bit is set in the bitmap words.
func has(words []uint32, bit uint32) bool {
	i := int(bit / 32)
	return i < len(words) && words[i]&(1<<(bit%32)) != 0
}
