package nfs4

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

func TestReplyFullLists(t *testing.T) {
	testutil.CheckLeaks(t)
	for i, ops := range fuzzLists {
		var l opList
		l.n = copy(l.ops[:], ops)
		if err := walkAll(fullReply(ops), &l); err != nil {
			t.Errorf("list %d: %v", i, err)
		}
	}
}

func TestReplySequenceGetattr(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opSequence, opPutFH, opGetattr)
	body := fullReply(list.ops[:list.n])
	var r reply
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	var seq sequenceRes
	if err := r.sequence(&seq); err != nil {
		t.Fatal(err)
	}
	want := sequenceRes{sampleSession, 5, 2, 63, 31, seqStatusRecallableStateRevoked}
	if seq != want {
		t.Errorf("sequence = %+v, want %+v", seq, want)
	}
	if err := r.statusOnly(opPutFH); err != nil {
		t.Fatal(err)
	}
	var a Attr
	if err := r.getattr(&a); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, wantSampleAttr) {
		t.Errorf("attr =\n%+v\nwant\n%+v", a, wantSampleAttr)
	}
	if err := r.end(); err != nil {
		t.Errorf("end: %v", err)
	}
}

func TestReplyOpenDelegations(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name string
		body func(r *replyEnc)
		want delegation
	}{
		{"none", func(r *replyEnc) { r.Uint32(delegNone) }, delegation{typ: delegNone}},
		{"read", func(r *replyEnc) {
			r.Uint32(delegRead)
			r.stateid(sampleStateID)
			r.Bool(true)
			r.Uint32(0)
			r.Uint32(0)
			r.Uint32(0)
			r.String("OWNER@")
		}, delegation{typ: delegRead, stateID: sampleStateID, recall: true}},
		{"write by size", func(r *replyEnc) {
			r.Uint32(delegWrite)
			r.stateid(sampleStateID)
			r.Bool(false)
			r.Uint32(limitSize)
			r.Uint64(1 << 40)
			r.Uint32(0)
			r.Uint32(0)
			r.Uint32(0)
			r.String("")
		}, delegation{typ: delegWrite, stateID: sampleStateID}},
		{"none_ext contention", func(r *replyEnc) {
			r.Uint32(delegNoneExt)
			r.Uint32(wndContention)
			r.Bool(true)
		}, delegation{typ: delegNoneExt, whyNone: wndContention, willSignal: true}},
		{"none_ext not wanted", func(r *replyEnc) {
			r.Uint32(delegNoneExt)
			r.Uint32(wndNotWanted)
		}, delegation{typ: delegNoneExt, whyNone: wndNotWanted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := newReplyEnc(OK, 2)
			re.res(opOpen, OK)
			re.stateid(sampleStateID)
			re.cinfo(changeInfo{true, 1, 2})
			re.Uint32(openResultLockTypePosix | openResultPreserveUnlinked)
			re.bitmap(0x10)
			tt.body(re)
			okResults[opGetFH](re)
			var r reply
			if err := r.init(re.Bytes(), listOf(opOpen, opGetFH)); err != nil {
				t.Fatal(err)
			}
			var res openRes
			if err := r.open(&res); err != nil {
				t.Fatal(err)
			}
			want := openRes{sampleStateID, changeInfo{true, 1, 2},
				openResultLockTypePosix | openResultPreserveUnlinked, MaskOf(AttrSize), tt.want}
			if res != want {
				t.Errorf("open = %+v, want %+v", res, want)
			}
			// The delegation body was consumed exactly: the next result parses.
			fh, err := r.getfh()
			if err != nil || !bytes.Equal(fh, []byte{0xfe, 0xed, 0xfa, 0xce, 0x01}) {
				t.Errorf("getfh after open = %x, %v", fh, err)
			}
			if err := r.end(); err != nil {
				t.Error(err)
			}
		})
	}
	for _, bad := range []uint32{4, 0xffffffff} {
		re := newReplyEnc(OK, 1)
		re.res(opOpen, OK)
		re.stateid(sampleStateID)
		re.cinfo(changeInfo{})
		re.Uint32(0)
		re.bitmap()
		re.Uint32(bad)
		if err := walkAll(re.Bytes(), listOf(opOpen)); !errors.Is(err, errBadReply) {
			t.Errorf("delegation type %d: err %v, want errBadReply", bad, err)
		}
	}
}

