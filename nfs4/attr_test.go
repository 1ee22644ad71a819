package nfs4

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc/xdr"
)

// fattrBytes encodes an fattr4 with the given mask and values.
func fattrBytes(mask AttrMask, vals func(e *xdr.Encoder)) []byte {
	var r replyEnc
	r.fattr(mask, vals)
	return r.Bytes()
}

// decodeAttrBytes decodes b as one fattr4 that must fill b exactly.
func decodeAttrBytes(b []byte, a *Attr) error {
	d := xdr.NewDecoder(b)
	decodeFattr(d, a)
	if d.Err() == nil && d.Remaining() != 0 {
		return errors.New("bytes left over")
	}
	return d.Err()
}

func TestFattrDecodeSample(t *testing.T) {
	testutil.CheckLeaks(t)
	var a Attr
	if err := decodeAttrBytes(fattrBytes(sampleAttrMask, encSampleAttrs), &a); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, wantSampleAttr) {
		t.Errorf("got\n%+v\nwant\n%+v", a, wantSampleAttr)
	}
	// Decoding into a used Attr clears fields the new reply lacks.
	if err := decodeAttrBytes(fattrBytes(MaskOf(AttrSize), func(e *xdr.Encoder) { e.Uint64(1) }), &a); err != nil {
		t.Fatal(err)
	}
	if a != (Attr{Mask: MaskOf(AttrSize), Size: 1}) {
		t.Errorf("reused Attr kept old fields: %+v", a)
	}
}

func TestFattrEncodeDecodeRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	s := &sattr{
		mask:       MaskOf(AttrSize, AttrMode, AttrOwner, AttrOwnerGroup, AttrTimeAccessSet, AttrTimeModifySet),
		size:       1 << 33,
		mode:       0o2750,
		owner:      "alice@example.com",
		ownerGroup: "1000",
		atime:      time.Unix(-5, 7), // before 1970: negative seconds
		mtime:      time.Time{},      // server time
	}
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	var e xdr.Encoder
	encodeFattr(&e, s)
	// time_access_set and time_modify_set are write-only, but the decoder
	// knows their layout and skips them, so the rest round-trips.
	var a Attr
	if err := decodeAttrBytes(e.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if a.Mask != s.mask || a.Size != s.size || a.Mode != s.mode || a.Owner != s.owner || a.OwnerGroup != s.ownerGroup {
		t.Errorf("round trip gave %+v", a)
	}
	// The times are on the wire as settime4: check them by hand.
	d := xdr.NewDecoder(e.Bytes())
	decodeBitmap(d)
	v := xdr.NewDecoder(d.Opaque(anyLen))
	v.Uint64()
	v.Uint32()
	v.String(100)
	v.String(100)
	if how := v.Uint32(); how != setToClientTime {
		t.Errorf("atime how = %d", how)
	}
	if got := decodeTime(v); !got.Equal(s.atime) {
		t.Errorf("atime = %v, want %v", got, s.atime)
	}
	if how := v.Uint32(); how != setToServerTime || v.Remaining() != 0 || v.Err() != nil {
		t.Errorf("mtime how = %d, %d bytes left, %v", how, v.Remaining(), v.Err())
	}
}

func TestFattrEmpty(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	encodeFattr(&e, nil)
	encodeFattr(&e, &sattr{})
	want := hexBytes(t, `
		00000000 no bitmap words
		00000000 no values
		00000000 no bitmap words
		00000000 no values
	`)
	if string(e.Bytes()) != string(want) {
		t.Errorf("empty fattr4 = %x", e.Bytes())
	}
}

