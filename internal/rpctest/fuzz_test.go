package rpctest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// FuzzParseCall checks that any record either fails to decode or decodes to
// a call that encodes back to the same bytes.
func FuzzParseCall(f *testing.F) {
	testutil.CheckLeaks(f)
	var e xdr.Encoder
	for _, w := range []uint32{1, 0, 2, 100003, 4, 1, AuthSys} {
		e.Uint32(w)
	}
	e.Opaque([]byte("machine"))
	e.Uint32(AuthNone)
	e.Opaque(nil)
	e.Uint32(42)
	f.Add(e.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1})

	f.Fuzz(func(t *testing.T, rec []byte) {
		var call Call
		if err := parseCall(rec, &call); err != nil {
			return
		}
		var e xdr.Encoder
		for _, w := range []uint32{call.XID, msgCall, rpcVersion, call.Prog, call.Vers, call.Proc, call.CredFlavor} {
			e.Uint32(w)
		}
		e.Opaque(call.Cred)
		e.Uint32(call.VerfFlavor)
		e.Opaque(call.Verf)
		if got := append(e.Bytes(), call.Args...); !bytes.Equal(got, rec) {
			t.Fatalf("re-encoded %x, want %x", got, rec)
		}
	})
}

// FuzzReadRecord reads an arbitrary stream as records, which must end in an
// error rather than a panic or an endless loop, and checks that data framed
// by appendFragments with any fragment size reads back unchanged.
func FuzzReadRecord(f *testing.F) {
	testutil.CheckLeaks(f)
	f.Add([]byte{0x80, 0, 0, 4, 1, 2, 3, 4}, 0)
	f.Add([]byte{0, 0, 0, 2, 1, 2, 0x80, 0, 0, 1, 3}, 3)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 1)
	f.Add([]byte{}, -1)

	f.Fuzz(func(t *testing.T, stream []byte, size int) {
		br := bufio.NewReader(bytes.NewReader(stream))
		total := 0
		for i := 0; ; i++ {
			if i > len(stream)/4 {
				t.Fatalf("%d records from %d bytes", i, len(stream))
			}
			rec, err := readRecord(br, nil)
			total += len(rec)
			if err != nil {
				if err != io.EOF && !errors.Is(err, errTruncated) && !errors.Is(err, errRecordTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
		}
		if total > len(stream) {
			t.Fatalf("read %d payload bytes from %d", total, len(stream))
		}

		size = max(size%64, 0) // keep the fragment count small
		framed := appendFragments(nil, stream, size)
		br.Reset(bytes.NewReader(framed))
		rec, err := readRecord(br, nil)
		if err != nil || !bytes.Equal(rec, stream) {
			t.Fatalf("round trip with size %d: %x, %v; want %x", size, rec, err, stream)
		}
		if br.Buffered() != 0 {
			t.Fatalf("%d bytes left after the record", br.Buffered())
		}
		if size > 0 && len(stream) > 0 {
			if n := binary.BigEndian.Uint32(framed) &^ lastFragment; int(n) > size {
				t.Fatalf("first fragment of %d bytes, size %d", n, size)
			}
		}
	})
}