func TestReplyIO(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opRead, opWrite, opCommit)
	body := fullReply(list.ops[:list.n])
	var r reply
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	data, eof, err := r.read(9)
	if err != nil || !eof || string(data) != "file data" {
		t.Fatalf("read = %q, %v, %v", data, eof, err)
	}
	if &data[0] != &body[bytes.Index(body, []byte("file data"))] {
		t.Error("READ data is a copy, not a sub-slice of the reply")
	}
	var w writeRes
	if err := r.write(5, &w); err != nil {
		t.Fatal(err)
	}
	if w != (writeRes{5, unstable4, verifier{'v', 'e', 'r', 'i', 'f', 'i', 'e', 'r'}}) {
		t.Errorf("write = %+v", w)
	}
	var v verifier
	if err := r.commit(&v); err != nil || v != w.verf {
		t.Errorf("commit = %x, %v", v, err)
	}
	if err := r.end(); err != nil {
		t.Error(err)
	}

	// More data than asked for, a count beyond what was sent, an unknown
	// stability: each a malformed reply.
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.read(8); !errors.Is(err, errBadReply) || !errors.Is(err, xdr.ErrTooLong) {
		t.Errorf("READ of 9 bytes for 8 asked: %v", err)
	}
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	r.read(9)
	if err := r.write(4, &w); !errors.Is(err, errBadReply) {
		t.Errorf("WRITE count 5 of 4 sent: %v", err)
	}
	re := newReplyEnc(OK, 1)
	re.res(opWrite, OK)
	re.Uint32(1)
	re.Uint32(3)
	re.FixedOpaque(make([]byte, 8))
	if err := walkAll(re.Bytes(), listOf(opWrite)); !errors.Is(err, errBadReply) {
		t.Errorf("committed 3: %v", err)
	}
}

func TestReplyDirectoryOps(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opCreate, opRemove, opRename, opLink, opReadlink, opAccess, opSetattr)
	var r reply
	if err := r.init(fullReply(list.ops[:list.n]), list); err != nil {
		t.Fatal(err)
	}
	var cr createRes
	if err := r.create(&cr); err != nil || cr != (createRes{changeInfo{false, 1, 2}, MaskOf(AttrMode)}) {
		t.Errorf("create = %+v, %v", cr, err)
	}
	var c1, c2 changeInfo
	if err := r.remove(&c1); err != nil || c1 != (changeInfo{true, 3, 4}) {
		t.Errorf("remove = %+v, %v", c1, err)
	}
	if err := r.rename(&c1, &c2); err != nil || c1 != (changeInfo{true, 5, 6}) || c2 != (changeInfo{true, 7, 8}) {
		t.Errorf("rename = %+v %+v, %v", c1, c2, err)
	}
	if err := r.link(&c1); err != nil || c1 != (changeInfo{false, 9, 10}) {
		t.Errorf("link = %+v, %v", c1, err)
	}
	if target, err := r.readlink(); err != nil || string(target) != "../target" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	var ac accessRes
	if err := r.access(&ac); err != nil || ac != (accessRes{0x3f, accessRead | accessLookup}) {
		t.Errorf("access = %+v, %v", ac, err)
	}
	var set AttrMask
	if err := r.setattr(&set); err != nil || set != MaskOf(AttrSize, AttrMode) {
		t.Errorf("setattr = %v, %v", set, err)
	}
	if err := r.end(); err != nil {
		t.Error(err)
	}
}