func TestFattrRejectsHostileInput(t *testing.T) {
	testutil.CheckLeaks(t)
	u64 := func(v uint64) func(e *xdr.Encoder) { return func(e *xdr.Encoder) { e.Uint64(v) } }
	tests := []struct {
		name string
		b    []byte
		want string // a substring of the error
	}{
		{"fs_locations cannot be skipped", fattrBytes(MaskOf(AttrFSLocations), func(e *xdr.Encoder) { e.Uint32(0) }), "attribute 24"},
		{"fs_locations_info cannot be skipped", fattrBytes(MaskOf(AttrFSLocationsInfo), nil), "attribute 67"},
		{"undefined attribute 90", fattrBytes(AttrMask{0, 0, 1 << 26}, u64(0)), "attribute 90"},
		{"attribute 96 and up", hexWords(t, "00000004 00000000 00000000 00000000 00000001 00000000"), "96 or above"},
		{"9 bitmap words", hexWords(t, "00000009"), "length exceeds limit"},
		{"values longer than attributes", fattrBytes(MaskOf(AttrSize), func(e *xdr.Encoder) { e.Uint64(1); e.Uint32(0) }), "longer than its attributes"},
		{"values shorter than attributes", fattrBytes(MaskOf(AttrSize, AttrFileID), u64(1)), "too short"},
		{"attribute list past the input", hexWords(t, "00000001 00000010 00000008 00000000"), "too short"},
		{"nanoseconds of a whole second", fattrBytes(MaskOf(AttrTimeModify), func(e *xdr.Encoder) { e.Int64(1); e.Uint32(1e9) }), "nanoseconds"},
		{"owner over 1024 bytes", fattrBytes(MaskOf(AttrOwner), func(e *xdr.Encoder) { e.String(strings.Repeat("o", 1025)) }), "length exceeds limit"},
		{"acl of 2^30 entries", fattrBytes(MaskOf(AttrACL), func(e *xdr.Encoder) { e.Uint32(1 << 30) }), "too short"},
		{"filehandle over 128 bytes", fattrBytes(MaskOf(AttrFilehandle), func(e *xdr.Encoder) { e.Opaque(make([]byte, 129)) }), "length exceeds limit"},
		{"supported_attrs of 9 words", fattrBytes(MaskOf(AttrSupportedAttrs), func(e *xdr.Encoder) { e.Uint32(9) }), "length exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Attr
			err := decodeAttrBytes(tt.b, &a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFattrSkipsKnownAttributes(t *testing.T) {
	testutil.CheckLeaks(t)
	// Every attribute the decoder can get past, each followed by size so
	// that a wrong length shows as a wrong size.
	skips := map[AttrID]func(e *xdr.Encoder){
		AttrFHExpireType:  func(e *xdr.Encoder) { e.Uint32(0) },
		AttrLinkSupport:   func(e *xdr.Encoder) { e.Bool(true) },
		AttrNamedAttr:     func(e *xdr.Encoder) { e.Bool(false) },
		AttrACLSupport:    func(e *xdr.Encoder) { e.Uint32(3) },
		AttrFilehandle:    func(e *xdr.Encoder) { e.Opaque([]byte{1, 2, 3}) },
		AttrMimeType:      func(e *xdr.Encoder) { e.String("text/plain") },
		AttrQuotaUsed:     func(e *xdr.Encoder) { e.Uint64(5) },
		AttrTimeBackup:    func(e *xdr.Encoder) { encodeTime(e, time.Unix(1, 1)) },
		AttrTimeAccessSet: func(e *xdr.Encoder) { e.Uint32(setToClientTime); encodeTime(e, time.Unix(1, 1)) },
		AttrTimeModifySet: func(e *xdr.Encoder) { e.Uint32(setToServerTime) },
		AttrDACL: func(e *xdr.Encoder) {
			e.Uint32(0)
			e.Uint32(1)
			e.Uint32(0)
			e.Uint32(0)
			e.Uint32(1)
			e.String("OWNER@")
		},
		AttrChangePolicy: func(e *xdr.Encoder) { e.Uint64(1); e.Uint64(2) },
		AttrFSStatus: func(e *xdr.Encoder) {
			e.Bool(false)
			e.Uint32(1)
			e.String("a")
			e.String("bc")
			e.Int32(-1)
			encodeTime(e, time.Unix(0, 0))
		},
		AttrFSLayoutTypes:    func(e *xdr.Encoder) { e.Uint32(2); e.Uint32(1); e.Uint32(3) },
		AttrLayoutHint:       func(e *xdr.Encoder) { e.Uint32(1); e.Opaque([]byte{9}) },
		AttrMDSThreshold:     func(e *xdr.Encoder) { e.Uint32(1); e.Uint32(1); e.Uint32(1); e.Uint32(3); e.Opaque([]byte{1, 2}) },
		AttrRetentionGet:     func(e *xdr.Encoder) { e.Uint64(1); e.Uint32(1); encodeTime(e, time.Unix(2, 0)) },
		AttrRetentionSet:     func(e *xdr.Encoder) { e.Bool(true); e.Uint32(1); e.Uint64(4) },
		AttrModeSetMasked:    func(e *xdr.Encoder) { e.Uint32(0o644); e.Uint32(0o777) },
		AttrSecLabel:         func(e *xdr.Encoder) { e.Uint32(1); e.Uint32(2); e.Opaque([]byte("label")) },
		AttrModeUmask:        func(e *xdr.Encoder) { e.Uint32(0o644); e.Uint32(0o22) },
		AttrChangeAttrType:   func(e *xdr.Encoder) { e.Uint32(1) },
		AttrDirentNotifDelay: func(e *xdr.Encoder) { encodeTime(e, time.Unix(0, 5)) },
	}
	for id, enc := range skips {
		var a Attr
		b := fattrBytes(MaskOf(AttrType, id), func(e *xdr.Encoder) {
			e.Uint32(uint32(TypeFIFO))
			enc(e)
		})
		// Append size (4) after the skipped one when it sorts later, else before.
		if id > AttrSize {
			b = fattrBytes(MaskOf(AttrType, AttrSize, id), func(e *xdr.Encoder) {
				e.Uint32(uint32(TypeFIFO))
				e.Uint64(77)
				enc(e)
			})
		}
		if err := decodeAttrBytes(b, &a); err != nil {
			t.Errorf("attribute %d: %v", id, err)
			continue
		}
		if a.Type != TypeFIFO || (id > AttrSize && a.Size != 77) || !a.Mask.Has(id) {
			t.Errorf("attribute %d: decoded %+v", id, a)
		}
	}
}

func TestFattrDecodeDoesNotAllocate(t *testing.T) {
	testutil.CheckLeaks(t)
	b := fattrBytes(sampleAttrMask, encSampleAttrs)
	var a Attr
	d := xdr.NewDecoder(b)
	decodeFattr(d, &a) // first decode allocates the owner strings
	n := testing.AllocsPerRun(100, func() {
		d.Reset(b)
		decodeFattr(d, &a)
		if d.Err() != nil {
			t.Fatal(d.Err())
		}
	})
	if n != 0 {
		t.Errorf("re-decoding unchanged attributes allocated %v times", n)
	}
}

func TestSattrCheck(t *testing.T) {
	testutil.CheckLeaks(t)
	bad := []sattr{
		{mask: MaskOf(AttrSize, AttrType)},
		{mask: MaskOf(AttrTimeModify)}, // the read-only time, not time_modify_set
		{mask: MaskOf(AttrMode), mode: 0o17777},
		{mask: MaskOf(AttrOwner), owner: ""},
		{mask: MaskOf(AttrOwnerGroup), ownerGroup: strings.Repeat("g", 1025)},
	}
	for _, s := range bad {
		if err := s.check(); err == nil || !strings.HasPrefix(err.Error(), "nfs4: ") {
			t.Errorf("check(%+v) = %v", s, err)
		}
	}
	if err := (&sattr{mask: settable, mode: 0o7777, owner: "a", ownerGroup: "b"}).check(); err != nil {
		t.Errorf("every settable attribute: %v", err)
	}
}

func TestAttrHelpers(t *testing.T) {
	testutil.CheckLeaks(t)
	a := Attr{Type: TypeDirectory, Mode: 0o1755}
	if got := a.FileMode(); got != fs.ModeDir|fs.ModeSticky|0o755 {
		t.Errorf("FileMode = %v", got)
	}
	a = Attr{Type: TypeRegular, Mode: 0o6711}
	if got := a.FileMode(); got != fs.ModeSetuid|fs.ModeSetgid|0o711 {
		t.Errorf("FileMode = %v", got)
	}
	modes := map[FileType]fs.FileMode{
		TypeRegular: 0, TypeDirectory: fs.ModeDir, TypeBlock: fs.ModeDevice,
		TypeChar: fs.ModeDevice | fs.ModeCharDevice, TypeSymlink: fs.ModeSymlink,
		TypeSocket: fs.ModeSocket, TypeFIFO: fs.ModeNamedPipe, TypeAttrDir: fs.ModeDir,
		TypeNamedAttr: fs.ModeIrregular, 0: fs.ModeIrregular, 99: fs.ModeIrregular,
	}
	for typ, m := range modes {
		if typ.Mode() != m {
			t.Errorf("%v.Mode() = %v, want %v", typ, typ.Mode(), m)
		}
	}
	if TypeSymlink.String() != "NF4LNK" || FileType(0).String() != "nfs_ftype4(0)" || FileType(10).String() != "nfs_ftype4(10)" {
		t.Errorf("FileType names: %v %v %v", TypeSymlink, FileType(0), FileType(10))
	}

	ids := []struct {
		s  string
		id uint32
		ok bool
	}{
		{"1000", 1000, true}, {"0", 0, true}, {"4294967295", 4294967295, true},
		{"1000@example.com", 1000, true}, {"4294967296", 0, false},
		{"alice@example.com", 0, false}, {"", 0, false}, {"@x", 0, false},
		{"-1", 0, false}, {"12345678901", 0, false}, {"1 0", 0, false},
	}
	for _, tt := range ids {
		a := Attr{Owner: tt.s, OwnerGroup: tt.s}
		uid, ok1 := a.UID()
		gid, ok2 := a.GID()
		if uid != tt.id || ok1 != tt.ok || gid != tt.id || ok2 != tt.ok {
			t.Errorf("UID/GID(%q) = %d %v, %d %v; want %d %v", tt.s, uid, ok1, gid, ok2, tt.id, tt.ok)
		}
	}
}

func TestAttrMask(t *testing.T) {
	testutil.CheckLeaks(t)
	m := MaskOf(AttrSupportedAttrs, AttrMode, AttrXattrSupport, 96, 1000)
	if m != (AttrMask{1, 1 << 1, 1 << 18}) {
		t.Errorf("MaskOf = %#x", m)
	}
	if !m.Has(AttrMode) || m.Has(AttrSize) || m.Has(96) || m.Has(1<<31) {
		t.Error("Has is wrong")
	}
	m.Clear(AttrMode)
	m.Clear(200)
	if m.Has(AttrMode) || m.IsEmpty() {
		t.Error("Clear is wrong")
	}
	if !(AttrMask{}).IsEmpty() {
		t.Error("zero mask not empty")
	}
	for _, tt := range []struct {
		m    AttrMask
		want string
	}{
		{AttrMask{}, "00000000"},
		{MaskOf(AttrType), "00000001 00000002"},
		{MaskOf(AttrOwner), "00000002 00000000 00000010"},
		{MaskOf(AttrType, AttrSecLabel), "00000003 00000002 00000000 00010000"},
	} {
		var e xdr.Encoder
		encodeBitmap(&e, tt.m)
		if want := hexWords(t, tt.want); string(e.Bytes()) != string(want) {
			t.Errorf("encodeBitmap(%#x) = %x, want %x", tt.m, e.Bytes(), want)
		}
	}
}

// FuzzFattr4 decodes arbitrary bytes as an fattr4. It must never panic; a
// successful decode must be repeatable and report only attributes the
// bitmap held.
func FuzzFattr4(f *testing.F) {
	f.Add(fattrBytes(sampleAttrMask, encSampleAttrs))
	f.Add(fattrBytes(AttrMask{}, nil))
	f.Add(fattrBytes(MaskOf(AttrType, AttrFileID, AttrOwner), func(e *xdr.Encoder) {
		e.Uint32(uint32(TypeRegular))
		e.Uint64(9)
		e.String("0")
	}))
	var e xdr.Encoder
	encodeFattr(&e, &sattr{mask: settable, size: 1, mode: 0o644, owner: "u", ownerGroup: "g",
		atime: time.Unix(1, 2)})
	f.Add(e.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, a2 Attr
		d := xdr.NewDecoder(b)
		decodeFattr(d, &a)
		if err := d.Err(); err != nil {
			if !strings.HasPrefix(err.Error(), "nfs4: ") && !strings.HasPrefix(err.Error(), "xdr: ") {
				t.Fatalf("error without a package prefix: %v", err)
			}
			return
		}
		d2 := xdr.NewDecoder(b)
		decodeFattr(d2, &a2)
		if d2.Err() != nil || d2.Offset() != d.Offset() || a.Mask != a2.Mask || a.Size != a2.Size ||
			a.Owner != a2.Owner || !a.ModTime.Equal(a2.ModTime) {
			t.Fatalf("second decode differs: %+v vs %+v (%v)", a, a2, d2.Err())
		}
		if !a.Mask.Has(AttrOwner) && a.Owner != "" {
			t.Fatalf("owner %q decoded without its bit", a.Owner)
		}
	})
}
