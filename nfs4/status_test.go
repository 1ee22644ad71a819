package nfs4

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
)

// allStatuses lists every Status constant with the value the RFC gives it.
var allStatuses = []struct {
	s    Status
	name string
	num  uint32
}{
	{OK, "NFS4_OK", 0}, {ErrPerm, "NFS4ERR_PERM", 1}, {ErrNoEnt, "NFS4ERR_NOENT", 2},
	{ErrIO, "NFS4ERR_IO", 5}, {ErrNXIO, "NFS4ERR_NXIO", 6}, {ErrAccess, "NFS4ERR_ACCESS", 13},
	{ErrExist, "NFS4ERR_EXIST", 17}, {ErrXDev, "NFS4ERR_XDEV", 18}, {ErrNotDir, "NFS4ERR_NOTDIR", 20},
	{ErrIsDir, "NFS4ERR_ISDIR", 21}, {ErrInval, "NFS4ERR_INVAL", 22}, {ErrFBig, "NFS4ERR_FBIG", 27},
	{ErrNoSpc, "NFS4ERR_NOSPC", 28}, {ErrROFS, "NFS4ERR_ROFS", 30}, {ErrMLink, "NFS4ERR_MLINK", 31},
	{ErrNameTooLong, "NFS4ERR_NAMETOOLONG", 63}, {ErrNotEmpty, "NFS4ERR_NOTEMPTY", 66},
	{ErrDQuot, "NFS4ERR_DQUOT", 69}, {ErrStale, "NFS4ERR_STALE", 70},
	{ErrBadHandle, "NFS4ERR_BADHANDLE", 10001}, {ErrBadCookie, "NFS4ERR_BAD_COOKIE", 10003},
	{ErrNotSupp, "NFS4ERR_NOTSUPP", 10004}, {ErrTooSmall, "NFS4ERR_TOOSMALL", 10005},
	{ErrServerFault, "NFS4ERR_SERVERFAULT", 10006}, {ErrBadType, "NFS4ERR_BADTYPE", 10007},
	{ErrDelay, "NFS4ERR_DELAY", 10008}, {ErrSame, "NFS4ERR_SAME", 10009},
	{ErrDenied, "NFS4ERR_DENIED", 10010}, {ErrExpired, "NFS4ERR_EXPIRED", 10011},
	{ErrLocked, "NFS4ERR_LOCKED", 10012}, {ErrGrace, "NFS4ERR_GRACE", 10013},
	{ErrFHExpired, "NFS4ERR_FHEXPIRED", 10014}, {ErrShareDenied, "NFS4ERR_SHARE_DENIED", 10015},
	{ErrWrongSec, "NFS4ERR_WRONGSEC", 10016}, {ErrClidInUse, "NFS4ERR_CLID_INUSE", 10017},
	{ErrResource, "NFS4ERR_RESOURCE", 10018}, {ErrMoved, "NFS4ERR_MOVED", 10019},
	{ErrNoFileHandle, "NFS4ERR_NOFILEHANDLE", 10020},
	{ErrMinorVersMismatch, "NFS4ERR_MINOR_VERS_MISMATCH", 10021},
	{ErrStaleClientID, "NFS4ERR_STALE_CLIENTID", 10022},
	{ErrStaleStateID, "NFS4ERR_STALE_STATEID", 10023}, {ErrOldStateID, "NFS4ERR_OLD_STATEID", 10024},
	{ErrBadStateID, "NFS4ERR_BAD_STATEID", 10025}, {ErrBadSeqID, "NFS4ERR_BAD_SEQID", 10026},
	{ErrNotSame, "NFS4ERR_NOT_SAME", 10027}, {ErrLockRange, "NFS4ERR_LOCK_RANGE", 10028},
	{ErrSymlink, "NFS4ERR_SYMLINK", 10029}, {ErrRestoreFH, "NFS4ERR_RESTOREFH", 10030},
	{ErrLeaseMoved, "NFS4ERR_LEASE_MOVED", 10031}, {ErrAttrNotSupp, "NFS4ERR_ATTRNOTSUPP", 10032},
	{ErrNoGrace, "NFS4ERR_NO_GRACE", 10033}, {ErrReclaimBad, "NFS4ERR_RECLAIM_BAD", 10034},
	{ErrReclaimConflict, "NFS4ERR_RECLAIM_CONFLICT", 10035}, {ErrBadXDR, "NFS4ERR_BADXDR", 10036},
	{ErrLocksHeld, "NFS4ERR_LOCKS_HELD", 10037}, {ErrOpenMode, "NFS4ERR_OPENMODE", 10038},
	{ErrBadOwner, "NFS4ERR_BADOWNER", 10039}, {ErrBadChar, "NFS4ERR_BADCHAR", 10040},
	{ErrBadName, "NFS4ERR_BADNAME", 10041}, {ErrBadRange, "NFS4ERR_BAD_RANGE", 10042},
	{ErrLockNotSupp, "NFS4ERR_LOCK_NOTSUPP", 10043}, {ErrOpIllegal, "NFS4ERR_OP_ILLEGAL", 10044},
	{ErrDeadlock, "NFS4ERR_DEADLOCK", 10045}, {ErrFileOpen, "NFS4ERR_FILE_OPEN", 10046},
	{ErrAdminRevoked, "NFS4ERR_ADMIN_REVOKED", 10047}, {ErrCBPathDown, "NFS4ERR_CB_PATH_DOWN", 10048},
	{ErrBadIOMode, "NFS4ERR_BADIOMODE", 10049}, {ErrBadLayout, "NFS4ERR_BADLAYOUT", 10050},
	{ErrBadSessionDigest, "NFS4ERR_BAD_SESSION_DIGEST", 10051},
	{ErrBadSession, "NFS4ERR_BADSESSION", 10052}, {ErrBadSlot, "NFS4ERR_BADSLOT", 10053},
	{ErrCompleteAlready, "NFS4ERR_COMPLETE_ALREADY", 10054},
	{ErrConnNotBoundToSession, "NFS4ERR_CONN_NOT_BOUND_TO_SESSION", 10055},
	{ErrDelegAlreadyWanted, "NFS4ERR_DELEG_ALREADY_WANTED", 10056},
	{ErrBackChanBusy, "NFS4ERR_BACK_CHAN_BUSY", 10057},
	{ErrLayoutTryLater, "NFS4ERR_LAYOUTTRYLATER", 10058},
	{ErrLayoutUnavailable, "NFS4ERR_LAYOUTUNAVAILABLE", 10059},
	{ErrNoMatchingLayout, "NFS4ERR_NOMATCHING_LAYOUT", 10060},
	{ErrRecallConflict, "NFS4ERR_RECALLCONFLICT", 10061},
	{ErrUnknownLayoutType, "NFS4ERR_UNKNOWN_LAYOUTTYPE", 10062},
	{ErrSeqMisordered, "NFS4ERR_SEQ_MISORDERED", 10063}, {ErrSequencePos, "NFS4ERR_SEQUENCE_POS", 10064},
	{ErrReqTooBig, "NFS4ERR_REQ_TOO_BIG", 10065}, {ErrRepTooBig, "NFS4ERR_REP_TOO_BIG", 10066},
	{ErrRepTooBigToCache, "NFS4ERR_REP_TOO_BIG_TO_CACHE", 10067},
	{ErrRetryUncachedRep, "NFS4ERR_RETRY_UNCACHED_REP", 10068},
	{ErrUnsafeCompound, "NFS4ERR_UNSAFE_COMPOUND", 10069}, {ErrTooManyOps, "NFS4ERR_TOO_MANY_OPS", 10070},
	{ErrOpNotInSession, "NFS4ERR_OP_NOT_IN_SESSION", 10071},
	{ErrHashAlgUnsupp, "NFS4ERR_HASH_ALG_UNSUPP", 10072},
	{ErrClientIDBusy, "NFS4ERR_CLIENTID_BUSY", 10074}, {ErrPNFSIOHole, "NFS4ERR_PNFS_IO_HOLE", 10075},
	{ErrSeqFalseRetry, "NFS4ERR_SEQ_FALSE_RETRY", 10076}, {ErrBadHighSlot, "NFS4ERR_BAD_HIGH_SLOT", 10077},
	{ErrDeadSession, "NFS4ERR_DEADSESSION", 10078}, {ErrEncrAlgUnsupp, "NFS4ERR_ENCR_ALG_UNSUPP", 10079},
	{ErrPNFSNoLayout, "NFS4ERR_PNFS_NO_LAYOUT", 10080}, {ErrNotOnlyOp, "NFS4ERR_NOT_ONLY_OP", 10081},
	{ErrWrongCred, "NFS4ERR_WRONG_CRED", 10082}, {ErrWrongType, "NFS4ERR_WRONG_TYPE", 10083},
	{ErrDirDelegUnavail, "NFS4ERR_DIRDELEG_UNAVAIL", 10084}, {ErrRejectDeleg, "NFS4ERR_REJECT_DELEG", 10085},
	{ErrReturnConflict, "NFS4ERR_RETURNCONFLICT", 10086}, {ErrDelegRevoked, "NFS4ERR_DELEG_REVOKED", 10087},
	{ErrPartnerNotSupp, "NFS4ERR_PARTNER_NOTSUPP", 10088},
	{ErrPartnerNoAuth, "NFS4ERR_PARTNER_NO_AUTH", 10089},
	{ErrUnionNotSupp, "NFS4ERR_UNION_NOTSUPP", 10090}, {ErrOffloadDenied, "NFS4ERR_OFFLOAD_DENIED", 10091},
	{ErrWrongLFS, "NFS4ERR_WRONG_LFS", 10092}, {ErrBadLabel, "NFS4ERR_BADLABEL", 10093},
	{ErrOffloadNoReqs, "NFS4ERR_OFFLOAD_NO_REQS", 10094}, {ErrNoXattr, "NFS4ERR_NOXATTR", 10095},
	{ErrXattr2Big, "NFS4ERR_XATTR2BIG", 10096},
}

