package nfs4

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/gonfs/nfs/rpc/xdr"
)

// FileType is an nfs_ftype4: the type of a file system object.
type FileType uint32

// File types (RFC 8881 §5.8.1.2).
const (
	TypeRegular   FileType = 1 // NF4REG: regular file
	TypeDirectory FileType = 2 // NF4DIR: directory
	TypeBlock     FileType = 3 // NF4BLK: block device
	TypeChar      FileType = 4 // NF4CHR: character device
	TypeSymlink   FileType = 5 // NF4LNK: symbolic link
	TypeSocket    FileType = 6 // NF4SOCK: socket
	TypeFIFO      FileType = 7 // NF4FIFO: named pipe
	TypeAttrDir   FileType = 8 // NF4ATTRDIR: named-attribute directory
	TypeNamedAttr FileType = 9 // NF4NAMEDATTR: named attribute
)

var fileTypeNames = [...]string{
	TypeRegular: "NF4REG", TypeDirectory: "NF4DIR", TypeBlock: "NF4BLK",
	TypeChar: "NF4CHR", TypeSymlink: "NF4LNK", TypeSocket: "NF4SOCK",
	TypeFIFO: "NF4FIFO", TypeAttrDir: "NF4ATTRDIR", TypeNamedAttr: "NF4NAMEDATTR",
}

