package nfs4

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gonfs/nfs/rpc/xdr"
)

// hexBytes decodes a golden byte listing: on each line the first field is
// hex (spaces inside it are not allowed), the rest of the line is a comment
// naming the XDR field, as laid out in the RFC.
func hexBytes(t testing.TB, listing string) []byte {
	t.Helper()
	var out []byte
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		b, err := hex.DecodeString(f[0])
		if err != nil {
			t.Fatalf("bad golden line %q: %v", line, err)
		}
		out = append(out, b...)
	}
	return out
}

// replyEnc builds a COMPOUND4res by hand, the way a server would.
type replyEnc struct {
	xdr.Encoder
}

// newReplyEnc starts a reply with the COMPOUND status, an empty tag and n
// results.
func newReplyEnc(status Status, n int) *replyEnc {
	r := &replyEnc{}
	r.Uint32(uint32(status))
	r.String("")
	r.Uint32(uint32(n))
	return r
}

// res starts one result: opcode and status.
func (r *replyEnc) res(op uint32, st Status) *replyEnc {
	r.Uint32(op)
	r.Uint32(uint32(st))
	return r
}

// bitmap appends a bitmap4 of the given words.
func (r *replyEnc) bitmap(words ...uint32) {
	r.Uint32(uint32(len(words)))
	for _, w := range words {
		r.Uint32(w)
	}
}

// stateid appends a stateid4.
func (r *replyEnc) stateid(s stateID) {
	r.Uint32(s.seqid)
	r.FixedOpaque(s.other[:])
}

// cinfo appends a change_info4.
func (r *replyEnc) cinfo(c changeInfo) {
	r.Bool(c.atomic)
	r.Uint64(c.before)
	r.Uint64(c.after)
}

// fattr appends an fattr4 whose values were encoded by vals.
func (r *replyEnc) fattr(mask AttrMask, vals func(e *xdr.Encoder)) {
	encodeBitmap(&r.Encoder, mask)
	var v xdr.Encoder
	if vals != nil {
		vals(&v)
	}
	r.Opaque(v.Bytes())
}

// listOf returns an opList of the given operations.
func listOf(ops ...uint32) *opList {
	var l opList
	l.n = copy(l.ops[:], ops)
	return &l
}

// sampleStateID is a stateid with every byte distinct.
var sampleStateID = stateID{seqid: 7, other: [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}

// sampleSession is a session ID with every byte distinct.
var sampleSession = sessionID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}

// walkAll decodes every result of body for the operations in list with the
// matching decoder, stopping at the first error, then checks the end.
func walkAll(body []byte, list *opList) error {
	var r reply
	if err := r.init(body, list); err != nil {
		return err
	}
	var (
		attr  Attr
		set   AttrMask
		sid   stateID
		ci    changeInfo
		verf  verifier
		codes [4]Status
	)
	for i := 0; i < list.n; i++ {
		var err error
		switch op := list.ops[i]; op {
		case opSequence:
			var res sequenceRes
			err = r.sequence(&res)
		case opGetattr:
			err = r.getattr(&attr)
		case opSetattr:
			err = r.setattr(&set)
		case opGetFH:
			_, err = r.getfh()
		case opAccess:
			var res accessRes
			err = r.access(&res)
		case opOpen:
			var res openRes
			err = r.open(&res)
		case opClose:
			err = r.close(&sid)
		case opOpenDowngrade:
			err = r.openDowngrade(&sid)
		case opRead:
			_, _, err = r.read(1 << 16)
		case opWrite:
			var res writeRes
			err = r.write(1<<16, &res)
		case opCommit:
			err = r.commit(&verf)
		case opCreate:
			var res createRes
			err = r.create(&res)
		case opRemove:
			err = r.remove(&ci)
		case opRename:
			err = r.rename(&ci, &ci)
		case opLink:
			err = r.link(&ci)
		case opReadlink:
			_, err = r.readlink()
		case opReaddir:
			var res readdirRes
			err = r.readdir(&res, func(*dirEntry) error { return nil })
		case opSecinfoNoName:
			var res secinfoRes
			err = r.secinfoNoName(&res)
		case opTestStateID:
			err = r.testStateID(codes[:2])
		case opExchangeID:
			var res exchangeIDRes
			err = r.exchangeID(&res)
		case opCreateSession:
			var res createSessionRes
			err = r.createSession(&res)
		case opBindConnToSession:
			var res bindConnRes
			err = r.bindConnToSession(&res)
		case opSetClientID:
			var res setClientIDRes
			err = r.setClientID(&res)
		case opOpenConfirm:
			err = r.openConfirm(&sid)
		case opSeek:
			var res seekRes
			err = r.seek(&res)
		case opCopy:
			var res copyRes
			err = r.copyRange(1<<30, &res)
		default:
			err = r.statusOnly(op)
		}
		if err != nil {
			return err
		}
	}
	return r.end()
}

// hexWords decodes space-separated hex fields with no comments.
func hexWords(t testing.TB, s string) []byte {
	t.Helper()
	return hexBytes(t, strings.Join(strings.Fields(s), "\n"))
}
