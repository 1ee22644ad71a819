package nfs4

import (
	"time"

	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// Sample server results, encoded by hand the way a server lays them out,
// shared by the reply tests, the truncation sweep and the fuzz seeds.

// sampleAttrIDs are the attributes of sampleAttrs, mixing ones Attr keeps
// with ones the decoder must skip (fh_expire_type, link_support, acl,
// filehandle, maxfilesize, time_create, layout_types, sec_label,
// xattr_support).
var sampleAttrIDs = []AttrID{
	AttrSupportedAttrs, AttrType, AttrFHExpireType, AttrChange, AttrSize,
	AttrLinkSupport, AttrFSID, AttrLeaseTime, AttrACL, AttrFilehandle,
	AttrFileID, AttrMaxFileSize, AttrMaxRead, AttrMaxWrite, AttrMode,
	AttrNumLinks, AttrOwner, AttrOwnerGroup, AttrRawDev, AttrSpaceUsed,
	AttrTimeAccess, AttrTimeCreate, AttrTimeMetadata, AttrTimeModify,
	AttrMountedOnFileID, AttrLayoutTypes, AttrSuppAttrExclCreat, AttrSecLabel,
	AttrXattrSupport,
}

var sampleAttrMask = MaskOf(sampleAttrIDs...)

// sampleSupported is the supported_attrs value in sampleAttrs.
var sampleSupported = AttrMask{0xffffffff, 0x00ffffff, 0x0007ffff}

// encSampleAttrs appends the values of sampleAttrIDs in ascending order.
func encSampleAttrs(e *xdr.Encoder) {
	e.Uint32(3) // supported_attrs: 3 words
	e.Uint32(sampleSupported[0])
	e.Uint32(sampleSupported[1])
	e.Uint32(sampleSupported[2])
	e.Uint32(uint32(TypeDirectory)) // type
	e.Uint32(fhPersistent)          // fh_expire_type
	e.Uint64(0x1234)                // change
	e.Uint64(4096)                  // size
	e.Bool(true)                    // link_support
	e.Uint64(1)                     // fsid.major
	e.Uint64(2)                     // fsid.minor
	e.Uint32(90)                    // lease_time
	e.Uint32(1)                     // acl: one nfsace4
	e.Uint32(0)                     //   type ALLOW
	e.Uint32(0)                     //   flag
	e.Uint32(1)                     //   access mask
	e.String("OWNER@")              //   who
	e.Opaque([]byte{1, 2, 3, 4, 5}) // filehandle
	e.Uint64(77)                    // fileid
	e.Uint64(1 << 62)               // maxfilesize
	e.Uint64(1 << 20)               // maxread
	e.Uint64(1 << 19)               // maxwrite
	e.Uint32(0o4755)                // mode
	e.Uint32(3)                     // numlinks
	e.String("1000")                // owner
	e.String("100@example.com")     // owner_group
	e.Uint32(8)                     // rawdev.specdata1
	e.Uint32(1)                     // rawdev.specdata2
	e.Uint64(8192)                  // space_used
	encodeTime(e, time.Unix(1700000000, 1))
	encodeTime(e, time.Unix(1600000000, 0)) // time_create
	encodeTime(e, time.Unix(1700000001, 2))
	encodeTime(e, time.Unix(1700000002, 999999999))
	e.Uint64(76)        // mounted_on_fileid
	e.Uint32(1)         // layout_types: one
	e.Uint32(1)         //   LAYOUT4_NFSV4_1_FILES
	e.Uint32(2)         // suppattr_exclcreat: 2 words
	e.Uint32(0x10)      //   size
	e.Uint32(0x2)       //   mode
	e.Uint32(0)         // sec_label.lfs
	e.Uint32(0)         // sec_label.pi
	e.Opaque([]byte{7}) // sec_label.data
	e.Bool(true)        // xattr_support
}

// wantSampleAttr is what decoding sampleAttrs must give.
var wantSampleAttr = Attr{
	Mask:              sampleAttrMask,
	Supported:         sampleSupported,
	Type:              TypeDirectory,
	Change:            0x1234,
	Size:              4096,
	FSID:              FSID{1, 2},
	LeaseTime:         90 * time.Second,
	FileID:            77,
	MaxRead:           1 << 20,
	MaxWrite:          1 << 19,
	Mode:              0o4755,
	NumLinks:          3,
	Owner:             "1000",
	OwnerGroup:        "100@example.com",
	RawDev:            Device{8, 1},
	SpaceUsed:         8192,
	AccessTime:        time.Unix(1700000000, 1),
	ChangeTime:        time.Unix(1700000001, 2),
	ModTime:           time.Unix(1700000002, 999999999),
	MountedOnFileID:   76,
	SuppAttrExclCreat: MaskOf(AttrSize, AttrMode),
}

// okResults writes a successful result for each operation.
var okResults = map[uint32]func(r *replyEnc){
	opSequence: func(r *replyEnc) {
		r.res(opSequence, OK)
		r.FixedOpaque(sampleSession[:])
		r.Uint32(5)  // sequenceid
		r.Uint32(2)  // slotid
		r.Uint32(63) // highest_slotid
		r.Uint32(31) // target_highest_slotid
		r.Uint32(seqStatusRecallableStateRevoked)
	},
	opGetattr: func(r *replyEnc) {
		r.res(opGetattr, OK)
		r.fattr(sampleAttrMask, encSampleAttrs)
	},
	opSetattr: func(r *replyEnc) {
		r.res(opSetattr, OK)
		r.bitmap(0x10, 0x2) // size, mode
	},
	opGetFH: func(r *replyEnc) {
		r.res(opGetFH, OK)
		r.Opaque([]byte{0xfe, 0xed, 0xfa, 0xce, 0x01})
	},
	opAccess: func(r *replyEnc) {
		r.res(opAccess, OK)
		r.Uint32(0x3f)
		r.Uint32(accessRead | accessLookup)
	},
	opOpen: func(r *replyEnc) {
		r.res(opOpen, OK)
		r.stateid(sampleStateID)
		r.cinfo(changeInfo{true, 10, 11})
		r.Uint32(openResultLockTypePosix)
		r.bitmap(0, 0x2) // mode
		r.Uint32(delegWrite)
		r.stateid(stateID{seqid: 1, other: [12]byte{0xd}})
		r.Bool(false)         // recall
		r.Uint32(limitBlocks) // space limit
		r.Uint32(100)         //   num_blocks
		r.Uint32(512)         //   bytes_per_block
		r.Uint32(0)           // ace type
		r.Uint32(0)           // ace flag
		r.Uint32(0)           // ace mask
		r.String("EVERYONE@") // ace who
	},
	opSetClientID: func(r *replyEnc) {
		r.res(opSetClientID, OK)
		r.Uint64(0x5eed0000c11e)          // clientid
		r.FixedOpaque([]byte("confirm!")) // setclientid_confirm
	},
	opOpenConfirm: func(r *replyEnc) {
		r.res(opOpenConfirm, OK)
		r.stateid(stateID{seqid: 2, other: sampleStateID.other})
	},
	opClose: func(r *replyEnc) {
		r.res(opClose, OK)
		r.stateid(stateID{seqid: 9})
	},
	opOpenDowngrade: func(r *replyEnc) {
		r.res(opOpenDowngrade, OK)
		r.stateid(stateID{seqid: 8, other: sampleStateID.other})
	},
	opRead: func(r *replyEnc) {
		r.res(opRead, OK)
		r.Bool(true)
		r.Opaque([]byte("file data"))
	},
	opWrite: func(r *replyEnc) {
		r.res(opWrite, OK)
		r.Uint32(5)
		r.Uint32(unstable4)
		r.FixedOpaque([]byte("verifier"))
	},
	opCommit: func(r *replyEnc) {
		r.res(opCommit, OK)
		r.FixedOpaque([]byte("verifier"))
	},
	opCreate: func(r *replyEnc) {
		r.res(opCreate, OK)
		r.cinfo(changeInfo{false, 1, 2})
		r.bitmap(0, 0x2)
	},
	opRemove: func(r *replyEnc) {
		r.res(opRemove, OK)
		r.cinfo(changeInfo{true, 3, 4})
	},
	opRename: func(r *replyEnc) {
		r.res(opRename, OK)
		r.cinfo(changeInfo{true, 5, 6})
		r.cinfo(changeInfo{true, 7, 8})
	},
	opLink: func(r *replyEnc) {
		r.res(opLink, OK)
		r.cinfo(changeInfo{false, 9, 10})
	},
	opReadlink: func(r *replyEnc) {
		r.res(opReadlink, OK)
		r.String("../target")
	},
	opReaddir: func(r *replyEnc) {
		r.res(opReaddir, OK)
		r.FixedOpaque([]byte("cookieve"))
		for i, name := range []string{"a", "bb", "ccc"} {
			r.Bool(true) // an entry follows
			r.Uint64(uint64(i + 3))
			r.String(name)
			r.fattr(MaskOf(AttrType, AttrFileID, AttrOwner), func(e *xdr.Encoder) {
				e.Uint32(uint32(TypeRegular))
				e.Uint64(uint64(100 + i))
				e.String("0")
			})
		}
		r.Bool(false) // no more entries
		r.Bool(true)  // eof
	},
	opSecinfoNoName: func(r *replyEnc) {
		r.res(opSecinfoNoName, OK)
		r.Uint32(2)
		r.Uint32(rpc.AuthFlavorGSS)
		r.Opaque([]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}) // krb5 OID
		r.Uint32(0)
		r.Uint32(gssSvcInt)
		r.Uint32(rpc.AuthFlavorSys)
	},
	opTestStateID: func(r *replyEnc) {
		r.res(opTestStateID, OK)
		r.Uint32(2)
		r.Uint32(uint32(OK))
		r.Uint32(uint32(ErrBadStateID))
	},
	opExchangeID: func(r *replyEnc) {
		r.res(opExchangeID, OK)
		r.Uint64(0xc0ffee)
		r.Uint32(1)
		r.Uint32(exchgidFlagUseNonPNFS | exchgidFlagConfirmedR)
		r.Uint32(sp4MachCred)
		r.bitmap(1<<opGetattr, 1<<(opExchangeID-32))
		r.bitmap()
		r.Uint64(42)
		r.Opaque([]byte("server-major"))
		r.Opaque([]byte("scope"))
		r.Uint32(1)
		r.String("kernel.org")
		r.String("Linux 6.1")
		encodeTime(&r.Encoder, time.Unix(1, 0))
	},
	opCreateSession: func(r *replyEnc) {
		r.res(opCreateSession, OK)
		r.FixedOpaque(sampleSession[:])
		r.Uint32(1)
		r.Uint32(0)
		for _, a := range []channelAttrs{
			{maxRequestSize: 1 << 20, maxResponseSize: 1 << 20, maxResponseSizeCached: 4096, maxOperations: 16, maxRequests: 30},
			{maxRequestSize: 4096, maxResponseSize: 4096, maxOperations: 2, maxRequests: 1, hasRDMAIRD: true, rdmaIRD: 3},
		} {
			var c compound
			c.e = &r.Encoder
			encodeChannelAttrs(&c, &a)
		}
	},
	opSeek: func(r *replyEnc) {
		r.res(opSeek, OK)
		r.Bool(false)      // sr_eof
		r.Uint64(16 << 20) // sr_offset
	},
	opCopy: func(r *replyEnc) {
		r.res(opCopy, OK)
		r.Uint32(0)         // wr_callback_id: none, synchronous
		r.Uint64(4 << 20)   // wr_count
		r.Uint32(unstable4) // wr_committed
		r.FixedOpaque([]byte("verifier"))
		r.Bool(true) // cr_consecutive
		r.Bool(true) // cr_synchronous
	},
	opBindConnToSession: func(r *replyEnc) {
		r.res(opBindConnToSession, OK)
		r.FixedOpaque(sampleSession[:])
		r.Uint32(cdfsBoth)
		r.Bool(false)
	},
}

