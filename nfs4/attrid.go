package nfs4

import (
	"fmt"

	"github.com/gonfs/nfs/rpc/xdr"
)

// AttrID is the number of a file attribute, its bit in an fattr4 bitmap
// (FATTR4_* in RFC 8881 §5, RFC 7862 §12.2, RFC 8275, RFC 8276).
type AttrID uint32

// Attribute numbers. The comment gives the RFC name; attributes marked
// "write-only" can be set but the server never returns them.
const (
	AttrSupportedAttrs    AttrID = 0  // supported_attrs
	AttrType              AttrID = 1  // type
	AttrFHExpireType      AttrID = 2  // fh_expire_type
	AttrChange            AttrID = 3  // change
	AttrSize              AttrID = 4  // size
	AttrLinkSupport       AttrID = 5  // link_support
	AttrSymlinkSupport    AttrID = 6  // symlink_support
	AttrNamedAttr         AttrID = 7  // named_attr
	AttrFSID              AttrID = 8  // fsid
	AttrUniqueHandles     AttrID = 9  // unique_handles
	AttrLeaseTime         AttrID = 10 // lease_time
	AttrRdattrError       AttrID = 11 // rdattr_error
	AttrACL               AttrID = 12 // acl
	AttrACLSupport        AttrID = 13 // aclsupport
	AttrArchive           AttrID = 14 // archive
	AttrCanSetTime        AttrID = 15 // cansettime
	AttrCaseInsensitive   AttrID = 16 // case_insensitive
	AttrCasePreserving    AttrID = 17 // case_preserving
	AttrChownRestricted   AttrID = 18 // chown_restricted
	AttrFilehandle        AttrID = 19 // filehandle
	AttrFileID            AttrID = 20 // fileid
	AttrFilesAvail        AttrID = 21 // files_avail
	AttrFilesFree         AttrID = 22 // files_free
	AttrFilesTotal        AttrID = 23 // files_total
	AttrFSLocations       AttrID = 24 // fs_locations
	AttrHidden            AttrID = 25 // hidden
	AttrHomogeneous       AttrID = 26 // homogeneous
	AttrMaxFileSize       AttrID = 27 // maxfilesize
	AttrMaxLink           AttrID = 28 // maxlink
	AttrMaxName           AttrID = 29 // maxname
	AttrMaxRead           AttrID = 30 // maxread
	AttrMaxWrite          AttrID = 31 // maxwrite
	AttrMimeType          AttrID = 32 // mimetype
	AttrMode              AttrID = 33 // mode
	AttrNoTrunc           AttrID = 34 // no_trunc
	AttrNumLinks          AttrID = 35 // numlinks
	AttrOwner             AttrID = 36 // owner
	AttrOwnerGroup        AttrID = 37 // owner_group
	AttrQuotaAvailHard    AttrID = 38 // quota_avail_hard
	AttrQuotaAvailSoft    AttrID = 39 // quota_avail_soft
	AttrQuotaUsed         AttrID = 40 // quota_used
	AttrRawDev            AttrID = 41 // rawdev
	AttrSpaceAvail        AttrID = 42 // space_avail
	AttrSpaceFree         AttrID = 43 // space_free
	AttrSpaceTotal        AttrID = 44 // space_total
	AttrSpaceUsed         AttrID = 45 // space_used
	AttrSystem            AttrID = 46 // system
	AttrTimeAccess        AttrID = 47 // time_access
	AttrTimeAccessSet     AttrID = 48 // time_access_set (write-only)
	AttrTimeBackup        AttrID = 49 // time_backup
	AttrTimeCreate        AttrID = 50 // time_create
	AttrTimeDelta         AttrID = 51 // time_delta
	AttrTimeMetadata      AttrID = 52 // time_metadata
	AttrTimeModify        AttrID = 53 // time_modify
	AttrTimeModifySet     AttrID = 54 // time_modify_set (write-only)
	AttrMountedOnFileID   AttrID = 55 // mounted_on_fileid
	AttrDirNotifDelay     AttrID = 56 // dir_notif_delay
	AttrDirentNotifDelay  AttrID = 57 // dirent_notif_delay
	AttrDACL              AttrID = 58 // dacl
	AttrSACL              AttrID = 59 // sacl
	AttrChangePolicy      AttrID = 60 // change_policy
	AttrFSStatus          AttrID = 61 // fs_status
	AttrFSLayoutTypes     AttrID = 62 // fs_layout_types
	AttrLayoutHint        AttrID = 63 // layout_hint
	AttrLayoutTypes       AttrID = 64 // layout_types
	AttrLayoutBlksize     AttrID = 65 // layout_blksize
	AttrLayoutAlignment   AttrID = 66 // layout_alignment
	AttrFSLocationsInfo   AttrID = 67 // fs_locations_info
	AttrMDSThreshold      AttrID = 68 // mdsthreshold
	AttrRetentionGet      AttrID = 69 // retention_get
	AttrRetentionSet      AttrID = 70 // retention_set
	AttrRetentEvtGet      AttrID = 71 // retentevt_get
	AttrRetentEvtSet      AttrID = 72 // retentevt_set
	AttrRetentionHold     AttrID = 73 // retention_hold
	AttrModeSetMasked     AttrID = 74 // mode_set_masked (write-only)
	AttrSuppAttrExclCreat AttrID = 75 // suppattr_exclcreat
	AttrFSCharsetCap      AttrID = 76 // fs_charset_cap
	AttrCloneBlksize      AttrID = 77 // clone_blksize (NFSv4.2)
	AttrSpaceFreed        AttrID = 78 // space_freed (NFSv4.2)
	AttrChangeAttrType    AttrID = 79 // change_attr_type (NFSv4.2)
	AttrSecLabel          AttrID = 80 // sec_label (NFSv4.2)
	AttrModeUmask         AttrID = 81 // mode_umask (RFC 8275, write-only)
	AttrXattrSupport      AttrID = 82 // xattr_support (RFC 8276)
)