func TestReplyReaddir(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opReaddir)
	body := fullReply(list.ops[:1])
	var r reply
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	var got []string
	var res readdirRes
	err := r.readdir(&res, func(e *dirEntry) error {
		got = append(got, fmt.Sprintf("%d:%s:%v:%d:%s", e.cookie, e.name, e.attr.Type, e.attr.FileID, e.attr.Owner))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"3:a:NF4REG:100:0", "4:bb:NF4REG:101:0", "5:ccc:NF4REG:102:0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if !res.eof || res.entries != 3 || string(res.cookieVerf[:]) != "cookieve" {
		t.Errorf("res = eof %v, %d entries, verf %q", res.eof, res.entries, res.cookieVerf[:])
	}
	if err := r.end(); err != nil {
		t.Error(err)
	}

	// A callback error stops the walk and is returned as is.
	stop := errors.New("stop")
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = r.readdir(&res, func(*dirEntry) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("readdir with failing callback: %v after %d calls", err, calls)
	}
	if r.end() != stop {
		t.Error("end after callback error is not sticky")
	}

	// An empty directory.
	re := newReplyEnc(OK, 1)
	re.res(opReaddir, OK)
	re.FixedOpaque(make([]byte, 8))
	re.Bool(false)
	re.Bool(true)
	if err := r.init(re.Bytes(), list); err != nil {
		t.Fatal(err)
	}
	if err := r.readdir(&res, func(*dirEntry) error { t.Error("callback called"); return nil }); err != nil || !res.eof || res.entries != 0 {
		t.Errorf("empty directory: %v, %+v", err, res)
	}
}

func TestReplySessionOps(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opExchangeID, opCreateSession, opBindConnToSession, opSecinfoNoName, opTestStateID)
	var r reply
	if err := r.init(fullReply(list.ops[:list.n]), list); err != nil {
		t.Fatal(err)
	}
	var ex exchangeIDRes
	if err := r.exchangeID(&ex); err != nil {
		t.Fatal(err)
	}
	if ex.clientID != 0xc0ffee || ex.sequenceID != 1 || ex.flags != exchgidFlagUseNonPNFS|exchgidFlagConfirmedR ||
		ex.spHow != sp4MachCred || ex.spMustEnforce != (opMask{1 << opGetattr, 1 << (opExchangeID - 32)}) ||
		ex.spMustAllow != (opMask{}) || ex.serverOwnerMinor != 42 || string(ex.serverOwnerMajor) != "server-major" ||
		string(ex.serverScope) != "scope" || !ex.hasImpl || string(ex.implDomain) != "kernel.org" ||
		string(ex.implName) != "Linux 6.1" || !ex.implDate.Equal(time.Unix(1, 0)) {
		t.Errorf("exchange_id = %+v", ex)
	}
	var cs createSessionRes
	if err := r.createSession(&cs); err != nil {
		t.Fatal(err)
	}
	wantCS := createSessionRes{sampleSession, 1, 0,
		channelAttrs{maxRequestSize: 1 << 20, maxResponseSize: 1 << 20, maxResponseSizeCached: 4096, maxOperations: 16, maxRequests: 30},
		channelAttrs{maxRequestSize: 4096, maxResponseSize: 4096, maxOperations: 2, maxRequests: 1, hasRDMAIRD: true, rdmaIRD: 3}}
	if cs != wantCS {
		t.Errorf("create_session = %+v, want %+v", cs, wantCS)
	}
	var bc bindConnRes
	if err := r.bindConnToSession(&bc); err != nil || bc != (bindConnRes{sampleSession, cdfsBoth, false}) {
		t.Errorf("bind_conn = %+v, %v", bc, err)
	}
	var si secinfoRes
	if err := r.secinfoNoName(&si); err != nil {
		t.Fatal(err)
	}
	if si.n != 2 || si.flavors[0].flavor != rpc.AuthFlavorGSS || len(si.flavors[0].oid) != 9 ||
		si.flavors[0].service != gssSvcInt || si.flavors[1].flavor != rpc.AuthFlavorSys || si.flavors[1].oid != nil {
		t.Errorf("secinfo = %+v", si)
	}
	codes := make([]Status, 2)
	if err := r.testStateID(codes); err != nil || codes[0] != OK || codes[1] != ErrBadStateID {
		t.Errorf("test_stateid = %v, %v", codes, err)
	}
	if err := r.end(); err != nil {
		t.Error(err)
	}

	// TEST_STATEID must answer every stateid sent.
	if err := r.init(fullReply([]uint32{opTestStateID}), listOf(opTestStateID)); err != nil {
		t.Fatal(err)
	}
	if err := r.testStateID(make([]Status, 3)); !errors.Is(err, errBadReply) {
		t.Errorf("2 statuses for 3 stateids: %v", err)
	}
	// SSV state protection was never asked for.
	re := newReplyEnc(OK, 1)
	re.res(opExchangeID, OK)
	re.Uint64(1)
	re.Uint32(1)
	re.Uint32(0)
	re.Uint32(sp4SSV)
	if err := walkAll(re.Bytes(), listOf(opExchangeID)); !errors.Is(err, errBadReply) {
		t.Errorf("SP4_SSV: %v", err)
	}
}