// fuzzLists are the fixed requests the fuzz target and the truncation
// sweep walk replies for; between them they use every decoder.
var fuzzLists = [][]uint32{
	{opSequence, opPutFH, opOpen, opGetFH, opGetattr, opAccess, opRead, opWrite,
		opCommit, opSetattr, opClose},
	{opSequence, opPutFH, opSaveFH, opLookup, opCreate, opRemove, opRename,
		opLink, opReadlink, opReaddir, opRestoreFH, opLookupP, opOpenDowngrade},
	{opExchangeID, opCreateSession, opBindConnToSession, opSecinfoNoName,
		opTestStateID, opFreeStateID, opPutRootFH, opDelegReturn,
		opReclaimComplete, opDestroySession, opDestroyClientID},
	// NFSv4.0's own operations.
	{opSetClientID, opSetClientIDConfirm, opRenew, opPutFH, opOpen, opOpenConfirm, opClose},
	// NFSv4.2's.
	{opSequence, opPutFH, opSeek, opAllocate, opDeallocate, opSaveFH, opPutFH,
		opCopy, opClone, opCommit},
}

// fullReply returns a reply in which every operation of ops succeeded.
func fullReply(ops []uint32) []byte {
	r := newReplyEnc(OK, len(ops))
	for _, op := range ops {
		if w, ok := okResults[op]; ok {
			w(r)
		} else {
			r.res(op, OK)
		}
	}
	return r.Bytes()
}

// failedReply returns a reply in which ops[:k] succeeded and ops[k] failed
// with st.
func failedReply(ops []uint32, k int, st Status) []byte {
	r := newReplyEnc(st, k+1)
	for _, op := range ops[:k] {
		if w, ok := okResults[op]; ok {
			w(r)
		} else {
			r.res(op, OK)
		}
	}
	r.res(ops[k], st)
	if ops[k] == opSetattr {
		r.bitmap() // SETATTR4res carries attrsset even on failure
	}
	return r.Bytes()
}
