// Package xdr encodes and decodes the External Data Representation of
// RFC 4506 without reflection.
//
// Encoding appends into a caller-owned byte slice; decoding walks a cursor
// over a byte slice and returns sub-slices of it for opaque data, so neither
// direction allocates for fixed-size values. Every read is bounds-checked:
// malformed input yields an error (sticky, see Decoder.Err), never a panic.
// Variable-length reads take a maximum length so that a hostile length
// prefix cannot drive a large allocation or a long loop.
//
//	var e xdr.Encoder
//	e.Uint32(7)
//	e.String("hello")
//	d := xdr.NewDecoder(e.Bytes())
//	n, s := d.Uint32(), d.String(255)
//	if err := d.Err(); err != nil { ... }
package xdr
