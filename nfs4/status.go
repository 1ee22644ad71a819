package nfs4

import (
	"errors"
	"io/fs"
	"strconv"
	"syscall"
)

// Status is an nfsstat4: the result code of an NFSv4 operation or COMPOUND
// (RFC 8881 §15, RFC 7862 §11, RFC 8276 §8.1).
//
// A non-zero Status is an error, in the way syscall.Errno is: String gives
// the name the RFC uses ("NFS4ERR_NOENT"), Is maps it onto the io/fs
// sentinels and onto the syscall.Errno a POSIX client would report, so
//
//	errors.Is(err, fs.ErrNotExist)
//	errors.Is(err, syscall.ENOTDIR)
//
// both work on an error that wraps a Status. Status values are plain
// integers and safe for concurrent use.
type Status uint32

// The nfsstat4 values of NFSv4.0, 4.1 (RFC 8881), 4.2 (RFC 7862) and the
// extended-attribute extension (RFC 8276). Each comment gives the RFC name.
const (
	OK                       Status = 0     // NFS4_OK
	ErrPerm                  Status = 1     // NFS4ERR_PERM
	ErrNoEnt                 Status = 2     // NFS4ERR_NOENT
	ErrIO                    Status = 5     // NFS4ERR_IO
	ErrNXIO                  Status = 6     // NFS4ERR_NXIO
	ErrAccess                Status = 13    // NFS4ERR_ACCESS
	ErrExist                 Status = 17    // NFS4ERR_EXIST
	ErrXDev                  Status = 18    // NFS4ERR_XDEV
	ErrNotDir                Status = 20    // NFS4ERR_NOTDIR
	ErrIsDir                 Status = 21    // NFS4ERR_ISDIR
	ErrInval                 Status = 22    // NFS4ERR_INVAL
	ErrFBig                  Status = 27    // NFS4ERR_FBIG
	ErrNoSpc                 Status = 28    // NFS4ERR_NOSPC
	ErrROFS                  Status = 30    // NFS4ERR_ROFS
	ErrMLink                 Status = 31    // NFS4ERR_MLINK
	ErrNameTooLong           Status = 63    // NFS4ERR_NAMETOOLONG
	ErrNotEmpty              Status = 66    // NFS4ERR_NOTEMPTY
	ErrDQuot                 Status = 69    // NFS4ERR_DQUOT
	ErrStale                 Status = 70    // NFS4ERR_STALE
	ErrBadHandle             Status = 10001 // NFS4ERR_BADHANDLE
	ErrBadCookie             Status = 10003 // NFS4ERR_BAD_COOKIE
	ErrNotSupp               Status = 10004 // NFS4ERR_NOTSUPP
	ErrTooSmall              Status = 10005 // NFS4ERR_TOOSMALL
	ErrServerFault           Status = 10006 // NFS4ERR_SERVERFAULT
	ErrBadType               Status = 10007 // NFS4ERR_BADTYPE
	ErrDelay                 Status = 10008 // NFS4ERR_DELAY
	ErrSame                  Status = 10009 // NFS4ERR_SAME
	ErrDenied                Status = 10010 // NFS4ERR_DENIED
	ErrExpired               Status = 10011 // NFS4ERR_EXPIRED
	ErrLocked                Status = 10012 // NFS4ERR_LOCKED
	ErrGrace                 Status = 10013 // NFS4ERR_GRACE
	ErrFHExpired             Status = 10014 // NFS4ERR_FHEXPIRED
	ErrShareDenied           Status = 10015 // NFS4ERR_SHARE_DENIED
	ErrWrongSec              Status = 10016 // NFS4ERR_WRONGSEC
	ErrClidInUse             Status = 10017 // NFS4ERR_CLID_INUSE
	ErrResource              Status = 10018 // NFS4ERR_RESOURCE (NFSv4.0 only)
	ErrMoved                 Status = 10019 // NFS4ERR_MOVED
	ErrNoFileHandle          Status = 10020 // NFS4ERR_NOFILEHANDLE
	ErrMinorVersMismatch     Status = 10021 // NFS4ERR_MINOR_VERS_MISMATCH
	ErrStaleClientID         Status = 10022 // NFS4ERR_STALE_CLIENTID
	ErrStaleStateID          Status = 10023 // NFS4ERR_STALE_STATEID
	ErrOldStateID            Status = 10024 // NFS4ERR_OLD_STATEID
	ErrBadStateID            Status = 10025 // NFS4ERR_BAD_STATEID
	ErrBadSeqID              Status = 10026 // NFS4ERR_BAD_SEQID
	ErrNotSame               Status = 10027 // NFS4ERR_NOT_SAME
	ErrLockRange             Status = 10028 // NFS4ERR_LOCK_RANGE
	ErrSymlink               Status = 10029 // NFS4ERR_SYMLINK
	ErrRestoreFH             Status = 10030 // NFS4ERR_RESTOREFH
	ErrLeaseMoved            Status = 10031 // NFS4ERR_LEASE_MOVED
	ErrAttrNotSupp           Status = 10032 // NFS4ERR_ATTRNOTSUPP
	ErrNoGrace               Status = 10033 // NFS4ERR_NO_GRACE
	ErrReclaimBad            Status = 10034 // NFS4ERR_RECLAIM_BAD
	ErrReclaimConflict       Status = 10035 // NFS4ERR_RECLAIM_CONFLICT
	ErrBadXDR                Status = 10036 // NFS4ERR_BADXDR
	ErrLocksHeld             Status = 10037 // NFS4ERR_LOCKS_HELD
	ErrOpenMode              Status = 10038 // NFS4ERR_OPENMODE
	ErrBadOwner              Status = 10039 // NFS4ERR_BADOWNER
	ErrBadChar               Status = 10040 // NFS4ERR_BADCHAR
	ErrBadName               Status = 10041 // NFS4ERR_BADNAME
	ErrBadRange              Status = 10042 // NFS4ERR_BAD_RANGE
	ErrLockNotSupp           Status = 10043 // NFS4ERR_LOCK_NOTSUPP
	ErrOpIllegal             Status = 10044 // NFS4ERR_OP_ILLEGAL
	ErrDeadlock              Status = 10045 // NFS4ERR_DEADLOCK
	ErrFileOpen              Status = 10046 // NFS4ERR_FILE_OPEN
	ErrAdminRevoked          Status = 10047 // NFS4ERR_ADMIN_REVOKED
	ErrCBPathDown            Status = 10048 // NFS4ERR_CB_PATH_DOWN
	ErrBadIOMode             Status = 10049 // NFS4ERR_BADIOMODE
	ErrBadLayout             Status = 10050 // NFS4ERR_BADLAYOUT
	ErrBadSessionDigest      Status = 10051 // NFS4ERR_BAD_SESSION_DIGEST
	ErrBadSession            Status = 10052 // NFS4ERR_BADSESSION
	ErrBadSlot               Status = 10053 // NFS4ERR_BADSLOT
	ErrCompleteAlready       Status = 10054 // NFS4ERR_COMPLETE_ALREADY
	ErrConnNotBoundToSession Status = 10055 // NFS4ERR_CONN_NOT_BOUND_TO_SESSION
	ErrDelegAlreadyWanted    Status = 10056 // NFS4ERR_DELEG_ALREADY_WANTED
	ErrBackChanBusy          Status = 10057 // NFS4ERR_BACK_CHAN_BUSY
	ErrLayoutTryLater        Status = 10058 // NFS4ERR_LAYOUTTRYLATER
	ErrLayoutUnavailable     Status = 10059 // NFS4ERR_LAYOUTUNAVAILABLE
	ErrNoMatchingLayout      Status = 10060 // NFS4ERR_NOMATCHING_LAYOUT
	ErrRecallConflict        Status = 10061 // NFS4ERR_RECALLCONFLICT
	ErrUnknownLayoutType     Status = 10062 // NFS4ERR_UNKNOWN_LAYOUTTYPE
	ErrSeqMisordered         Status = 10063 // NFS4ERR_SEQ_MISORDERED
	ErrSequencePos           Status = 10064 // NFS4ERR_SEQUENCE_POS
	ErrReqTooBig             Status = 10065 // NFS4ERR_REQ_TOO_BIG
	ErrRepTooBig             Status = 10066 // NFS4ERR_REP_TOO_BIG
	ErrRepTooBigToCache      Status = 10067 // NFS4ERR_REP_TOO_BIG_TO_CACHE
	ErrRetryUncachedRep      Status = 10068 // NFS4ERR_RETRY_UNCACHED_REP
	ErrUnsafeCompound        Status = 10069 // NFS4ERR_UNSAFE_COMPOUND
	ErrTooManyOps            Status = 10070 // NFS4ERR_TOO_MANY_OPS
	ErrOpNotInSession        Status = 10071 // NFS4ERR_OP_NOT_IN_SESSION
	ErrHashAlgUnsupp         Status = 10072 // NFS4ERR_HASH_ALG_UNSUPP
	ErrClientIDBusy          Status = 10074 // NFS4ERR_CLIENTID_BUSY
	ErrPNFSIOHole            Status = 10075 // NFS4ERR_PNFS_IO_HOLE
	ErrSeqFalseRetry         Status = 10076 // NFS4ERR_SEQ_FALSE_RETRY
	ErrBadHighSlot           Status = 10077 // NFS4ERR_BAD_HIGH_SLOT
	ErrDeadSession           Status = 10078 // NFS4ERR_DEADSESSION
	ErrEncrAlgUnsupp         Status = 10079 // NFS4ERR_ENCR_ALG_UNSUPP
	ErrPNFSNoLayout          Status = 10080 // NFS4ERR_PNFS_NO_LAYOUT
	ErrNotOnlyOp             Status = 10081 // NFS4ERR_NOT_ONLY_OP
	ErrWrongCred             Status = 10082 // NFS4ERR_WRONG_CRED
	ErrWrongType             Status = 10083 // NFS4ERR_WRONG_TYPE
	ErrDirDelegUnavail       Status = 10084 // NFS4ERR_DIRDELEG_UNAVAIL
	ErrRejectDeleg           Status = 10085 // NFS4ERR_REJECT_DELEG
	ErrReturnConflict        Status = 10086 // NFS4ERR_RETURNCONFLICT
	ErrDelegRevoked          Status = 10087 // NFS4ERR_DELEG_REVOKED
	ErrPartnerNotSupp        Status = 10088 // NFS4ERR_PARTNER_NOTSUPP (NFSv4.2)
	ErrPartnerNoAuth         Status = 10089 // NFS4ERR_PARTNER_NO_AUTH (NFSv4.2)
	ErrUnionNotSupp          Status = 10090 // NFS4ERR_UNION_NOTSUPP (NFSv4.2)
	ErrOffloadDenied         Status = 10091 // NFS4ERR_OFFLOAD_DENIED (NFSv4.2)
	ErrWrongLFS              Status = 10092 // NFS4ERR_WRONG_LFS (NFSv4.2)
	ErrBadLabel              Status = 10093 // NFS4ERR_BADLABEL (NFSv4.2)
	ErrOffloadNoReqs         Status = 10094 // NFS4ERR_OFFLOAD_NO_REQS (NFSv4.2)
	ErrNoXattr               Status = 10095 // NFS4ERR_NOXATTR (RFC 8276)
	ErrXattr2Big             Status = 10096 // NFS4ERR_XATTR2BIG (RFC 8276)
)