func TestStatusNamesAndValues(t *testing.T) {
	testutil.CheckLeaks(t)
	named := 0
	for v := uint32(0); v < 10200; v++ {
		if !strings.HasPrefix(Status(v).String(), "nfsstat4(") {
			named++
		}
	}
	if named != len(allStatuses) {
		t.Errorf("%d values have names, %d constants are listed", named, len(allStatuses))
	}
	seen := map[string]bool{}
	for _, c := range allStatuses {
		if uint32(c.s) != c.num {
			t.Errorf("%s = %d, RFC says %d", c.name, uint32(c.s), c.num)
		}
		if got := c.s.String(); got != c.name {
			t.Errorf("Status(%d).String() = %q, want %q", c.num, got, c.name)
		}
		if seen[c.name] {
			t.Errorf("name %s used twice", c.name)
		}
		seen[c.name] = true
		msg := c.s.Error()
		if !strings.HasPrefix(msg, "nfs4: "+c.name+": ") || len(msg) <= len("nfs4: "+c.name+": ") {
			t.Errorf("Error() = %q, want \"nfs4: %s: <description>\"", msg, c.name)
		}
	}
}

func TestStatusUnknown(t *testing.T) {
	testutil.CheckLeaks(t)
	for _, v := range []Status{3, 19, 71, 10000, 10002, 10073, 10097, 1 << 31} {
		if got, want := v.String(), fmt.Sprintf("nfsstat4(%d)", uint32(v)); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		if got, want := v.Error(), fmt.Sprintf("nfs4: unknown status %d", uint32(v)); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		if v.Errno() != syscall.EIO || errors.Is(v, syscall.EIO) {
			t.Errorf("%v: Errno() = %v, want the EIO fallback that Is does not match", v, v.Errno())
		}
	}
	if ErrNoEnt.Error() != "nfs4: NFS4ERR_NOENT: no such file or directory" {
		t.Errorf("ErrNoEnt.Error() = %q", ErrNoEnt.Error())
	}
}

