package nfs4

import "strconv"

// Wire constants of NFSv4.1 (RFC 8881 §18–19, XDR in RFC 5662) with the
// NFSv4.2 additions (RFC 7862, RFC 7863) and extended attributes (RFC 8276).
// Names follow the RFC's, in Go case: OP_ACCESS is opAccess,
// OPEN4_SHARE_ACCESS_READ is shareAccessRead.

// RPC program, version and procedures (RFC 8881 §16).
const (
	nfsProgram      = 100003 // NFS4_PROGRAM
	nfsVersion      = 4      // NFS_V4
	procNull        = 0      // NFSPROC4_NULL
	procCompound    = 1      // NFSPROC4_COMPOUND
	minorVersion    = 1      // the COMPOUND minorversion of tests' compounds (Client.minor is the session's)
	callbackVersion = 1      // NFS_CB, the version of the callback program
)

// Sizes and limits (RFC 8881 §3.2).
const (
	fhMaxSize     = 128  // NFS4_FHSIZE: a file handle holds at most this many bytes
	verifierSize  = 8    // NFS4_VERIFIER_SIZE
	otherSize     = 12   // NFS4_OTHER_SIZE: the "other" field of a stateid
	opaqueLimit   = 1024 // NFS4_OPAQUE_LIMIT: owners, server owner and scope
	sessionIDSize = 16   // NFS4_SESSIONID_SIZE

	// maxNameLen is the longest component name this package sends or
	// accepts. The protocol sets no limit; 255 bytes is what every common
	// server file system allows.
	maxNameLen = 255
	// maxTagLen bounds the COMPOUND tag accepted in a reply. We send an
	// empty or short tag; the server must echo it.
	maxTagLen = 64
	// maxLinkLen bounds a symbolic link's target (PATH_MAX on Linux).
	maxLinkLen = 4096
	// maxOwnerLen bounds an owner or owner_group string in an attribute.
	maxOwnerLen = opaqueLimit
)

// Operation numbers, nfs_opnum4 (RFC 8881 §16.2, RFC 7862 §15, RFC 8276).
const (
	opAccess             = 3
	opClose              = 4
	opCommit             = 5
	opCreate             = 6
	opDelegPurge         = 7
	opDelegReturn        = 8
	opGetattr            = 9
	opGetFH              = 10
	opLink               = 11
	opLock               = 12
	opLockT              = 13
	opLockU              = 14
	opLookup             = 15
	opLookupP            = 16
	opNVerify            = 17
	opOpen               = 18
	opOpenAttr           = 19
	opOpenConfirm        = 20 // NFSv4.0 only
	opOpenDowngrade      = 21
	opPutFH              = 22
	opPutPubFH           = 23
	opPutRootFH          = 24
	opRead               = 25
	opReaddir            = 26
	opReadlink           = 27
	opRemove             = 28
	opRename             = 29
	opRenew              = 30 // NFSv4.0 only
	opRestoreFH          = 31
	opSaveFH             = 32
	opSecinfo            = 33
	opSetattr            = 34
	opSetClientID        = 35 // NFSv4.0 only
	opSetClientIDConfirm = 36 // NFSv4.0 only
	opVerify             = 37
	opWrite              = 38
	opReleaseLockOwner   = 39 // NFSv4.0 only
	opBackchannelCtl     = 40
	opBindConnToSession  = 41
	opExchangeID         = 42
	opCreateSession      = 43
	opDestroySession     = 44
	opFreeStateID        = 45
	opGetDirDelegation   = 46
	opGetDeviceInfo      = 47
	opGetDeviceList      = 48
	opLayoutCommit       = 49
	opLayoutGet          = 50
	opLayoutReturn       = 51
	opSecinfoNoName      = 52
	opSequence           = 53
	opSetSSV             = 54
	opTestStateID        = 55
	opWantDelegation     = 56
	opDestroyClientID    = 57
	opReclaimComplete    = 58
	opAllocate           = 59 // NFSv4.2
	opCopy               = 60 // NFSv4.2
	opCopyNotify         = 61 // NFSv4.2
	opDeallocate         = 62 // NFSv4.2
	opIOAdvise           = 63 // NFSv4.2
	opLayoutError        = 64 // NFSv4.2
	opLayoutStats        = 65 // NFSv4.2
	opOffloadCancel      = 66 // NFSv4.2
	opOffloadStatus      = 67 // NFSv4.2
	opReadPlus           = 68 // NFSv4.2
	opSeek               = 69 // NFSv4.2
	opWriteSame          = 70 // NFSv4.2
	opClone              = 71 // NFSv4.2
	opGetXattr           = 72 // RFC 8276
	opSetXattr           = 73 // RFC 8276
	opListXattrs         = 74 // RFC 8276
	opRemoveXattr        = 75 // RFC 8276
	opIllegal            = 10044
)