// String returns the RFC name of t, such as "NF4DIR".
func (t FileType) String() string {
	if int64(t) < int64(len(fileTypeNames)) && fileTypeNames[t] != "" {
		return fileTypeNames[t]
	}
	return "nfs_ftype4(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Mode returns the fs.FileMode type bits for t: fs.ModeDir for a
// directory, 0 for a regular file, fs.ModeIrregular for types io/fs has no
// bit for (named attributes).
func (t FileType) Mode() fs.FileMode {
	switch t {
	case TypeRegular:
		return 0
	case TypeDirectory, TypeAttrDir:
		return fs.ModeDir
	case TypeBlock:
		return fs.ModeDevice
	case TypeChar:
		return fs.ModeDevice | fs.ModeCharDevice
	case TypeSymlink:
		return fs.ModeSymlink
	case TypeSocket:
		return fs.ModeSocket
	case TypeFIFO:
		return fs.ModeNamedPipe
	}
	return fs.ModeIrregular
}

// FSID identifies the server file system an object lives on (fsid4).
type FSID struct {
	Major, Minor uint64
}

// Device is the major and minor number of a device file (specdata4).
type Device struct {
	Major, Minor uint32
}

// Mode bits of the mode attribute (MODE4_*, RFC 8881 §6.2.4). They have
// the values of their POSIX counterparts.
const (
	modeSUID = 0o4000 // MODE4_SUID
	modeSGID = 0o2000 // MODE4_SGID
	modeSVTX = 0o1000 // MODE4_SVTX
	modeMask = 0o7777 // every bit the mode attribute defines
)

// Attr holds the attributes of one file as the server returned them in a
// GETATTR, READDIR entry or similar. Mask says which fields were returned;
// the others hold their zero values. An Attr is a plain value; it is not
// safe for concurrent use while being decoded into.
type Attr struct {
	// Mask is the set of attributes the server returned (the fattr4
	// bitmap), including ones Attr has no field for.
	Mask AttrMask

	Supported         AttrMask      // supported_attrs: what the file system supports (attributes 0–95)
	Type              FileType      // type
	Change            uint64        // change: changes whenever data or metadata change
	Size              uint64        // size in bytes
	FSID              FSID          // fsid
	LeaseTime         time.Duration // lease_time, whole seconds
	RdattrError       Status        // rdattr_error: why a READDIR entry lacks attributes
	FileID            uint64        // fileid: the inode number
	FilesAvail        uint64        // files_avail: file slots available to this user
	FilesFree         uint64        // files_free: free file slots
	FilesTotal        uint64        // files_total: total file slots
	MaxName           uint32        // maxname: longest name the file system accepts
	MaxRead           uint64        // maxread: largest READ the server wants
	MaxWrite          uint64        // maxwrite: largest WRITE the server wants
	Mode              uint32        // mode: permission, setuid, setgid and sticky bits (07777)
	NumLinks          uint32        // numlinks: hard link count
	Owner             string        // owner, as sent: "user@domain" or a numeric "1000"
	OwnerGroup        string        // owner_group, as sent
	RawDev            Device        // rawdev: device numbers of a device file
	SpaceAvail        uint64        // space_avail: bytes available to this user
	SpaceFree         uint64        // space_free: free bytes
	SpaceTotal        uint64        // space_total: total bytes
	SpaceUsed         uint64        // space_used: bytes allocated to the file
	AccessTime        time.Time     // time_access
	ChangeTime        time.Time     // time_metadata: last change of attributes
	ModTime           time.Time     // time_modify: last change of data
	MountedOnFileID   uint64        // mounted_on_fileid: fileid of the directory a file system is mounted on
	SuppAttrExclCreat AttrMask      // suppattr_exclcreat: attributes settable by an EXCLUSIVE4_1 create
}

// FileMode returns the type and permission bits of a as an fs.FileMode.
func (a *Attr) FileMode() fs.FileMode {
	m := a.Type.Mode() | fs.FileMode(a.Mode&0o777)
	if a.Mode&modeSUID != 0 {
		m |= fs.ModeSetuid
	}
	if a.Mode&modeSGID != 0 {
		m |= fs.ModeSetgid
	}
	if a.Mode&modeSVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// UID returns the numeric user ID in Owner, when the server sent one: either
// a bare number ("1000", the form servers use when ID mapping is off) or a
// number before "@domain". It reports false for a name such as
// "alice@example.com", which only an ID-mapping service can resolve.
func (a *Attr) UID() (uint32, bool) { return parseID(a.Owner) }

// GID is UID for OwnerGroup.
func (a *Attr) GID() (uint32, bool) { return parseID(a.OwnerGroup) }

// parseID parses "1000" or "1000@domain" as a 32-bit ID.
func parseID(s string) (uint32, bool) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

var (
	errAttrTrailing = errors.New("nfs4: attribute list longer than its attributes")
	errBadTime      = errors.New("nfs4: nfstime4 nanoseconds out of range")
	errAttrOver     = errors.New("nfs4: reply carries attributes numbered 96 or above")
)

// decodeFattr reads an fattr4 into a. Attribute values are read in
// ascending attribute order, as the bitmap lists them; attributes Attr has
// no field for are skipped if their encoding is known, and are an error
// otherwise (their length is not on the wire). Errors are recorded in d.
//
// Strings are allocated only when they differ from what a already holds,
// so decoding the same file's attributes again does not allocate.
func decodeFattr(d *xdr.Decoder, a *Attr) {
	mask, extra := decodeBitmap(d)
	vals := d.Opaque(anyLen)
	if d.Err() != nil {
		return
	}
	if extra {
		d.SetErr(errAttrOver)
		return
	}
	owner, group := a.Owner, a.OwnerGroup
	*a = Attr{Mask: mask}
	var v xdr.Decoder
	v.Reset(vals)
	for w := 0; w < maskWords; w++ {
		for b := mask[w]; b != 0 && v.Err() == nil; b &= b - 1 {
			id := AttrID(w*32 + bits.TrailingZeros32(b))
			if !decodeAttr(&v, id, a, owner, group) {
				d.SetErr(errUnknownAttr(id))
				return
			}
		}
	}
	if err := v.Err(); err != nil {
		d.SetErr(err)
		return
	}
	if v.Remaining() != 0 {
		d.SetErr(errAttrTrailing)
	}
}

// decodeAttr reads the value of attribute id into a, or skips it. oldOwner
// and oldGroup are a's previous strings, reused when unchanged. It reports
// false for an attribute whose encoding is unknown.
func decodeAttr(v *xdr.Decoder, id AttrID, a *Attr, oldOwner, oldGroup string) bool {
	switch id {
	case AttrSupportedAttrs:
		a.Supported, _ = decodeBitmap(v)
	case AttrType:
		a.Type = FileType(v.Uint32())
	case AttrChange:
		a.Change = v.Uint64()
	case AttrSize:
		a.Size = v.Uint64()
	case AttrFSID:
		a.FSID.Major = v.Uint64()
		a.FSID.Minor = v.Uint64()
	case AttrLeaseTime:
		a.LeaseTime = time.Duration(v.Uint32()) * time.Second
	case AttrRdattrError:
		a.RdattrError = Status(v.Uint32())
	case AttrFileID:
		a.FileID = v.Uint64()
	case AttrFilesAvail:
		a.FilesAvail = v.Uint64()
	case AttrFilesFree:
		a.FilesFree = v.Uint64()
	case AttrFilesTotal:
		a.FilesTotal = v.Uint64()
	case AttrMaxName:
		a.MaxName = v.Uint32()
	case AttrMaxRead:
		a.MaxRead = v.Uint64()
	case AttrMaxWrite:
		a.MaxWrite = v.Uint64()
	case AttrMode:
		a.Mode = v.Uint32()
	case AttrNumLinks:
		a.NumLinks = v.Uint32()
	case AttrOwner:
		a.Owner = decodeOwner(v, oldOwner)
	case AttrOwnerGroup:
		a.OwnerGroup = decodeOwner(v, oldGroup)
	case AttrRawDev:
		a.RawDev.Major = v.Uint32()
		a.RawDev.Minor = v.Uint32()
	case AttrSpaceAvail:
		a.SpaceAvail = v.Uint64()
	case AttrSpaceFree:
		a.SpaceFree = v.Uint64()
	case AttrSpaceTotal:
		a.SpaceTotal = v.Uint64()
	case AttrSpaceUsed:
		a.SpaceUsed = v.Uint64()
	case AttrTimeAccess:
		a.AccessTime = decodeTime(v)
	case AttrTimeMetadata:
		a.ChangeTime = decodeTime(v)
	case AttrTimeModify:
		a.ModTime = decodeTime(v)
	case AttrMountedOnFileID:
		a.MountedOnFileID = v.Uint64()
	case AttrSuppAttrExclCreat:
		a.SuppAttrExclCreat, _ = decodeBitmap(v)
	default:
		return skipAttr(v, id)
	}
	return true
}

// decodeOwner reads an owner or group string, returning old when the bytes
// are the same so that no string is allocated.
func decodeOwner(v *xdr.Decoder, old string) string {
	b := v.Opaque(maxOwnerLen)
	if string(b) == old {
		return old
	}
	return string(b)
}

// decodeTime reads an nfstime4.
func decodeTime(v *xdr.Decoder) time.Time {
	sec := v.Int64()
	nsec := v.Uint32()
	if v.Err() != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		v.SetErr(errBadTime)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

// encodeTime appends t as an nfstime4.
func encodeTime(e *xdr.Encoder, t time.Time) {
	e.Int64(t.Unix())
	e.Uint32(uint32(t.Nanosecond()))
}

// sattr is the settable subset of attributes, sent by SETATTR and by OPEN
// and CREATE for a new object. Only the attributes in mask are sent, which
// may be AttrSize, AttrMode, AttrOwner, AttrOwnerGroup, AttrTimeAccessSet
// and AttrTimeModifySet.
type sattr struct {
	mask       AttrMask
	size       uint64
	mode       uint32 // permission, setuid, setgid and sticky bits
	owner      string // "user@domain" or a numeric ID
	ownerGroup string
	atime      time.Time // with AttrTimeAccessSet; the zero Time means "the server's clock"
	mtime      time.Time // with AttrTimeModifySet; the zero Time means "the server's clock"
}

// settable is the set of attributes sattr can carry.
var settable = MaskOf(AttrSize, AttrMode, AttrOwner, AttrOwnerGroup,
	AttrTimeAccessSet, AttrTimeModifySet)

// check reports why s cannot be encoded, or nil.
func (s *sattr) check() error {
	for i := range s.mask {
		if s.mask[i]&^settable[i] != 0 {
			return errors.New("nfs4: attribute set includes attributes that cannot be set")
		}
	}
	if s.mask.Has(AttrMode) && s.mode&^modeMask != 0 {
		return fmt.Errorf("nfs4: mode %#o has bits outside 07777", s.mode)
	}
	if s.mask.Has(AttrOwner) && (s.owner == "" || len(s.owner) > maxOwnerLen) {
		return errors.New("nfs4: owner must be 1 to 1024 bytes")
	}
	if s.mask.Has(AttrOwnerGroup) && (s.ownerGroup == "" || len(s.ownerGroup) > maxOwnerLen) {
		return errors.New("nfs4: owner group must be 1 to 1024 bytes")
	}
	return nil
}

// encodeFattr appends s as an fattr4; a nil s is the empty fattr4. The
// caller has checked s.
func encodeFattr(e *xdr.Encoder, s *sattr) {
	if s == nil {
		e.Uint32(0) // no bitmap words
		e.Uint32(0) // empty attribute list
		return
	}
	encodeBitmap(e, s.mask)
	lenOff := e.Reserve(4)
	start := e.Len()
	// Values in ascending attribute order: size 4, mode 33, owner 36,
	// owner_group 37, time_access_set 48, time_modify_set 54.
	if s.mask.Has(AttrSize) {
		e.Uint64(s.size)
	}
	if s.mask.Has(AttrMode) {
		e.Uint32(s.mode)
	}
	if s.mask.Has(AttrOwner) {
		e.String(s.owner)
	}
	if s.mask.Has(AttrOwnerGroup) {
		e.String(s.ownerGroup)
	}
	if s.mask.Has(AttrTimeAccessSet) {
		encodeSetTime(e, s.atime)
	}
	if s.mask.Has(AttrTimeModifySet) {
		encodeSetTime(e, s.mtime)
	}
	e.PutUint32(lenOff, uint32(e.Len()-start))
}

// encodeSetTime appends a settime4: the server's clock for the zero Time,
// t otherwise.
func encodeSetTime(e *xdr.Encoder, t time.Time) {
	if t.IsZero() {
		e.Uint32(setToServerTime)
		return
	}
	e.Uint32(setToClientTime)
	encodeTime(e, t)
}
