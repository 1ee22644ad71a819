package nfs4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
)

// readRequestLists are the READ requests whose data goes straight into the
// caller's buffer: NFSv4.1 and later, and NFSv4.0.
var readRequestLists = [][]uint32{{opSequence, opPutFH, opRead}, {opPutFH, opRead}}

// readCall returns a COMPOUND call of READ into buf, as sent with ops.
func readCall(buf []byte, ops []uint32) *compoundCall {
	cc := &compoundCall{req: &readReq{count: len(buf), buf: buf}}
	cc.cmp.list = *listOf(ops...)
	return cc
}

// decodeRead walks body as the reply to a READ of count bytes, as
// UnmarshalXDR does, the data lifted out of it at at if lifted is not nil. It
// returns the data, eof, and the error's text ("" for none).
func decodeRead(body []byte, ops []uint32, count int, lifted []byte, at int) ([]byte, bool, string) {
	var r reply
	err := r.init(body, listOf(ops...))
	if lifted != nil {
		r.d.Lift(at, lifted)
	}
	if err == nil && ops[0] == opSequence {
		var res sequenceRes
		err = r.sequence(&res)
	}
	if err == nil {
		err = r.statusOnly(opPutFH)
	}
	var data []byte
	var eof bool
	if err == nil {
		data, eof, err = r.read(uint32(count))
	}
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, false, err.Error()
	}
	return data, eof, ""
}

// lift does what the connection's reader does with the answer of
// LocatePayload: the data moves from body into dst, if it fits and is
// there, and out of body. It returns the body left and the data, or body
// and nil.
func lift(body []byte, at int, dst []byte) ([]byte, []byte) {
	if at < 0 || at > len(body)-4 {
		return body, nil
	}
	l := int(binary.BigEndian.Uint32(body[at:]))
	if l > len(dst) || l > len(body)-at-4 {
		return body, nil
	}
	p := dst[:copy(dst[:l], body[at+4:])]
	return slices.Concat(body[:at+4], body[at+4+l:]), p
}

// A successful READ reply is found where its data starts, NFSv4.0 and
// NFSv4.1 alike; a failed operation, another request, or a reply that
// does not match the request is left to be read whole.
func TestLocatePayload(t *testing.T) {
	testutil.CheckLeaks(t)
	data := []byte("hello, payload")
	okReply := func(ops []uint32) []byte {
		r := newReplyEnc(OK, len(ops))
		for _, op := range ops[:len(ops)-1] {
			okResult(r, op)
		}
		r.res(opRead, OK)
		r.Bool(true)
		r.Opaque(data)
		return r.Bytes()
	}
	for _, ops := range readRequestLists {
		body := okReply(ops)
		buf := make([]byte, 64)
		at, dst, ok := readCall(buf, ops).LocatePayload(body)
		if !ok || &dst[0] != &buf[0] || binary.BigEndian.Uint32(body[at:]) != uint32(len(data)) || !bytes.Equal(body[at+4:at+4+len(data)], data) {
			t.Errorf("%v: LocatePayload = %d, %v; want the data's length word", ops, at, ok)
		}
		for name, bad := range map[string][]byte{
			"READ failed":     failedReply(ops, len(ops)-1, ErrAccess),
			"PUTFH failed":    failedReply(ops, len(ops)-2, ErrStale),
			"truncated":       body[:at],
			"more results":    slices.Concat(body[:8], []byte{0, 0, 0, 9}, body[12:]),
			"another request": okReply([]uint32{opPutFH, opRead, opGetattr}[:len(ops)]),
		} {
			if name == "another request" && ops[0] == opPutFH {
				continue
			}
			if _, _, ok := readCall(buf, ops).LocatePayload(bad); ok {
				t.Errorf("%v: %s: LocatePayload says the data is there", ops, name)
			}
		}
	}
	getattr := &compoundCall{req: funcRequest{}}
	getattr.cmp.list = *listOf(opSequence, opPutFH, opRead)
	if _, _, ok := getattr.LocatePayload(okReply(readRequestLists[0])); ok {
		t.Error("a request that is not a READ was given a payload")
	}
}

// FuzzLocatePayload: for any reply to a READ, reading it with its data
// lifted where LocatePayload says decodes to what reading it whole does:
// the same data, eof and error. LocatePayload never panics.
func FuzzLocatePayload(f *testing.F) {
	for i, ops := range readRequestLists {
		r := newReplyEnc(OK, len(ops))
		for _, op := range ops[:len(ops)-1] {
			okResult(r, op)
		}
		r.res(opRead, OK)
		r.Bool(false)
		r.Opaque([]byte("some data"))
		f.Add(uint8(i), uint16(64), r.Bytes())
		f.Add(uint8(i), uint16(4), r.Bytes())
		f.Add(uint8(i), uint16(64), failedReply(ops, len(ops)-1, ErrIO))
	}
	f.Fuzz(func(t *testing.T, which uint8, size uint16, body []byte) {
		ops := readRequestLists[int(which)%len(readRequestLists)]
		buf := make([]byte, size)
		wholeData, wholeEOF, wholeErr := decodeRead(body, ops, len(buf), nil, 0)
		at, dst, ok := readCall(buf, ops).LocatePayload(body)
		if !ok {
			return
		}
		rest, lifted := lift(body, at, dst)
		if lifted == nil {
			return
		}
		data, eof, errText := decodeRead(rest, ops, len(buf), lifted, at)
		if (errText == "") != (wholeErr == "") || !bytes.Equal(data, wholeData) || eof != wholeEOF {
			t.Fatalf("lifted: %q eof %v err %q; whole: %q eof %v err %q",
				fmt.Sprintf("%.20q", data), eof, errText, fmt.Sprintf("%.20q", wholeData), wholeEOF, wholeErr)
		}
	})
}

// okResult appends op's successful result.
func okResult(r *replyEnc, op uint32) {
	if w, ok := okResults[op]; ok {
		w(r)
	} else {
		r.res(op, OK)
	}
}