// opNames maps an operation number to its RFC name, for error messages.
var opNames = [...]string{
	opAccess: "ACCESS", opClose: "CLOSE", opCommit: "COMMIT", opCreate: "CREATE",
	opDelegPurge: "DELEGPURGE", opDelegReturn: "DELEGRETURN", opGetattr: "GETATTR",
	opGetFH: "GETFH", opLink: "LINK", opLock: "LOCK", opLockT: "LOCKT",
	opLockU: "LOCKU", opLookup: "LOOKUP", opLookupP: "LOOKUPP", opNVerify: "NVERIFY",
	opOpen: "OPEN", opOpenAttr: "OPENATTR", opOpenConfirm: "OPEN_CONFIRM",
	opOpenDowngrade: "OPEN_DOWNGRADE", opPutFH: "PUTFH", opPutPubFH: "PUTPUBFH",
	opPutRootFH: "PUTROOTFH", opRead: "READ", opReaddir: "READDIR",
	opReadlink: "READLINK", opRemove: "REMOVE", opRename: "RENAME", opRenew: "RENEW",
	opRestoreFH: "RESTOREFH", opSaveFH: "SAVEFH", opSecinfo: "SECINFO",
	opSetattr: "SETATTR", opSetClientID: "SETCLIENTID",
	opSetClientIDConfirm: "SETCLIENTID_CONFIRM", opVerify: "VERIFY", opWrite: "WRITE",
	opReleaseLockOwner: "RELEASE_LOCKOWNER", opBackchannelCtl: "BACKCHANNEL_CTL",
	opBindConnToSession: "BIND_CONN_TO_SESSION", opExchangeID: "EXCHANGE_ID",
	opCreateSession: "CREATE_SESSION", opDestroySession: "DESTROY_SESSION",
	opFreeStateID: "FREE_STATEID", opGetDirDelegation: "GET_DIR_DELEGATION",
	opGetDeviceInfo: "GETDEVICEINFO", opGetDeviceList: "GETDEVICELIST",
	opLayoutCommit: "LAYOUTCOMMIT", opLayoutGet: "LAYOUTGET",
	opLayoutReturn: "LAYOUTRETURN", opSecinfoNoName: "SECINFO_NO_NAME",
	opSequence: "SEQUENCE", opSetSSV: "SET_SSV", opTestStateID: "TEST_STATEID",
	opWantDelegation: "WANT_DELEGATION", opDestroyClientID: "DESTROY_CLIENTID",
	opReclaimComplete: "RECLAIM_COMPLETE", opAllocate: "ALLOCATE", opCopy: "COPY",
	opCopyNotify: "COPY_NOTIFY", opDeallocate: "DEALLOCATE", opIOAdvise: "IO_ADVISE",
	opLayoutError: "LAYOUTERROR", opLayoutStats: "LAYOUTSTATS",
	opOffloadCancel: "OFFLOAD_CANCEL", opOffloadStatus: "OFFLOAD_STATUS",
	opReadPlus: "READ_PLUS", opSeek: "SEEK", opWriteSame: "WRITE_SAME",
	opClone: "CLONE", opGetXattr: "GETXATTR", opSetXattr: "SETXATTR",
	opListXattrs: "LISTXATTRS", opRemoveXattr: "REMOVEXATTR",
}