func TestReplyFailureEndsCompound(t *testing.T) {
	testutil.CheckLeaks(t)
	ops := []uint32{opSequence, opPutFH, opLookup, opGetFH, opGetattr}
	list := listOf(ops...)
	body := failedReply(ops, 2, ErrNoEnt)
	var r reply
	if err := r.init(body, list); err != nil {
		t.Fatal(err)
	}
	var seq sequenceRes
	if err := r.sequence(&seq); err != nil {
		t.Fatal(err)
	}
	if err := r.statusOnly(opPutFH); err != nil {
		t.Fatal(err)
	}
	err := r.statusOnly(opLookup)
	if err != ErrNoEnt || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LOOKUP: %v, want ErrNoEnt", err)
	}
	if _, err := r.getfh(); err != ErrNoEnt {
		t.Errorf("GETFH after a failed LOOKUP: %v, want the same ErrNoEnt", err)
	}
	if err := r.end(); err != ErrNoEnt {
		t.Errorf("end: %v", err)
	}

	// SETATTR reports the attributes it set even when it fails.
	re := newReplyEnc(ErrPerm, 1)
	re.res(opSetattr, ErrPerm)
	re.bitmap(0x10)
	if err := r.init(re.Bytes(), listOf(opSetattr)); err != nil {
		t.Fatal(err)
	}
	var set AttrMask
	if err := r.setattr(&set); err != ErrPerm || set != MaskOf(AttrSize) {
		t.Errorf("failed SETATTR = %v, %v; want ErrPerm with size set", set, err)
	}

	// The server stopped before the first operation.
	if err := r.init(newReplyEnc(ErrMinorVersMismatch, 0).Bytes(), list); err != nil {
		t.Fatal(err)
	}
	if err := r.sequence(&seq); err != ErrMinorVersMismatch {
		t.Errorf("no results, compound status MINOR_VERS_MISMATCH: %v", err)
	}

	// The server did not know an operation.
	re = newReplyEnc(ErrOpIllegal, 1)
	re.res(opIllegal, ErrOpIllegal)
	if err := walkAll(re.Bytes(), listOf(opSecinfoNoName)); err != ErrOpIllegal || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("OP_ILLEGAL result: %v", err)
	}
}