// maskWords is the number of 32-bit words an AttrMask holds.
const maskWords = 3

// maxBitmapWords bounds the words of a bitmap4 accepted from the server.
// Words past maskWords must be zero in attribute lists.
const maxBitmapWords = 8

// AttrMask is a set of attributes laid out as the protocol's bitmap4: the
// bit for attribute n is bit n%32 of word n/32. It holds attributes 0–95,
// which covers every attribute defined so far. The zero value is the empty
// set. An AttrMask is a value; copying it copies the set.
type AttrMask [maskWords]uint32

// MaskOf returns the set of the given attributes. IDs of 96 and above are
// ignored.
func MaskOf(ids ...AttrID) AttrMask {
	var m AttrMask
	for _, id := range ids {
		m.Set(id)
	}
	return m
}

// Has reports whether id is in m.
func (m AttrMask) Has(id AttrID) bool {
	return id < maskWords*32 && m[id/32]&(1<<(id%32)) != 0
}

// Set adds id to m. IDs of 96 and above are ignored.
func (m *AttrMask) Set(id AttrID) {
	if id < maskWords*32 {
		m[id/32] |= 1 << (id % 32)
	}
}

// Clear removes id from m.
func (m *AttrMask) Clear(id AttrID) {
	if id < maskWords*32 {
		m[id/32] &^= 1 << (id % 32)
	}
}

// IsEmpty reports whether m holds no attribute.
func (m AttrMask) IsEmpty() bool { return m == AttrMask{} }

// words returns the number of words the bitmap4 encoding of m needs:
// trailing zero words are not sent.
func (m AttrMask) words() int {
	n := maskWords
	for n > 0 && m[n-1] == 0 {
		n--
	}
	return n
}

// encodeBitmap appends m as a bitmap4.
func encodeBitmap(e *xdr.Encoder, m AttrMask) {
	n := m.words()
	e.Uint32(uint32(n))
	for i := 0; i < n; i++ {
		e.Uint32(m[i])
	}
}