// opName returns the RFC name of operation op, or "OP(n)" if it has none.
func opName(op uint32) string {
	if op == opIllegal {
		return "ILLEGAL"
	}
	if int64(op) < int64(len(opNames)) && opNames[op] != "" {
		return opNames[op]
	}
	return "OP(" + strconv.FormatUint(uint64(op), 10) + ")"
}

// ACCESS4 bits (RFC 8881 §18.1).
const (
	accessRead    = 0x01 // ACCESS4_READ
	accessLookup  = 0x02 // ACCESS4_LOOKUP
	accessModify  = 0x04 // ACCESS4_MODIFY
	accessExtend  = 0x08 // ACCESS4_EXTEND
	accessDelete  = 0x10 // ACCESS4_DELETE
	accessExecute = 0x20 // ACCESS4_EXECUTE
)

// OPEN share access and deny bits, and the 4.1 delegation wants carried in
// share_access (RFC 8881 §18.16).
const (
	shareAccessRead  = 0x1 // OPEN4_SHARE_ACCESS_READ
	shareAccessWrite = 0x2 // OPEN4_SHARE_ACCESS_WRITE
	shareAccessBoth  = 0x3 // OPEN4_SHARE_ACCESS_BOTH

	shareDenyNone  = 0x0 // OPEN4_SHARE_DENY_NONE
	shareDenyRead  = 0x1 // OPEN4_SHARE_DENY_READ
	shareDenyWrite = 0x2 // OPEN4_SHARE_DENY_WRITE
	shareDenyBoth  = 0x3 // OPEN4_SHARE_DENY_BOTH

	shareAccessWantDelegMask    = 0xff00 // OPEN4_SHARE_ACCESS_WANT_DELEG_MASK
	shareAccessWantNoPreference = 0x0000 // OPEN4_SHARE_ACCESS_WANT_NO_PREFERENCE
	shareAccessWantReadDeleg    = 0x0100 // OPEN4_SHARE_ACCESS_WANT_READ_DELEG
	shareAccessWantWriteDeleg   = 0x0200 // OPEN4_SHARE_ACCESS_WANT_WRITE_DELEG
	shareAccessWantAnyDeleg     = 0x0300 // OPEN4_SHARE_ACCESS_WANT_ANY_DELEG
	shareAccessWantNoDeleg      = 0x0400 // OPEN4_SHARE_ACCESS_WANT_NO_DELEG
	shareAccessWantCancel       = 0x0500 // OPEN4_SHARE_ACCESS_WANT_CANCEL
)

// opentype4 and createmode4 (RFC 8881 §18.16).
const (
	open4NoCreate = 0 // OPEN4_NOCREATE
	open4Create   = 1 // OPEN4_CREATE

	createUnchecked   = 0 // UNCHECKED4
	createGuarded     = 1 // GUARDED4
	createExclusive   = 2 // EXCLUSIVE4 (deprecated in 4.1)
	createExclusive41 = 3 // EXCLUSIVE4_1
)

// open_claim_type4 (RFC 8881 §18.16).
const (
	claimNull         = 0 // CLAIM_NULL
	claimPrevious     = 1 // CLAIM_PREVIOUS
	claimDelegateCur  = 2 // CLAIM_DELEGATE_CUR
	claimDelegatePrev = 3 // CLAIM_DELEGATE_PREV
	claimFH           = 4 // CLAIM_FH
	claimDelegCurFH   = 5 // CLAIM_DELEG_CUR_FH
	claimDelegPrevFH  = 6 // CLAIM_DELEG_PREV_FH
)

