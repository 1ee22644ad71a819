package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
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

func noClaim([]byte) (int, []byte) { return -1, nil }

func readAll(stream []byte, max int) ([][]byte, error) {
	return readAllLifting(stream, max, noClaim)
}

// readAllLifting reads every record of stream with claim, and returns
// each whole again: a lifted payload is put back where it came from.
func readAllLifting(stream []byte, max int, claim claimFunc) ([][]byte, error) {
	r := recordReader{br: bufio.NewReader(bytes.NewReader(stream)), max: max}
	var recs [][]byte
	for {
		bp, lifted, at, err := r.next(claim)
		if err != nil {
			return recs, err
		}
		rec := append([]byte(nil), *bp...)
		if lifted != nil {
			rec = slices.Concat(rec[:at+4], lifted, rec[at+4:])
		}
		recs = append(recs, rec)
		bufpool.Put(bp)
	}
}

// TestRecordReaderLiftsPayload: the opaque claim names is read into its
// buffer and left out of the record, wherever the data lies against the
// head next reads first; data that does not fit, or runs into the next
// fragment, stays in the record.
func TestRecordReaderLiftsPayload(t *testing.T) {
	testutil.CheckLeaks(t)
	record := func(before, data, after int) []byte {
		b := bytes.Repeat([]byte{'h'}, before)
		b = binary.BigEndian.AppendUint32(b, uint32(data))
		b = append(b, bytes.Repeat([]byte{'d'}, data)...)
		b = append(b, make([]byte, (4-data%4)%4)...)
		return append(b, bytes.Repeat([]byte{'t'}, after)...)
	}
	for _, tc := range []struct {
		name                string
		before, data, after int
		dst, fragment       int
		lifted              bool
	}{
		{"a READ's data", 100, 1 << 20, 0, 1 << 20, 1 << 30, true},
		{"data within the head", 100, 10, 50, 16, 1 << 30, true},
		{"data ending the head", 100, headSize - 104, 0, headSize, 1 << 30, true},
		{"unaligned, results after", 12, 70001, 9, 70001, 1 << 30, true},
		{"empty", 12, 0, 4, 8, 1 << 30, true},
		{"larger than the buffer", 100, 5000, 0, 4999, 1 << 30, false},
		{"past the first fragment", 100, 5000, 0, 5000, 2000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := record(tc.before, tc.data, tc.after)
			dst := make([]byte, tc.dst)
			claim := func(head []byte) (int, []byte) {
				if len(head) != min(len(rec), tc.fragment, headSize) {
					t.Errorf("claim saw %d bytes", len(head))
				}
				return tc.before, dst
			}
			r := recordReader{br: bufio.NewReader(bytes.NewReader(fragments(rec, tc.fragment))), max: 2 << 20}
			bp, lifted, at, err := r.next(claim)
			if err != nil {
				t.Fatal(err)
			}
			defer bufpool.Put(bp)
			if !tc.lifted {
				if lifted != nil || !bytes.Equal(*bp, rec) {
					t.Fatalf("lifted %d bytes; want the record whole", len(lifted))
				}
				return
			}
			if at != tc.before || len(lifted) != tc.data || (tc.data > 0 && &lifted[0] != &dst[0]) {
				t.Fatalf("lifted %d bytes at %d; want %d into dst at %d", len(lifted), at, tc.data, tc.before)
			}
			if !bytes.Equal(lifted, bytes.Repeat([]byte{'d'}, tc.data)) {
				t.Fatal("lifted data differs")
			}
			if want := slices.Concat(rec[:at+4], rec[at+4+tc.data:]); !bytes.Equal(*bp, want) {
				t.Fatalf("record without the data: %q, want %q", *bp, want)
			}
		})
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
		if _, _, _, err := r.next(noClaim); !errors.Is(err, ErrRecordTooLarge) {
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

// FuzzRecordLift: whatever the stream and wherever claim points, a record
// read with its payload lifted is the record read whole once the payload
// is put back, and the payload lands in claim's buffer.
func FuzzRecordLift(f *testing.F) {
	f.Add(fragments([]byte{0, 0, 0, 1, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, 7}, 64), uint16(4), uint16(8))
	f.Add(fragments([]byte{0, 0, 0, 1, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0}, 3), uint16(4), uint16(8))
	f.Add([]byte{0x80, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, uint16(4), uint16(100))
	f.Fuzz(func(t *testing.T, stream []byte, at, dstLen uint16) {
		const max = 1 << 16
		whole, werr := readAll(stream, max)
		dst := make([]byte, dstLen)
		claim := func(head []byte) (int, []byte) { return int(at), dst }
		lifted, lerr := readAllLifting(stream, max, claim)
		if (werr == nil) != (lerr == nil) || len(whole) != len(lifted) {
			t.Fatalf("whole: %d records, %v; lifting: %d records, %v", len(whole), werr, len(lifted), lerr)
		}
		for i := range whole {
			if !bytes.Equal(whole[i], lifted[i]) {
				t.Fatalf("record %d differs once its payload is put back", i)
			}
		}
	})
}