// statusText is the RFC name and a short description of one Status.
type statusText struct{ name, desc string }

// lowStatus holds the values below 100 (those shared with NFSv3 and errno);
// highStatus holds 10000 + i.
var (
	lowStatus = [...]statusText{
		OK:             {"NFS4_OK", "success"},
		ErrPerm:        {"NFS4ERR_PERM", "operation not permitted"},
		ErrNoEnt:       {"NFS4ERR_NOENT", "no such file or directory"},
		ErrIO:          {"NFS4ERR_IO", "input/output error"},
		ErrNXIO:        {"NFS4ERR_NXIO", "no such device or address"},
		ErrAccess:      {"NFS4ERR_ACCESS", "permission denied"},
		ErrExist:       {"NFS4ERR_EXIST", "file exists"},
		ErrXDev:        {"NFS4ERR_XDEV", "cross-file-system link or rename"},
		ErrNotDir:      {"NFS4ERR_NOTDIR", "not a directory"},
		ErrIsDir:       {"NFS4ERR_ISDIR", "is a directory"},
		ErrInval:       {"NFS4ERR_INVAL", "invalid argument"},
		ErrFBig:        {"NFS4ERR_FBIG", "file too large"},
		ErrNoSpc:       {"NFS4ERR_NOSPC", "no space left on device"},
		ErrROFS:        {"NFS4ERR_ROFS", "read-only file system"},
		ErrMLink:       {"NFS4ERR_MLINK", "too many links"},
		ErrNameTooLong: {"NFS4ERR_NAMETOOLONG", "file name too long"},
		ErrNotEmpty:    {"NFS4ERR_NOTEMPTY", "directory not empty"},
		ErrDQuot:       {"NFS4ERR_DQUOT", "disk quota exceeded"},
		ErrStale:       {"NFS4ERR_STALE", "stale file handle"},
	}
	highStatus = [...]statusText{
		ErrBadHandle - 10000:             {"NFS4ERR_BADHANDLE", "malformed file handle"},
		ErrBadCookie - 10000:             {"NFS4ERR_BAD_COOKIE", "stale directory cookie"},
		ErrNotSupp - 10000:               {"NFS4ERR_NOTSUPP", "operation not supported"},
		ErrTooSmall - 10000:              {"NFS4ERR_TOOSMALL", "reply limit too small"},
		ErrServerFault - 10000:           {"NFS4ERR_SERVERFAULT", "server fault"},
		ErrBadType - 10000:               {"NFS4ERR_BADTYPE", "object type not supported"},
		ErrDelay - 10000:                 {"NFS4ERR_DELAY", "server busy, retry later"},
		ErrSame - 10000:                  {"NFS4ERR_SAME", "attributes are the same"},
		ErrDenied - 10000:                {"NFS4ERR_DENIED", "lock denied"},
		ErrExpired - 10000:               {"NFS4ERR_EXPIRED", "lease expired"},
		ErrLocked - 10000:                {"NFS4ERR_LOCKED", "range is locked"},
		ErrGrace - 10000:                 {"NFS4ERR_GRACE", "server in grace period"},
		ErrFHExpired - 10000:             {"NFS4ERR_FHEXPIRED", "volatile file handle expired"},
		ErrShareDenied - 10000:           {"NFS4ERR_SHARE_DENIED", "share reservation denied"},
		ErrWrongSec - 10000:              {"NFS4ERR_WRONGSEC", "wrong security flavor for this export (it may require Kerberos, or RPC-over-TLS: Config.TLS; Linux's xprtsec=mtls exports need a client certificate, its xprtsec=tls exports refuse one)"},
		ErrClidInUse - 10000:             {"NFS4ERR_CLID_INUSE", "client ID in use by another principal"},
		ErrResource - 10000:              {"NFS4ERR_RESOURCE", "server out of resources"},
		ErrMoved - 10000:                 {"NFS4ERR_MOVED", "file system moved"},
		ErrNoFileHandle - 10000:          {"NFS4ERR_NOFILEHANDLE", "no current file handle"},
		ErrMinorVersMismatch - 10000:     {"NFS4ERR_MINOR_VERS_MISMATCH", "minor version not supported"},
		ErrStaleClientID - 10000:         {"NFS4ERR_STALE_CLIENTID", "client ID unknown to server"},
		ErrStaleStateID - 10000:          {"NFS4ERR_STALE_STATEID", "stateid from an earlier server instance"},
		ErrOldStateID - 10000:            {"NFS4ERR_OLD_STATEID", "stateid sequence out of date"},
		ErrBadStateID - 10000:            {"NFS4ERR_BAD_STATEID", "stateid not valid"},
		ErrBadSeqID - 10000:              {"NFS4ERR_BAD_SEQID", "sequence ID out of order"},
		ErrNotSame - 10000:               {"NFS4ERR_NOT_SAME", "attributes differ"},
		ErrLockRange - 10000:             {"NFS4ERR_LOCK_RANGE", "lock range overlaps"},
		ErrSymlink - 10000:               {"NFS4ERR_SYMLINK", "object is a symbolic link"},
		ErrRestoreFH - 10000:             {"NFS4ERR_RESTOREFH", "no saved file handle"},
		ErrLeaseMoved - 10000:            {"NFS4ERR_LEASE_MOVED", "a file system under the lease moved"},
		ErrAttrNotSupp - 10000:           {"NFS4ERR_ATTRNOTSUPP", "attribute not supported"},
		ErrNoGrace - 10000:               {"NFS4ERR_NO_GRACE", "reclaim outside the grace period"},
		ErrReclaimBad - 10000:            {"NFS4ERR_RECLAIM_BAD", "reclaim does not match server state"},
		ErrReclaimConflict - 10000:       {"NFS4ERR_RECLAIM_CONFLICT", "reclaim conflicts with other state"},
		ErrBadXDR - 10000:                {"NFS4ERR_BADXDR", "server could not decode arguments"},
		ErrLocksHeld - 10000:             {"NFS4ERR_LOCKS_HELD", "locks still held"},
		ErrOpenMode - 10000:              {"NFS4ERR_OPENMODE", "operation not allowed by open mode"},
		ErrBadOwner - 10000:              {"NFS4ERR_BADOWNER", "owner or group not recognized"},
		ErrBadChar - 10000:               {"NFS4ERR_BADCHAR", "character not supported in name"},
		ErrBadName - 10000:               {"NFS4ERR_BADNAME", "name not supported"},
		ErrBadRange - 10000:              {"NFS4ERR_BAD_RANGE", "lock range not supported"},
		ErrLockNotSupp - 10000:           {"NFS4ERR_LOCK_NOTSUPP", "atomic lock change not supported"},
		ErrOpIllegal - 10000:             {"NFS4ERR_OP_ILLEGAL", "illegal operation"},
		ErrDeadlock - 10000:              {"NFS4ERR_DEADLOCK", "lock deadlock"},
		ErrFileOpen - 10000:              {"NFS4ERR_FILE_OPEN", "file is open"},
		ErrAdminRevoked - 10000:          {"NFS4ERR_ADMIN_REVOKED", "state revoked by administrator"},
		ErrCBPathDown - 10000:            {"NFS4ERR_CB_PATH_DOWN", "callback path down"},
		ErrBadIOMode - 10000:             {"NFS4ERR_BADIOMODE", "bad layout I/O mode"},
		ErrBadLayout - 10000:             {"NFS4ERR_BADLAYOUT", "bad layout"},
		ErrBadSessionDigest - 10000:      {"NFS4ERR_BAD_SESSION_DIGEST", "bad session digest"},
		ErrBadSession - 10000:            {"NFS4ERR_BADSESSION", "session unknown to server"},
		ErrBadSlot - 10000:               {"NFS4ERR_BADSLOT", "slot ID out of range"},
		ErrCompleteAlready - 10000:       {"NFS4ERR_COMPLETE_ALREADY", "reclaim already complete"},
		ErrConnNotBoundToSession - 10000: {"NFS4ERR_CONN_NOT_BOUND_TO_SESSION", "connection not bound to session"},
		ErrDelegAlreadyWanted - 10000:    {"NFS4ERR_DELEG_ALREADY_WANTED", "delegation already wanted"},
		ErrBackChanBusy - 10000:          {"NFS4ERR_BACK_CHAN_BUSY", "backchannel requests outstanding"},
		ErrLayoutTryLater - 10000:        {"NFS4ERR_LAYOUTTRYLATER", "layout unavailable, try later"},
		ErrLayoutUnavailable - 10000:     {"NFS4ERR_LAYOUTUNAVAILABLE", "layout unavailable"},
		ErrNoMatchingLayout - 10000:      {"NFS4ERR_NOMATCHING_LAYOUT", "no matching layout"},
		ErrRecallConflict - 10000:        {"NFS4ERR_RECALLCONFLICT", "layout recall conflict"},
		ErrUnknownLayoutType - 10000:     {"NFS4ERR_UNKNOWN_LAYOUTTYPE", "unknown layout type"},
		ErrSeqMisordered - 10000:         {"NFS4ERR_SEQ_MISORDERED", "slot sequence ID misordered"},
		ErrSequencePos - 10000:           {"NFS4ERR_SEQUENCE_POS", "SEQUENCE not first in compound"},
		ErrReqTooBig - 10000:             {"NFS4ERR_REQ_TOO_BIG", "request too big for session"},
		ErrRepTooBig - 10000:             {"NFS4ERR_REP_TOO_BIG", "reply too big for session"},
		ErrRepTooBigToCache - 10000:      {"NFS4ERR_REP_TOO_BIG_TO_CACHE", "reply too big to cache"},
		ErrRetryUncachedRep - 10000:      {"NFS4ERR_RETRY_UNCACHED_REP", "retried request was not cached"},
		ErrUnsafeCompound - 10000:        {"NFS4ERR_UNSAFE_COMPOUND", "compound unsafe to retry"},
		ErrTooManyOps - 10000:            {"NFS4ERR_TOO_MANY_OPS", "too many operations in compound"},
		ErrOpNotInSession - 10000:        {"NFS4ERR_OP_NOT_IN_SESSION", "operation needs a session"},
		ErrHashAlgUnsupp - 10000:         {"NFS4ERR_HASH_ALG_UNSUPP", "hash algorithm not supported"},
		ErrClientIDBusy - 10000:          {"NFS4ERR_CLIENTID_BUSY", "client ID still has state"},
		ErrPNFSIOHole - 10000:            {"NFS4ERR_PNFS_IO_HOLE", "I/O to a hole of a sparse layout"},
		ErrSeqFalseRetry - 10000:         {"NFS4ERR_SEQ_FALSE_RETRY", "retry differs from original request"},
		ErrBadHighSlot - 10000:           {"NFS4ERR_BAD_HIGH_SLOT", "highest slot ID not valid"},
		ErrDeadSession - 10000:           {"NFS4ERR_DEADSESSION", "session is being destroyed"},
		ErrEncrAlgUnsupp - 10000:         {"NFS4ERR_ENCR_ALG_UNSUPP", "encryption algorithm not supported"},
		ErrPNFSNoLayout - 10000:          {"NFS4ERR_PNFS_NO_LAYOUT", "I/O requires a layout"},
		ErrNotOnlyOp - 10000:             {"NFS4ERR_NOT_ONLY_OP", "operation must be alone in compound"},
		ErrWrongCred - 10000:             {"NFS4ERR_WRONG_CRED", "wrong credential for this state"},
		ErrWrongType - 10000:             {"NFS4ERR_WRONG_TYPE", "operation on wrong object type"},
		ErrDirDelegUnavail - 10000:       {"NFS4ERR_DIRDELEG_UNAVAIL", "directory delegation unavailable"},
		ErrRejectDeleg - 10000:           {"NFS4ERR_REJECT_DELEG", "delegation rejected by callback"},
		ErrReturnConflict - 10000:        {"NFS4ERR_RETURNCONFLICT", "layout return in progress"},
		ErrDelegRevoked - 10000:          {"NFS4ERR_DELEG_REVOKED", "delegation or layout revoked"},
		ErrPartnerNotSupp - 10000:        {"NFS4ERR_PARTNER_NOTSUPP", "server-to-server copy not supported"},
		ErrPartnerNoAuth - 10000:         {"NFS4ERR_PARTNER_NO_AUTH", "server-to-server copy not authorized"},
		ErrUnionNotSupp - 10000:          {"NFS4ERR_UNION_NOTSUPP", "union arm not supported"},
		ErrOffloadDenied - 10000:         {"NFS4ERR_OFFLOAD_DENIED", "destination refuses offloaded copy"},
		ErrWrongLFS - 10000:              {"NFS4ERR_WRONG_LFS", "label format not supported"},
		ErrBadLabel - 10000:              {"NFS4ERR_BADLABEL", "malformed security label"},
		ErrOffloadNoReqs - 10000:         {"NFS4ERR_OFFLOAD_NO_REQS", "copy requirements not met"},
		ErrNoXattr - 10000:               {"NFS4ERR_NOXATTR", "no such extended attribute"},
		ErrXattr2Big - 10000:             {"NFS4ERR_XATTR2BIG", "extended attribute too big"},
	}
)