// open_delegation_type4 and why_no_delegation4 (RFC 8881 §18.16).
const (
	delegNone    = 0 // OPEN_DELEGATE_NONE
	delegRead    = 1 // OPEN_DELEGATE_READ
	delegWrite   = 2 // OPEN_DELEGATE_WRITE
	delegNoneExt = 3 // OPEN_DELEGATE_NONE_EXT

	wndNotWanted              = 0 // WND4_NOT_WANTED
	wndContention             = 1 // WND4_CONTENTION
	wndResource               = 2 // WND4_RESOURCE
	wndNotSuppFtype           = 3 // WND4_NOT_SUPP_FTYPE
	wndWriteDelegNotSuppFtype = 4 // WND4_WRITE_DELEG_NOT_SUPP_FTYPE
	wndNotSuppUpgrade         = 5 // WND4_NOT_SUPP_UPGRADE
	wndNotSuppDowngrade       = 6 // WND4_NOT_SUPP_DOWNGRADE
	wndCancelled              = 7 // WND4_CANCELLED
	wndIsDir                  = 8 // WND4_IS_DIR

	limitSize   = 1 // NFS_LIMIT_SIZE
	limitBlocks = 2 // NFS_LIMIT_BLOCKS
)

// OPEN4 result flags (RFC 8881 §18.16).
const (
	openResultConfirm          = 0x02 // OPEN4_RESULT_CONFIRM (4.0 only)
	openResultLockTypePosix    = 0x04 // OPEN4_RESULT_LOCKTYPE_POSIX
	openResultPreserveUnlinked = 0x08 // OPEN4_RESULT_PRESERVE_UNLINKED
	openResultMayNotifyLock    = 0x20 // OPEN4_RESULT_MAY_NOTIFY_LOCK
)

// stable_how4 (RFC 8881 §18.32).
const (
	unstable4 = 0 // UNSTABLE4
	dataSync4 = 1 // DATA_SYNC4
	fileSync4 = 2 // FILE_SYNC4
)

// time_how4 (RFC 8881 §3.3.7).
const (
	setToServerTime = 0 // SET_TO_SERVER_TIME4
	setToClientTime = 1 // SET_TO_CLIENT_TIME4
)

// secinfo_style4 (RFC 8881 §18.45).
const (
	secinfoStyleCurrentFH = 0 // SECINFO_STYLE4_CURRENT_FH
	secinfoStyleParent    = 1 // SECINFO_STYLE4_PARENT
)

// The RPCSEC_GSS services of rpc_gss_svc_t (RFC 2203), as SECINFO
// returns them (RFC 8881 §18.45). The authentication flavors are package
// rpc's (rpc.AuthFlavorSys, ...).
const (
	gssSvcNone = 1 // RPC_GSS_SVC_NONE
	gssSvcInt  = 2 // RPC_GSS_SVC_INTEGRITY
	gssSvcPriv = 3 // RPC_GSS_SVC_PRIVACY
)

// EXCHANGE_ID flags (RFC 8881 §18.35).
const (
	exchgidFlagSuppMovedRefer   = 0x00000001 // EXCHGID4_FLAG_SUPP_MOVED_REFER
	exchgidFlagSuppMovedMigr    = 0x00000002 // EXCHGID4_FLAG_SUPP_MOVED_MIGR
	exchgidFlagSuppFenceOps     = 0x00000004 // EXCHGID4_FLAG_SUPP_FENCE_OPS
	exchgidFlagBindPrincStateid = 0x00000100 // EXCHGID4_FLAG_BIND_PRINC_STATEID
	exchgidFlagUseNonPNFS       = 0x00010000 // EXCHGID4_FLAG_USE_NON_PNFS
	exchgidFlagUsePNFSMDS       = 0x00020000 // EXCHGID4_FLAG_USE_PNFS_MDS
	exchgidFlagUsePNFSDS        = 0x00040000 // EXCHGID4_FLAG_USE_PNFS_DS
	exchgidFlagMaskPNFS         = 0x00070000 // EXCHGID4_FLAG_MASK_PNFS
	exchgidFlagUpdConfirmedRecA = 0x40000000 // EXCHGID4_FLAG_UPD_CONFIRMED_REC_A
	exchgidFlagConfirmedR       = 0x80000000 // EXCHGID4_FLAG_CONFIRMED_R
)