func TestStatusIsFSSentinels(t *testing.T) {
	testutil.CheckLeaks(t)
	targets := []error{fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid, errors.ErrUnsupported}
	want := map[Status]error{
		ErrNoEnt: fs.ErrNotExist, ErrStale: fs.ErrNotExist,
		ErrExist: fs.ErrExist, ErrNotEmpty: fs.ErrExist,
		ErrAccess: fs.ErrPermission, ErrPerm: fs.ErrPermission,
		ErrInval: fs.ErrInvalid, ErrBadName: fs.ErrInvalid, ErrBadChar: fs.ErrInvalid,
		ErrNotSupp: errors.ErrUnsupported, ErrAttrNotSupp: errors.ErrUnsupported,
		ErrOpIllegal: errors.ErrUnsupported,
	}
	for _, c := range allStatuses {
		for _, target := range targets {
			if got := errors.Is(c.s, target); got != (want[c.s] == target) {
				t.Errorf("errors.Is(%v, %v) = %v", c.s, target, got)
			}
		}
	}
	// Through wrapping, the way callers meet them.
	err := &fs.PathError{Op: "open", Path: "/x", Err: fmt.Errorf("lookup: %w", ErrNoEnt)}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("wrapped ErrNoEnt does not match fs.ErrNotExist")
	}
	if !errors.Is(err, ErrNoEnt) || errors.Is(err, ErrExist) {
		t.Errorf("wrapped status does not match itself only")
	}
}