// text returns the table entry for s; its name is empty for values the
// RFCs do not define.
func (s Status) text() statusText {
	switch {
	case int(s) < len(lowStatus):
		return lowStatus[s]
	case s > 10000 && int(s-10000) < len(highStatus):
		return highStatus[s-10000]
	}
	return statusText{}
}

// String returns the RFC name of s, such as "NFS4ERR_NOENT", or
// "nfsstat4(N)" for a value no RFC defines.
func (s Status) String() string {
	if t := s.text(); t.name != "" {
		return t.name
	}
	return "nfsstat4(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error returns a message such as
// "nfs4: NFS4ERR_NOENT: no such file or directory".
func (s Status) Error() string {
	t := s.text()
	if t.name == "" {
		return "nfs4: unknown status " + strconv.FormatUint(uint64(s), 10)
	}
	return "nfs4: " + t.name + ": " + t.desc
}

// Is reports whether s matches target. Following syscall.Errno.Is:
//
//	fs.ErrNotExist          NOENT, STALE (the server's "file no longer exists")
//	fs.ErrExist             EXIST, NOTEMPTY
//	fs.ErrPermission        ACCESS, PERM
//	fs.ErrInvalid           INVAL, BADNAME, BADCHAR
//	errors.ErrUnsupported   NOTSUPP, ATTRNOTSUPP, OP_ILLEGAL
//
// and s matches a syscall.Errno when that is the errno s maps to exactly
// (see Errno; the EIO fallback does not match).
func (s Status) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return s == ErrNoEnt || s == ErrStale
	case fs.ErrExist:
		return s == ErrExist || s == ErrNotEmpty
	case fs.ErrPermission:
		return s == ErrAccess || s == ErrPerm
	case fs.ErrInvalid:
		return s == ErrInval || s == ErrBadName || s == ErrBadChar
	case errors.ErrUnsupported:
		return s == ErrNotSupp || s == ErrAttrNotSupp || s == ErrOpIllegal
	}
	if e, ok := target.(syscall.Errno); ok {
		m, exact := s.errno()
		return exact && m == e
	}
	return false
}

