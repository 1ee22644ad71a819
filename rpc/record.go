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

// next returns the next whole record in a buffer from bufpool; the caller
// owns it and returns it with bufpool.Put.
func (r *recordReader) next() (*[]byte, error) {
	var bp *[]byte
	n := 0
	for frag := 0; ; frag++ {
		if frag == maxFragments {
			bufpool.Put(bp)
			return nil, fmt.Errorf("rpc: record has more than %d fragments", maxFragments)
		}
		h, err := r.br.Peek(4)
		if err != nil {
			bufpool.Put(bp)
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		hdr := binary.BigEndian.Uint32(h)
		r.br.Discard(4)
		flen := int64(hdr & fragmentLenMax)
		if int64(n)+flen > int64(r.max) {
			bufpool.Put(bp)
			return nil, &RecordTooLargeError{Size: int64(n) + flen, Max: r.max}
		}
		need := n + int(flen)
		switch {
		case bp == nil:
			bp = bufpool.Get(need)
		case cap(*bp) < need:
			nb := bufpool.Get(need)
			copy(*nb, (*bp)[:n])
			bufpool.Put(bp)
			bp = nb
		default:
			*bp = (*bp)[:need]
		}
		if _, err := io.ReadFull(r.br, (*bp)[n:need]); err != nil {
			bufpool.Put(bp)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n = need
		if hdr&lastFragment != 0 {
			return bp, nil
		}
	}
}