func TestReplyProtocolViolations(t *testing.T) {
	testutil.CheckLeaks(t)
	ops := []uint32{opSequence, opPutFH, opGetattr}
	tests := []struct {
		name string
		body func() []byte
		ops  []uint32
	}{
		{"more results than operations", func() []byte {
			b := fullReply(ops)
			return append(b, fullReply([]uint32{opPutFH})[12:]...)
		}, ops[:2]},
		{"result count above operations", func() []byte {
			r := newReplyEnc(OK, 4)
			return r.Bytes()
		}, ops},
		{"result for another operation", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opPutRootFH, OK)
			return r.Bytes()
		}, []uint32{opPutFH}},
		{"ILLEGAL with OK status", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opIllegal, OK)
			return r.Bytes()
		}, []uint32{opPutFH}},
		{"fewer results though OK", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opPutFH, OK)
			return r.Bytes()
		}, []uint32{opPutFH, opGetFH}},
		{"results after a failure", func() []byte {
			r := newReplyEnc(ErrStale, 2)
			r.res(opPutFH, ErrStale)
			r.res(opGetFH, OK)
			r.Opaque([]byte{1})
			return r.Bytes()
		}, []uint32{opPutFH, opGetFH}},
		{"trailing bytes", func() []byte {
			return append(fullReply(ops), 0, 0, 0, 0)
		}, ops},
		{"huge tag", func() []byte {
			return hexWords(t, "00000000 ffffffff")
		}, ops},
		{"tag longer than we send", func() []byte {
			var e xdr.Encoder
			e.Uint32(0)
			e.String(strings.Repeat("t", maxTagLen+1))
			e.Uint32(0)
			return e.Bytes()
		}, ops},
		{"empty file handle", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opGetFH, OK)
			r.Opaque(nil)
			return r.Bytes()
		}, []uint32{opGetFH}},
		{"file handle over 128 bytes", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opGetFH, OK)
			r.Opaque(make([]byte, 129))
			return r.Bytes()
		}, []uint32{opGetFH}},
		{"giant read length", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opRead, OK)
			r.Bool(false)
			r.Uint32(0x7fffffff)
			return r.Bytes()
		}, []uint32{opRead}},
		{"readlink over 4096", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opReadlink, OK)
			r.Opaque(make([]byte, 4097))
			return r.Bytes()
		}, []uint32{opReadlink}},
		{"readdir giant name", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opReaddir, OK)
			r.FixedOpaque(make([]byte, 8))
			r.Bool(true)
			r.Uint64(3)
			r.Uint32(0xfffffff0)
			return r.Bytes()
		}, []uint32{opReaddir}},
		{"readdir empty name", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opReaddir, OK)
			r.FixedOpaque(make([]byte, 8))
			r.Bool(true)
			r.Uint64(3)
			r.String("")
			r.fattr(AttrMask{}, nil)
			r.Bool(false)
			r.Bool(true)
			return r.Bytes()
		}, []uint32{opReaddir}},
		{"readdir bad bool", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opReaddir, OK)
			r.FixedOpaque(make([]byte, 8))
			r.Uint32(2)
			return r.Bytes()
		}, []uint32{opReaddir}},
		{"secinfo too many flavors", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opSecinfoNoName, OK)
			r.Uint32(maxSecinfo + 1)
			for i := 0; i <= maxSecinfo; i++ {
				r.Uint32(rpc.AuthFlavorSys)
			}
			return r.Bytes()
		}, []uint32{opSecinfoNoName}},
		{"bitmap of 9 words", func() []byte {
			r := newReplyEnc(OK, 1)
			r.res(opGetattr, OK)
			r.bitmap(0, 0, 0, 0, 0, 0, 0, 0, 0)
			r.Opaque(nil)
			return r.Bytes()
		}, []uint32{opGetattr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listOf(tt.ops...)
			err := walkAll(tt.body(), l)
			if !errors.Is(err, errBadReply) {
				t.Errorf("err = %v, want errBadReply", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "nfs4: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// A result with trailing data after a failure carries the status too.
	r := newReplyEnc(ErrStale, 2)
	r.res(opPutFH, ErrStale)
	r.res(opGetFH, OK)
	if err := walkAll(r.Bytes(), listOf(opPutFH, opGetFH)); !errors.Is(err, ErrStale) {
		t.Errorf("results after failure: %v does not wrap the status", err)
	}
}

func TestReplyWalkerMisuse(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opPutFH, opGetFH)
	body := fullReply(list.ops[:2])
	var r reply
	r.init(body, list)
	if err := r.statusOnly(opGetFH); err == nil || errors.Is(err, errBadReply) {
		t.Errorf("statusOnly(GETFH): %v, want a caller error", err)
	}
	r.init(body, list)
	if _, err := r.getfh(); err == nil || errors.Is(err, errBadReply) {
		t.Errorf("GETFH where PUTFH was sent: %v, want a caller error", err)
	}
	r.init(body, list)
	r.statusOnly(opPutFH)
	if err := r.end(); err == nil {
		t.Error("end with a result unread succeeded")
	}
	r.init(body, list)
	r.statusOnly(opPutFH)
	r.getfh()
	if err := r.statusOnly(opPutFH); err == nil {
		t.Error("reading past the last operation succeeded")
	}
}

// TestReplyTruncated cuts every valid reply at every offset: each prefix is
// an error, never a panic or a success.
func TestReplyTruncated(t *testing.T) {
	testutil.CheckLeaks(t)
	for i, ops := range fuzzLists {
		l := listOf(ops...)
		bodies := [][]byte{fullReply(ops)}
		for k := range ops {
			bodies = append(bodies, failedReply(ops, k, ErrDelay))
		}
		for _, body := range bodies {
			for n := 0; n < len(body); n++ {
				err := walkAll(body[:n:n], l)
				if err == nil {
					t.Fatalf("list %d: reply cut to %d of %d bytes decoded", i, n, len(body))
				}
			}
			if err := walkAll(body, l); err != nil && !errors.Is(err, ErrDelay) {
				t.Errorf("list %d: whole reply: %v", i, err)
			}
		}
	}
}

func TestReplyDecodersDoNotAllocate(t *testing.T) {
	testutil.CheckLeaks(t)
	ops := []uint32{opSequence, opPutFH, opRead, opWrite, opCommit, opClose, opAccess, opGetFH, opGetattr}
	list := listOf(ops...)
	body := fullReply(ops)
	var (
		r   reply
		seq sequenceRes
		w   writeRes
		v   verifier
		sid stateID
		ac  accessRes
		a   Attr
	)
	walk := func() {
		if err := r.init(body, list); err != nil {
			t.Fatal(err)
		}
		r.sequence(&seq)
		r.statusOnly(opPutFH)
		r.read(1 << 16)
		r.write(1<<16, &w)
		r.commit(&v)
		r.close(&sid)
		r.access(&ac)
		r.getfh()
		if err := r.getattr(&a); err != nil {
			t.Fatal(err)
		}
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
	}
	walk() // the first GETATTR allocates the owner strings
	if n := testing.AllocsPerRun(100, walk); n != 0 {
		t.Errorf("decoding a reply allocated %v times; want 0", n)
	}
}

func BenchmarkDecodeReadReply(b *testing.B) {
	benchDecode(b, opRead, func(re *replyEnc) {
		re.res(opRead, OK)
		re.Bool(false)
		re.Opaque(make([]byte, 4096))
	}, func(r *reply) error {
		_, _, err := r.read(4096)
		return err
	})
}

// FuzzCompoundReply walks arbitrary bytes as the reply to one of the fixed
// requests in fuzzLists, decoding every operation's result. It must never
// panic, and every error must come from this package.
func FuzzCompoundReply(f *testing.F) {
	for i, ops := range fuzzLists {
		f.Add(uint8(i), fullReply(ops))
		f.Add(uint8(i), failedReply(ops, len(ops)/2, ErrStale))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		l := listOf(fuzzLists[int(which)%len(fuzzLists)]...)
		err := walkAll(body, l)
		if err != nil && !strings.HasPrefix(err.Error(), "nfs4: ") {
			t.Fatalf("error without the package prefix: %v", err)
		}
		if err2 := walkAll(body, l); (err == nil) != (err2 == nil) {
			t.Fatalf("second walk disagrees: %v, then %v", err, err2)
		}
	})
}

// BenchmarkDecodeGetattrReply decodes the reply to SEQUENCE, PUTFH,
// GETATTR into an Attr.
func BenchmarkDecodeGetattrReply(b *testing.B) {
	var a Attr
	benchDecode(b, opGetattr, okResults[opGetattr], func(r *reply) error { return r.getattr(&a) })
}

// benchDecode decodes, b.N times, the reply to SEQUENCE, PUTFH and op,
// whose result enc writes and dec reads.
func benchDecode(b *testing.B, op uint32, enc func(*replyEnc), dec func(*reply) error) {
	list := listOf(opSequence, opPutFH, op)
	re := newReplyEnc(OK, 3)
	okResults[opSequence](re)
	re.res(opPutFH, OK)
	enc(re)
	body := re.Bytes()
	var r reply
	var seq sequenceRes
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		r.init(body, list)
		r.sequence(&seq)
		r.statusOnly(opPutFH)
		if err := dec(&r); err != nil {
			b.Fatal(err)
		}
	}
}