// Errno returns the errno a POSIX NFS client reports for s: ENOENT for
// NOENT, ENOTDIR for NOTDIR, ESTALE for STALE and so on; 0 for OK; and EIO
// for a status with no closer errno (lease, session and protocol errors).
func (s Status) Errno() syscall.Errno {
	e, _ := s.errno()
	return e
}

// errno maps s to an errno and reports whether the mapping is exact rather
// than the EIO fallback.
func (s Status) errno() (syscall.Errno, bool) {
	switch s {
	case OK:
		return 0, true
	case ErrPerm:
		return syscall.EPERM, true
	case ErrNoEnt:
		return syscall.ENOENT, true
	case ErrIO:
		return syscall.EIO, true
	case ErrNXIO:
		return syscall.ENXIO, true
	case ErrAccess, ErrShareDenied, ErrOpenMode:
		return syscall.EACCES, true
	case ErrExist:
		return syscall.EEXIST, true
	case ErrXDev:
		return syscall.EXDEV, true
	case ErrNotDir:
		return syscall.ENOTDIR, true
	case ErrIsDir:
		return syscall.EISDIR, true
	case ErrInval, ErrBadName, ErrBadChar, ErrBadOwner, ErrBadType, ErrWrongType:
		return syscall.EINVAL, true
	case ErrFBig:
		return syscall.EFBIG, true
	case ErrNoSpc:
		return syscall.ENOSPC, true
	case ErrROFS:
		return syscall.EROFS, true
	case ErrMLink:
		return syscall.EMLINK, true
	case ErrNameTooLong:
		return syscall.ENAMETOOLONG, true
	case ErrNotEmpty:
		return syscall.ENOTEMPTY, true
	case ErrDQuot:
		return syscall.EDQUOT, true
	case ErrStale, ErrBadHandle, ErrFHExpired:
		return syscall.ESTALE, true
	case ErrNotSupp, ErrAttrNotSupp, ErrOpIllegal:
		return syscall.EOPNOTSUPP, true
	case ErrSymlink:
		return syscall.ELOOP, true
	case ErrFileOpen:
		return syscall.EBUSY, true
	case ErrDenied, ErrLocked:
		return syscall.EAGAIN, true
	case ErrDeadlock:
		return syscall.EDEADLK, true
	case ErrXattr2Big:
		return syscall.E2BIG, true
	}
	return syscall.EIO, false
}

