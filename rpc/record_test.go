package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// fragments encodes msg as record fragments of at most size bytes.
func fragments(msg []byte, size int) []byte {
	var out []byte
	for {
		n := min(size, len(msg))
		hdr := uint32(n)
		if n == len(msg) {
			hdr |= lastFragment
		}
		out = binary.BigEndian.AppendUint32(out, hdr)
		out = append(out, msg[:n]...)
		msg = msg[n:]
		if len(msg) == 0 {
			return out
		}
	}
}

func readAll(stream []byte, max int) ([][]byte, error) {
	r := recordReader{br: bufio.NewReader(bytes.NewReader(stream)), max: max}
	var recs [][]byte
	for {
		bp, err := r.next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, append([]byte(nil), *bp...))
		bufpool.Put(bp)
	}
}

func TestRecordReaderReassemblesFragments(t *testing.T) {
	testutil.CheckLeaks(t)
	a := bytes.Repeat([]byte("a"), 5000)
	b := []byte("short")
	stream := append(fragments(a, 7), fragments(b, 1000)...)
	stream = append(stream, 0, 0, 0, 0, 0x80, 0, 0, 0) // an empty fragment, then an empty last one
	recs, err := readAll(stream, 1<<20)
	if err != io.EOF || len(recs) != 3 || !bytes.Equal(recs[0], a) || !bytes.Equal(recs[1], b) || len(recs[2]) != 0 {
		t.Fatalf("got %d records, err %v", len(recs), err)
	}
}

func TestRecordReaderRejectsOversizeBeforeAllocating(t *testing.T) {
	testutil.CheckLeaks(t)
	// Two fragments whose sum, not either alone, exceeds the maximum.
	stream := append(binary.BigEndian.AppendUint32(nil, 600), make([]byte, 600)...)
	stream = binary.BigEndian.AppendUint32(stream, lastFragment|600)
	_, err := readAll(stream, 1000)
	var tl *RecordTooLargeError
	if !errors.Is(err, ErrRecordTooLarge) || !errors.As(err, &tl) || tl.Size != 1200 || tl.Max != 1000 {
		t.Fatalf("got %v, want RecordTooLargeError{1200, 1000}", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		r := recordReader{br: bufio.NewReaderSize(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 16), max: DefaultMaxRecord}
		if _, err := r.next(); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRead := (after.TotalAlloc - before.TotalAlloc) / 100; perRead > 4<<10 {
		t.Errorf("a hostile 2 GiB header cost %d bytes of allocation per read", perRead)
	}
}

func TestRecordReaderTruncation(t *testing.T) {
	testutil.CheckLeaks(t)
	stream := fragments([]byte("hello, world"), 5)
	for i := 1; i < len(stream); i++ {
		if _, err := readAll(stream[:i], 1<<20); err != io.ErrUnexpectedEOF && err != io.EOF {
			t.Fatalf("stream cut at %d: %v", i, err)
		}
	}
}

func TestEndRecordMarksOneLastFragment(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	off := beginRecord(&e)
	e.Uint32(42)
	e.String("x")
	if err := endRecord(&e, off); err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(e.Bytes(), 1<<20)
	if err != io.EOF || len(recs) != 1 || len(recs[0]) != 12 {
		t.Fatalf("round trip: %d records %v", len(recs), err)
	}
}

// FuzzRecordReader: any byte stream yields records, each no larger than the
// maximum, or an error — never a panic or a read past the input; and a
// record split into arbitrary fragments reads back unchanged.
func FuzzRecordReader(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 4, 1, 2, 3, 4}, uint16(3))
	f.Add(fragments([]byte("fragmented record"), 3), uint16(1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0))
	f.Add([]byte{0, 0, 0, 0, 0x80, 0, 0, 0}, uint16(7))
	f.Fuzz(func(t *testing.T, stream []byte, size uint16) {
		const max = 1 << 16
		recs, err := readAll(stream, max)
		if err == nil {
			t.Fatal("a finite stream must end in an error")
		}
		for _, r := range recs {
			if len(r) > max {
				t.Fatalf("record of %d bytes exceeds the maximum", len(r))
			}
		}
		if size == 0 || len(stream) > max {
			return
		}
		recs, err = readAll(fragments(stream, int(size)), max)
		if err != io.EOF || len(recs) != 1 || !bytes.Equal(recs[0], stream) {
			t.Fatalf("re-fragmented stream: %d records, %v", len(recs), err)
		}
	})
}