// decodeBitmap reads a bitmap4 of at most maxBitmapWords words. Bits past
// the mask's capacity are dropped; extra reports whether any were set.
func decodeBitmap(d *xdr.Decoder) (m AttrMask, extra bool) {
	n := d.Count(maxBitmapWords, 4)
	for i := 0; i < n; i++ {
		w := d.Uint32()
		if i < maskWords {
			m[i] = w
		} else if w != 0 {
			extra = true
		}
	}
	return m, extra
}

// anyLen is the length bound for opaque values skipped inside an attribute
// list; the real bound is the list's own length.
const anyLen = 1 << 30

// skipAttr consumes the value of attribute id, which this package decodes
// only to get past it. It reports false for attributes whose encoding it
// does not know; their length cannot be found, so the list cannot be read.
func skipAttr(d *xdr.Decoder, id AttrID) bool {
	switch id {
	case AttrFHExpireType, AttrLinkSupport, AttrSymlinkSupport, AttrNamedAttr,
		AttrUniqueHandles, AttrACLSupport, AttrArchive, AttrCanSetTime,
		AttrCaseInsensitive, AttrCasePreserving, AttrChownRestricted,
		AttrHidden, AttrHomogeneous, AttrMaxLink, AttrNoTrunc, AttrSystem,
		AttrLayoutBlksize, AttrLayoutAlignment, AttrFSCharsetCap,
		AttrCloneBlksize, AttrChangeAttrType, AttrXattrSupport:
		d.Skip(4)
	case AttrMaxFileSize, AttrQuotaAvailHard, AttrQuotaAvailSoft,
		AttrQuotaUsed, AttrRetentionHold, AttrModeSetMasked, AttrSpaceFreed,
		AttrModeUmask:
		d.Skip(8)
	case AttrTimeBackup, AttrTimeCreate, AttrTimeDelta, AttrDirNotifDelay,
		AttrDirentNotifDelay:
		d.Skip(12) // nfstime4
	case AttrChangePolicy:
		d.Skip(16)
	case AttrTimeAccessSet, AttrTimeModifySet: // settime4
		if d.Uint32() == setToClientTime {
			d.Skip(12)
		}
	case AttrFilehandle:
		d.Opaque(fhMaxSize)
	case AttrMimeType:
		d.Opaque(anyLen)
	case AttrFSLayoutTypes, AttrLayoutTypes: // layouttype4<>
		d.Skip(4 * d.Count(anyLen, 4))
	case AttrLayoutHint: // layouthint4
		d.Skip(4)
		d.Opaque(anyLen)
	case AttrACL: // nfsace4<>
		skipACEs(d)
	case AttrDACL, AttrSACL: // nfsacl41
		d.Skip(4)
		skipACEs(d)
	case AttrFSStatus: // fs4_status
		d.Skip(8)
		d.Opaque(anyLen)
		d.Opaque(anyLen)
		d.Skip(4 + 12)
	case AttrMDSThreshold: // threshold_item4<>
		n := d.Count(anyLen, 12)
		for i := 0; i < n && d.Err() == nil; i++ {
			d.Skip(4)
			decodeBitmap(d)
			d.Opaque(anyLen)
		}
	case AttrRetentionGet, AttrRetentEvtGet: // uint64, nfstime4<1>
		d.Skip(8)
		d.Skip(12 * d.Count(1, 12))
	case AttrRetentionSet, AttrRetentEvtSet: // bool, uint64<1>
		d.Skip(4)
		d.Skip(8 * d.Count(1, 8))
	case AttrSecLabel: // sec_label4
		d.Skip(8)
		d.Opaque(anyLen)
	default:
		return false
	}
	return true
}

// skipACEs consumes an nfsace4<>.
func skipACEs(d *xdr.Decoder) {
	n := d.Count(anyLen, 16)
	for i := 0; i < n && d.Err() == nil; i++ {
		skipACE(d)
	}
}

// skipACE consumes one nfsace4: type, flag, access mask and who.
func skipACE(d *xdr.Decoder) {
	d.Skip(12)
	d.Opaque(maxOwnerLen)
}

// errUnknownAttr reports an attribute in a reply that cannot be decoded.
func errUnknownAttr(id AttrID) error {
	return fmt.Errorf("nfs4: reply carries attribute %d, which this client cannot decode", id)
}