// state_protect_how4 (RFC 8881 §18.35).
const (
	sp4None     = 0 // SP4_NONE
	sp4MachCred = 1 // SP4_MACH_CRED
	sp4SSV      = 2 // SP4_SSV
)

// CREATE_SESSION flags (RFC 8881 §18.36).
const (
	createSessionFlagPersist      = 0x1 // CREATE_SESSION4_FLAG_PERSIST
	createSessionFlagConnBackChan = 0x2 // CREATE_SESSION4_FLAG_CONN_BACK_CHAN
	createSessionFlagConnRDMA     = 0x4 // CREATE_SESSION4_FLAG_CONN_RDMA
)

// channel_dir_from_client4 and channel_dir_from_server4 (RFC 8881 §18.34).
const (
	cdfcFore       = 0x1 // CDFC4_FORE
	cdfcBack       = 0x2 // CDFC4_BACK
	cdfcForeOrBoth = 0x3 // CDFC4_FORE_OR_BOTH
	cdfcBackOrBoth = 0x7 // CDFC4_BACK_OR_BOTH

	cdfsFore = 0x1 // CDFS4_FORE
	cdfsBack = 0x2 // CDFS4_BACK
	cdfsBoth = 0x3 // CDFS4_BOTH
)

// SEQUENCE status flags (RFC 8881 §18.46).
const (
	seqStatusCBPathDown              = 0x00000001 // SEQ4_STATUS_CB_PATH_DOWN
	seqStatusCBGSSContextsExpiring   = 0x00000002 // SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRING
	seqStatusCBGSSContextsExpired    = 0x00000004 // SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRED
	seqStatusExpiredAllStateRevoked  = 0x00000008 // SEQ4_STATUS_EXPIRED_ALL_STATE_REVOKED
	seqStatusExpiredSomeStateRevoked = 0x00000010 // SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED
	seqStatusAdminStateRevoked       = 0x00000020 // SEQ4_STATUS_ADMIN_STATE_REVOKED
	seqStatusRecallableStateRevoked  = 0x00000040 // SEQ4_STATUS_RECALLABLE_STATE_REVOKED
	seqStatusLeaseMoved              = 0x00000080 // SEQ4_STATUS_LEASE_MOVED
	seqStatusRestartReclaimNeeded    = 0x00000100 // SEQ4_STATUS_RESTART_RECLAIM_NEEDED
	seqStatusCBPathDownSession       = 0x00000200 // SEQ4_STATUS_CB_PATH_DOWN_SESSION
	seqStatusBackchannelFault        = 0x00000400 // SEQ4_STATUS_BACKCHANNEL_FAULT
	seqStatusDevIDChanged            = 0x00000800 // SEQ4_STATUS_DEVID_CHANGED
	seqStatusDevIDDeleted            = 0x00001000 // SEQ4_STATUS_DEVID_DELETED
)

// fattr4_fh_expire_type bits (RFC 8881 §5.8.1.3).
const (
	fhPersistent       = 0x0 // FH4_PERSISTENT
	fhNoExpireWithOpen = 0x1 // FH4_NOEXPIRE_WITH_OPEN
	fhVolatileAny      = 0x2 // FH4_VOLATILE_ANY
	fhVolMigration     = 0x4 // FH4_VOL_MIGRATION
	fhVolRename        = 0x8 // FH4_VOL_RENAME
)
