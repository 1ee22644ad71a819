package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/rpc/xdr"
)

// Record marking (RFC 5531 §11): on a byte stream each RPC message is a
// record of one or more fragments, each preceded by a 4-byte header whose
// high bit marks the last fragment and whose low 31 bits give its length.

const (
	lastFragment   = 1 << 31
	fragmentLenMax = lastFragment - 1

	// maxFragments bounds how many fragments one record may have, so that a
	// peer cannot keep the reader busy with endless empty fragments.
	maxFragments = 1 << 16
)

// ErrRecordTooLarge is matched (errors.Is) by a *RecordTooLargeError.
var ErrRecordTooLarge = errors.New("rpc: record too large")

// RecordTooLargeError reports a peer announcing a record larger than the
// configured maximum. The connection it came from is reset: its byte stream
// can no longer be trusted to be in step.
type RecordTooLargeError struct {
	Size int64 // bytes announced so far, including the fragment that overflowed
	Max  int   // the configured maximum
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("rpc: peer announced a record of at least %d bytes, more than the maximum of %d; resetting the connection", e.Size, e.Max)
}

// Is reports whether target is ErrRecordTooLarge.
func (e *RecordTooLargeError) Is(target error) bool { return target == ErrRecordTooLarge }

// beginRecord reserves room for the record marker at the start of e's buffer.
func beginRecord(e *xdr.Encoder) int { return e.Reserve(4) }

// endRecord fills in the marker reserved at off: the rest of the buffer is
// sent as one last fragment, so the whole record goes out in one write.
func endRecord(e *xdr.Encoder, off int) error {
	n := e.Len() - off - 4
	if n > fragmentLenMax {
		return fmt.Errorf("rpc: call of %d bytes exceeds the record-marking limit", n)
	}
	e.PutUint32(off, lastFragment|uint32(n))
	return nil
}

// recordReader reads records from a buffered stream into pooled buffers.
// It never allocates more than max bytes for a record, whatever the headers
// announce: a fragment header is checked against max before its body is read
// or any room is made for it. Owned by one reader goroutine.
type recordReader struct {
	br  *bufio.Reader
	max int
}

// headSize is how much of a record next reads before it asks its claim
// function where a payload lies: enough for the RPC reply header with the
// largest verifier and the results a READ's data follows.
const headSize = 1024

// A claimFunc is given the first bytes of a record (at least the XID,
// unless the record is shorter; at most headSize) and answers where in them
// the length word of an opaque lies whose data is to be read into dst
// rather than into the record; at < 0 for none.
type claimFunc func(head []byte) (at int, dst []byte)

// next returns the next whole record in a buffer from bufpool; the caller
// owns it and returns it with bufpool.Put. It calls claim once, as soon as
// it has the record's first bytes. If claim names a payload that lies in
// the record's first fragment and fits dst, its data is read straight into
// dst (lifted) and left out of the record, which keeps its length word and
// padding; next then returns dst's part and where the length word is
// (xdr.Decoder.Lift). Otherwise the record is whole and lifted nil.
func (r *recordReader) next(claim claimFunc) (bp *[]byte, lifted []byte, liftAt int, err error) {
	defer func() {
		if err != nil {
			bufpool.Put(bp)
			bp, lifted = nil, nil
		}
	}()
	n := 0
	claimed := false
	for frag := 0; ; frag++ {
		if frag == maxFragments {
			return nil, nil, 0, fmt.Errorf("rpc: record has more than %d fragments", maxFragments)
		}
		h, err := r.br.Peek(4)
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return bp, nil, 0, err
		}
		hdr := binary.BigEndian.Uint32(h)
		r.br.Discard(4)
		flen := int64(hdr & fragmentLenMax)
		if int64(n)+flen > int64(r.max) {
			return bp, nil, 0, &RecordTooLargeError{Size: int64(n) + flen, Max: r.max}
		}
		last := hdr&lastFragment != 0
		rest := int(flen) // of this fragment, not yet read
		if !claimed {
			k := min(rest, headSize-n)
			if err := r.read(&bp, n, k); err != nil {
				return bp, nil, 0, err
			}
			n, rest = n+k, rest-k
			if n >= 4 || (last && rest == 0) {
				claimed = true
				at, dst := claim((*bp)[:n])
				if frag == 0 && at >= 0 && at <= n-4 {
					var fromHead int
					lifted, fromHead, err = r.lift(*bp, n, at, dst, rest)
					if err != nil {
						return bp, nil, 0, err
					}
					if lifted != nil {
						rest -= len(lifted) - fromHead
						// What followed the data in head moves up to the length word.
						n = at + 4 + copy((*bp)[at+4:], (*bp)[at+4+fromHead:n])
						*bp = (*bp)[:n]
						liftAt = at
					}
				}
			}
		}
		if rest > 0 {
			if err := r.read(&bp, n, rest); err != nil {
				return bp, nil, 0, err
			}
			n += rest
		}
		if last {
			return bp, lifted, liftAt, nil
		}
	}
}

// lift reads into dst the data of the opaque whose length word is at at in
// head, which holds head[at+4:n] of what follows and the fragment rest bytes
// more: from head first (fromHead bytes), then from the stream. It returns
// the data, or nil if it does not fit dst or runs past the fragment; then
// nothing was read.
func (r *recordReader) lift(head []byte, n, at int, dst []byte, rest int) (p []byte, fromHead int, err error) {
	l := int64(binary.BigEndian.Uint32(head[at:]))
	if l > int64(len(dst)) || l-int64(n-at-4) > int64(rest) {
		return nil, 0, nil
	}
	p = dst[:l]
	fromHead = copy(p, head[at+4:n])
	if _, err := io.ReadFull(r.br, p[fromHead:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	return p, fromHead, nil
}

// read reads k bytes from the stream into the record *bpp at n, making
// room for them.
func (r *recordReader) read(bpp **[]byte, n, k int) error {
	need := n + k
	switch bp := *bpp; {
	case bp == nil:
		*bpp = bufpool.Get(need)
	case cap(*bp) < need:
		nb := bufpool.Get(need)
		copy(*nb, (*bp)[:n])
		bufpool.Put(bp)
		*bpp = nb
	default:
		*bp = (*bp)[:need]
	}
	if _, err := io.ReadFull(r.br, (**bpp)[n:need]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}