// The classes of status the client acts on. Each takes an error, wrapped
// or not, and matches the Status in it.

// retryLater reports whether err is the server asking to send the same
// request again after a pause: NFS4ERR_DELAY, or NFS4ERR_GRACE while a
// restarted server waits for its clients to reclaim (RFC 8881 §15.1.1.3,
// §15.1.9.2). callSession waits and retries.
func retryLater(err error) bool {
	return errors.Is(err, ErrDelay) || errors.Is(err, ErrGrace)
}

// sessionLost reports whether err means the session (or the client ID
// beneath it) is gone, so that only a new one lets calls proceed: the call
// starts or joins a recovery and is sent again on the new session.
func sessionLost(err error) bool {
	return errors.Is(err, ErrBadSession) || errors.Is(err, ErrDeadSession) ||
		errors.Is(err, ErrStaleClientID) || errors.Is(err, ErrSeqMisordered) ||
		errors.Is(err, ErrSeqFalseRetry) || errors.Is(err, ErrBadSlot) ||
		errors.Is(err, errLeaseExpired) || errors.Is(err, errLeaseExpired40)
}

// sessionGone reports whether err says that the server no longer has the
// session (or its client ID) at all, as opposed to a confused slot: every
// call of the session would be refused the same way.
func sessionGone(err error) bool {
	return errors.Is(err, ErrBadSession) || errors.Is(err, ErrDeadSession) ||
		errors.Is(err, ErrStaleClientID) || errors.Is(err, errLeaseExpired) || errors.Is(err, errLeaseExpired40)
}

// stateRefused reports whether err is the server refusing a File's open
// stateid: revoked, expired, from another server instance, or unknown.
func stateRefused(err error) bool {
	return errors.Is(err, ErrBadStateID) || errors.Is(err, ErrStaleStateID) ||
		errors.Is(err, ErrExpired) || errors.Is(err, ErrAdminRevoked)
}

// permanentOpenErr reports whether an OPEN of an existing file by handle
// failed in a way no retry changes: the file is gone or no longer ours to
// open.
func permanentOpenErr(err error) bool {
	for _, e := range []error{ErrStale, ErrBadHandle, ErrFHExpired, ErrNoEnt, ErrAccess, ErrPerm,
		ErrShareDenied, ErrWrongType, ErrIsDir, ErrSymlink, ErrInval} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