func TestStatusErrno(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		s Status
		e syscall.Errno
	}{
		{OK, 0},
		{ErrPerm, syscall.EPERM}, {ErrNoEnt, syscall.ENOENT}, {ErrIO, syscall.EIO},
		{ErrNXIO, syscall.ENXIO}, {ErrAccess, syscall.EACCES}, {ErrExist, syscall.EEXIST},
		{ErrXDev, syscall.EXDEV}, {ErrNotDir, syscall.ENOTDIR}, {ErrIsDir, syscall.EISDIR},
		{ErrInval, syscall.EINVAL}, {ErrFBig, syscall.EFBIG}, {ErrNoSpc, syscall.ENOSPC},
		{ErrROFS, syscall.EROFS}, {ErrMLink, syscall.EMLINK},
		{ErrNameTooLong, syscall.ENAMETOOLONG}, {ErrNotEmpty, syscall.ENOTEMPTY},
		{ErrDQuot, syscall.EDQUOT}, {ErrStale, syscall.ESTALE}, {ErrFHExpired, syscall.ESTALE},
		{ErrBadHandle, syscall.ESTALE}, {ErrNotSupp, syscall.EOPNOTSUPP},
		{ErrSymlink, syscall.ELOOP}, {ErrFileOpen, syscall.EBUSY}, {ErrDenied, syscall.EAGAIN},
		{ErrDeadlock, syscall.EDEADLK}, {ErrShareDenied, syscall.EACCES},
		{ErrBadName, syscall.EINVAL}, {ErrXattr2Big, syscall.E2BIG},
		// No closer errno: EIO, which Is does not match.
		{ErrDelay, syscall.EIO}, {ErrBadSession, syscall.EIO}, {ErrExpired, syscall.EIO},
	}
	for _, tt := range tests {
		if got := tt.s.Errno(); got != tt.e {
			t.Errorf("%v.Errno() = %v, want %v", tt.s, got, tt.e)
		}
	}
	if !errors.Is(fmt.Errorf("mkdir: %w", ErrNotDir), syscall.ENOTDIR) {
		t.Error("errors.Is(wrapped ErrNotDir, syscall.ENOTDIR) = false")
	}
	if errors.Is(ErrNotDir, syscall.EISDIR) {
		t.Error("ErrNotDir matches EISDIR")
	}
	if errors.Is(ErrDelay, syscall.EIO) {
		t.Error("ErrDelay matches EIO through the fallback")
	}
	if !errors.Is(ErrIO, syscall.EIO) {
		t.Error("ErrIO does not match EIO")
	}
}

// TestStatusClasses pins which statuses make the client wait and retry,
// recover the session, reopen a File, or give a File up: each status, bare
// and wrapped, against each class; any other error is in none.
func TestStatusClasses(t *testing.T) {
	testutil.CheckLeaks(t)
	classes := []struct {
		name string
		is   func(error) bool
		want map[Status]bool
	}{
		{"retryLater", retryLater, map[Status]bool{ErrDelay: true, ErrGrace: true}},
		{"sessionLost", sessionLost, map[Status]bool{ErrBadSession: true, ErrDeadSession: true,
			ErrStaleClientID: true, ErrSeqMisordered: true, ErrSeqFalseRetry: true, ErrBadSlot: true}},
		{"stateRefused", stateRefused, map[Status]bool{ErrBadStateID: true, ErrStaleStateID: true,
			ErrExpired: true, ErrAdminRevoked: true}},
		{"permanentOpenErr", permanentOpenErr, map[Status]bool{ErrStale: true, ErrBadHandle: true,
			ErrFHExpired: true, ErrNoEnt: true, ErrAccess: true, ErrPerm: true, ErrShareDenied: true,
			ErrWrongType: true, ErrIsDir: true, ErrSymlink: true, ErrInval: true}},
	}
	for _, cl := range classes {
		for _, c := range allStatuses {
			if got := cl.is(c.s); got != cl.want[c.s] {
				t.Errorf("%s(%v) = %v", cl.name, c.s, got)
			}
			if got := cl.is(fmt.Errorf("nfs4: op: %w", c.s)); got != cl.want[c.s] {
				t.Errorf("%s(wrapped %v) = %v", cl.name, c.s, got)
			}
		}
		for _, err := range []error{nil, errors.New("other"), fs.ErrNotExist, syscall.EIO} {
			if cl.is(err) {
				t.Errorf("%s(%v) = true", cl.name, err)
			}
		}
	}
}
