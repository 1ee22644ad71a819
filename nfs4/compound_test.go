package nfs4

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

// checkGolden compares a built request with a listing written by hand from
// the XDR of RFC 5662, and the recorded operations with ops.
func checkGolden(t *testing.T, c *compound, e *xdr.Encoder, listing string, ops ...uint32) {
	t.Helper()
	if err := c.finish(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	want := hexBytes(t, listing)
	if got := e.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("request bytes differ\n got %x\nwant %x", got, want)
	}
	if got := c.ops(); got.n != len(ops) || !equalOps(got.ops[:got.n], ops) {
		t.Errorf("recorded ops %v, want %v", got.ops[:got.n], ops)
	}
}

func equalOps(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGoldenSequencePutrootfhGetattr(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.sequence(&sampleSession, 5, 2, 7, false)
	c.putrootfh()
	c.getattr(MaskOf(AttrType, AttrSize, AttrMode))
	checkGolden(t, &c, &e, `
		00000000                          tag: empty utf8str_cs
		00000001                          minorversion 1
		00000003                          argarray: 3 operations
		00000035                          OP_SEQUENCE (53)
		101112131415161718191a1b1c1d1e1f  sa_sessionid
		00000005                          sa_sequenceid
		00000002                          sa_slotid
		00000007                          sa_highest_slotid
		00000000                          sa_cachethis FALSE
		00000018                          OP_PUTROOTFH (24)
		00000009                          OP_GETATTR (9)
		00000002                          attr_request: 2 words
		00000012                          word 0: type (1), size (4)
		00000002                          word 1: mode (33)
	`, opSequence, opPutRootFH, opGetattr)
}

func TestGoldenOpenCreateGuarded(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "open")
	c.putfh([]byte{0xde, 0xad, 0xbe, 0xef})
	c.open(&openArgs{
		shareAccess: shareAccessWrite,
		shareDeny:   shareDenyNone,
		clientID:    0xabc,
		owner:       []byte("owner"),
		create:      true,
		createMode:  createGuarded,
		attrs:       &sattr{mask: MaskOf(AttrSize, AttrMode), size: 0, mode: 0o644},
		claim:       claimNull,
		name:        "file.txt",
	})
	c.getfh()
	checkGolden(t, &c, &e, `
		00000004          tag length 4
		6f70656e          "open"
		00000001          minorversion 1
		00000003          3 operations
		00000016          OP_PUTFH (22)
		00000004          nfs_fh4 length 4
		deadbeef          file handle
		00000012          OP_OPEN (18)
		00000000          seqid 0
		00000002          share_access OPEN4_SHARE_ACCESS_WRITE
		00000000          share_deny OPEN4_SHARE_DENY_NONE
		0000000000000abc  owner.clientid
		00000005          owner.owner length 5
		6f776e6572000000  "owner" and 3 pad bytes
		00000001          opentype OPEN4_CREATE
		00000001          createmode GUARDED4
		00000002          createattrs.attrmask: 2 words
		00000010          word 0: size (4)
		00000002          word 1: mode (33)
		0000000c          attr_vals length 12
		0000000000000000  size 0
		000001a4          mode 0644
		00000000          claim CLAIM_NULL
		00000008          file length 8
		66696c652e747874  "file.txt"
		0000000a          OP_GETFH (10)
	`, opPutFH, opOpen, opGetFH)
}

func TestGoldenOpenExclusive41(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.open(&openArgs{
		shareAccess: shareAccessBoth | shareAccessWantNoDeleg,
		shareDeny:   shareDenyNone,
		clientID:    1,
		owner:       []byte{9},
		create:      true,
		createMode:  createExclusive41,
		verf:        verifier{1, 2, 3, 4, 5, 6, 7, 8},
		attrs:       &sattr{mask: MaskOf(AttrMode), mode: 0o600},
		claim:       claimNull,
		name:        "x",
	})
	checkGolden(t, &c, &e, `
		00000000          tag
		00000001          minorversion
		00000001          1 operation
		00000012          OP_OPEN
		00000000          seqid
		00000403          share_access BOTH | WANT_NO_DELEG
		00000000          share_deny NONE
		0000000000000001  clientid
		00000001          owner length 1
		09000000          owner and pad
		00000001          OPEN4_CREATE
		00000003          EXCLUSIVE4_1
		0102030405060708  cva_verf
		00000002          cva_attrs.attrmask: 2 words
		00000000          word 0
		00000002          word 1: mode (33)
		00000004          attr_vals length 4
		00000180          mode 0600
		00000000          CLAIM_NULL
		00000001          file length 1
		78000000          "x" and pad
	`, opOpen)
}

func TestGoldenOpenClaims(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.open(&openArgs{shareAccess: shareAccessRead, clientID: 2, owner: []byte{1, 2, 3, 4}, claim: claimFH})
	c.open(&openArgs{shareAccess: shareAccessRead, clientID: 2, owner: []byte{1, 2, 3, 4},
		claim: claimPrevious, delegType: delegRead})
	checkGolden(t, &c, &e, `
		00000000          tag
		00000001          minorversion
		00000002          2 operations
		00000012          OP_OPEN
		00000000          seqid
		00000001          share_access READ
		00000000          share_deny NONE
		0000000000000002  clientid
		00000004          owner length
		01020304          owner
		00000000          OPEN4_NOCREATE
		00000004          CLAIM_FH (no body)
		00000012          OP_OPEN
		00000000          seqid
		00000001          share_access READ
		00000000          share_deny NONE
		0000000000000002  clientid
		00000004          owner length
		01020304          owner
		00000000          OPEN4_NOCREATE
		00000001          CLAIM_PREVIOUS
		00000001          delegate_type OPEN_DELEGATE_READ
	`, opOpen, opOpen)
}

func TestGoldenWrite(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.write(&sampleStateID, 4096, fileSync4, []byte("hello"))
	checkGolden(t, &c, &e, `
		00000000                  tag
		00000001                  minorversion
		00000001                  1 operation
		00000026                  OP_WRITE (38)
		00000007                  stateid.seqid
		0102030405060708090a0b0c  stateid.other
		0000000000001000          offset 4096
		00000002                  stable FILE_SYNC4
		00000005                  data length 5
		68656c6c6f000000          "hello" and 3 pad bytes
	`, opWrite)
}

func TestGoldenSetattrTimes(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.setattr(&anonStateID, &sattr{
		mask:  MaskOf(AttrOwner, AttrTimeAccessSet, AttrTimeModifySet),
		owner: "1000",
		mtime: time.Unix(1700000000, 5),
	})
	checkGolden(t, &c, &e, `
		00000000                  tag
		00000001                  minorversion
		00000001                  1 operation
		00000022                  OP_SETATTR (34)
		00000000                  stateid.seqid (anonymous)
		000000000000000000000000  stateid.other
		00000002                  attrmask: 2 words
		00000000                  word 0
		00410010                  word 1: owner (36), time_access_set (48), time_modify_set (54)
		0000001c                  attr_vals length 28
		00000004                  owner length
		31303030                  "1000"
		00000000                  time_access_set SET_TO_SERVER_TIME4
		00000001                  time_modify_set SET_TO_CLIENT_TIME4
		000000006553f100          seconds 1700000000
		00000005                  nseconds
	`, opSetattr)
}

func TestGoldenSessionSetup(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.exchangeID(&exchangeIDArgs{
		verifier: verifier{0, 0, 0, 0, 0, 0, 0, 1},
		ownerID:  []byte("gonfs"),
		flags:    exchgidFlagSuppMovedRefer | exchgidFlagBindPrincStateid,
		impl:     &implID{domain: "x.org", name: "go", date: time.Unix(0, 0)},
	})
	c.createSession(&createSessionArgs{
		clientID:  0x1122334455667788,
		sequence:  1,
		flags:     createSessionFlagConnBackChan,
		fore:      channelAttrs{maxRequestSize: 1 << 20, maxResponseSize: 1 << 20, maxResponseSizeCached: 4096, maxOperations: 16, maxRequests: 64},
		back:      channelAttrs{maxRequestSize: 4096, maxResponseSize: 4096, maxOperations: 2, maxRequests: 1},
		cbProgram: 0x40000000,
		sec:       []cbSecParms{{flavor: rpc.AuthFlavorNone}, {flavor: rpc.AuthFlavorSys, sys: rpc.SysCred{Stamp: 3, Machine: "h", UID: 0, GID: 0, GIDs: []uint32{10}}}},
	})
	c.reclaimComplete(false)
	c.destroySession(&sampleSession)
	c.destroyClientID(0x1122334455667788)
	checkGolden(t, &c, &e, `
		00000000          tag
		00000001          minorversion
		00000005          5 operations
		0000002a          OP_EXCHANGE_ID (42)
		0000000000000001  co_verifier
		00000005          co_ownerid length
		676f6e6673000000  "gonfs" and pad
		00000101          eia_flags SUPP_MOVED_REFER | BIND_PRINC_STATEID
		00000000          eia_state_protect SP4_NONE
		00000001          eia_client_impl_id: 1 element
		00000005          nii_domain length
		782e6f7267000000  "x.org" and pad
		00000002          nii_name length
		676f0000          "go" and pad
		0000000000000000  nii_date.seconds
		00000000          nii_date.nseconds
		0000002b          OP_CREATE_SESSION (43)
		1122334455667788  csa_clientid
		00000001          csa_sequence
		00000002          csa_flags CONN_BACK_CHAN
		00000000          fore ca_headerpadsize
		00100000          fore ca_maxrequestsize
		00100000          fore ca_maxresponsesize
		00001000          fore ca_maxresponsesize_cached
		00000010          fore ca_maxoperations
		00000040          fore ca_maxrequests
		00000000          fore ca_rdma_ird: empty
		00000000          back ca_headerpadsize
		00001000          back ca_maxrequestsize
		00001000          back ca_maxresponsesize
		00000000          back ca_maxresponsesize_cached
		00000002          back ca_maxoperations
		00000001          back ca_maxrequests
		00000000          back ca_rdma_ird: empty
		40000000          csa_cb_program
		00000002          csa_sec_parms: 2 elements
		00000000          AUTH_NONE
		00000001          AUTH_SYS
		00000003          stamp
		00000001          machinename length
		68000000          "h" and pad
		00000000          uid
		00000000          gid
		00000001          gids: 1 element
		0000000a          gid 10
		0000003a          OP_RECLAIM_COMPLETE (58)
		00000000          rca_one_fs FALSE
		0000002c          OP_DESTROY_SESSION (44)
		101112131415161718191a1b1c1d1e1f  dsa_sessionid
		00000039          OP_DESTROY_CLIENTID (57)
		1122334455667788  dca_clientid
	`, opExchangeID, opCreateSession, opReclaimComplete, opDestroySession, opDestroyClientID)
}

func TestGoldenDirectoryOps(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.savefh()
	c.lookup("d")
	c.create(&createArgs{typ: TypeSymlink, name: "l", linkData: "tgt"})
	c.rename("a", "bb")
	c.readdir(0, &verifier{}, 512, 4096, MaskOf(AttrType))
	c.restorefh()
	c.lookupp()
	checkGolden(t, &c, &e, `
		00000000          tag
		00000001          minorversion
		00000007          7 operations
		00000020          OP_SAVEFH (32)
		0000000f          OP_LOOKUP (15)
		00000001          objname length
		64000000          "d"
		00000006          OP_CREATE (6)
		00000005          objtype NF4LNK
		00000003          linkdata length
		74677400          "tgt"
		00000001          objname length
		6c000000          "l"
		00000000          createattrs: 0 bitmap words
		00000000          attr_vals length 0
		0000001d          OP_RENAME (29)
		00000001          oldname length
		61000000          "a"
		00000002          newname length
		62620000          "bb"
		0000001a          OP_READDIR (26)
		0000000000000000  cookie
		0000000000000000  cookieverf
		00000200          dircount
		00001000          maxcount
		00000001          attr_request: 1 word
		00000002          type (1)
		0000001f          OP_RESTOREFH (31)
		00000010          OP_LOOKUPP (16)
	`, opSaveFH, opLookup, opCreate, opRename, opReaddir, opRestoreFH, opLookupP)
}

func TestGoldenStateOps(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	c.read(&currentStateID, 1<<32, 65536)
	c.commit(0, 0)
	c.close(&sampleStateID)
	c.openDowngrade(&sampleStateID, shareAccessRead, shareDenyNone)
	c.testStateID([]stateID{sampleStateID})
	c.freeStateID(&sampleStateID)
	c.bindConnToSession(&sampleSession, cdfcForeOrBoth, false)
	c.secinfoNoName(secinfoStyleCurrentFH)
	checkGolden(t, &c, &e, `
		00000000                  tag
		00000001                  minorversion
		00000008                  8 operations
		00000019                  OP_READ (25)
		00000001                  current stateid: seqid 1
		000000000000000000000000  other 0
		0000000100000000          offset 2^32
		00010000                  count 65536
		00000005                  OP_COMMIT (5)
		0000000000000000          offset
		00000000                  count
		00000004                  OP_CLOSE (4)
		00000000                  seqid
		00000007                  open_stateid.seqid
		0102030405060708090a0b0c  open_stateid.other
		00000015                  OP_OPEN_DOWNGRADE (21)
		00000007                  open_stateid.seqid
		0102030405060708090a0b0c  open_stateid.other
		00000000                  seqid
		00000001                  share_access READ
		00000000                  share_deny NONE
		00000037                  OP_TEST_STATEID (55)
		00000001                  1 stateid
		00000007                  seqid
		0102030405060708090a0b0c  other
		0000002d                  OP_FREE_STATEID (45)
		00000007                  seqid
		0102030405060708090a0b0c  other
		00000029                  OP_BIND_CONN_TO_SESSION (41)
		101112131415161718191a1b1c1d1e1f  bctsa_sessid
		00000003                  bctsa_dir CDFC4_FORE_OR_BOTH
		00000000                  bctsa_use_conn_in_rdma_mode FALSE
		00000034                  OP_SECINFO_NO_NAME (52)
		00000000                  SECINFO_STYLE4_CURRENT_FH
	`, opRead, opCommit, opClose, opOpenDowngrade, opTestStateID, opFreeStateID,
		opBindConnToSession, opSecinfoNoName)
}

func TestBuilderRejectsBadArguments(t *testing.T) {
	testutil.CheckLeaks(t)
	long := strings.Repeat("n", 256)
	tests := []struct {
		name  string
		build func(c *compound)
		is    error // the error must match this, when set
	}{
		{"name too long", func(c *compound) { c.lookup(long) }, syscall.ENAMETOOLONG},
		{"name too long is a Status", func(c *compound) { c.remove(long) }, ErrNameTooLong},
		{"empty name", func(c *compound) { c.lookup("") }, ErrInval},
		{"dot", func(c *compound) { c.remove(".") }, ErrBadName},
		{"dotdot", func(c *compound) { c.link("..") }, fs.ErrInvalid},
		{"slash", func(c *compound) { c.lookup("a/b") }, ErrBadName},
		{"nul", func(c *compound) { c.rename("a", "b\x00") }, ErrBadName},
		{"fh too long", func(c *compound) { c.putfh(make([]byte, 129)) }, nil},
		{"empty fh", func(c *compound) { c.putfh(nil) }, nil},
		{"mode bits", func(c *compound) { c.setattr(&anonStateID, &sattr{mask: MaskOf(AttrMode), mode: 0o10000}) }, nil},
		{"unsettable attribute", func(c *compound) { c.setattr(&anonStateID, &sattr{mask: MaskOf(AttrType)}) }, nil},
		{"empty owner", func(c *compound) { c.setattr(&anonStateID, &sattr{mask: MaskOf(AttrOwner)}) }, nil},
		{"no attributes", func(c *compound) { c.setattr(&anonStateID, nil) }, nil},
		{"open owner empty", func(c *compound) { c.open(&openArgs{claim: claimFH}) }, nil},
		{"open bad create mode", func(c *compound) {
			c.open(&openArgs{owner: []byte{1}, create: true, createMode: 9, claim: claimFH})
		}, nil},
		{"open exclusive4 with attrs", func(c *compound) {
			c.open(&openArgs{owner: []byte{1}, create: true, createMode: createExclusive, attrs: &sattr{}, claim: claimNull, name: "f"})
		}, nil},
		{"open bad claim", func(c *compound) { c.open(&openArgs{owner: []byte{1}, claim: 42}) }, nil},
		{"open long name", func(c *compound) { c.open(&openArgs{owner: []byte{1}, claim: claimNull, name: long}) }, ErrNameTooLong},
		{"create regular", func(c *compound) { c.create(&createArgs{typ: TypeRegular, name: "f"}) }, nil},
		{"symlink without target", func(c *compound) { c.create(&createArgs{typ: TypeSymlink, name: "f"}) }, nil},
		{"write bad stable", func(c *compound) { c.write(&anonStateID, 0, 3, nil) }, nil},
		{"test no stateids", func(c *compound) { c.testStateID(nil) }, nil},
		{"exchange_id empty owner", func(c *compound) { c.exchangeID(&exchangeIDArgs{}) }, nil},
		{"create_session gss", func(c *compound) {
			c.createSession(&createSessionArgs{sec: []cbSecParms{{flavor: rpc.AuthFlavorGSS}}})
		}, nil},
		{"create_session 17 gids", func(c *compound) {
			c.createSession(&createSessionArgs{sec: []cbSecParms{{flavor: rpc.AuthFlavorSys, sys: rpc.SysCred{GIDs: make([]uint32, 17)}}}})
		}, nil},
		{"too many ops", func(c *compound) {
			for i := 0; i <= maxOps; i++ {
				c.putrootfh()
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e xdr.Encoder
			var c compound
			c.begin(&e, "")
			tt.build(&c)
			n := c.ops().n
			c.getfh() // nothing is added after an error
			err := c.finish()
			if err == nil {
				t.Fatal("finish succeeded")
			}
			if !strings.HasPrefix(err.Error(), "nfs4: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			if c.ops().n != n {
				t.Errorf("an operation was added after the error")
			}
		})
	}
}

func TestBuilderMisuse(t *testing.T) {
	testutil.CheckLeaks(t)
	var c compound
	c.putrootfh()
	if err := c.finish(); err == nil {
		t.Error("operation without begin: finish succeeded")
	}
	var e xdr.Encoder
	c.begin(&e, strings.Repeat("t", maxTagLen+1))
	if err := c.finish(); err == nil {
		t.Error("long tag: finish succeeded")
	}
	// begin resets an earlier error and op list.
	e.Reset(e.Bytes()[:0])
	c.begin(&e, "")
	c.putrootfh()
	if err := c.finish(); err != nil || c.ops().n != 1 {
		t.Errorf("after reset: err %v, %d ops", err, c.ops().n)
	}
}

func TestBuilderMaxOps(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	var c compound
	c.begin(&e, "")
	for i := 0; i < maxOps; i++ {
		c.putrootfh()
	}
	if err := c.finish(); err != nil {
		t.Fatalf("%d ops: %v", maxOps, err)
	}
	d := xdr.NewDecoder(e.Bytes())
	d.String(0)
	d.Uint32()
	if n := d.Uint32(); n != maxOps {
		t.Errorf("count field %d, want %d", n, maxOps)
	}
}

func TestBuilderAppendsToCallerBuffer(t *testing.T) {
	testutil.CheckLeaks(t)
	prefix := []byte{0xaa, 0xbb, 0xcc, 0xdd} // an RPC header written earlier
	var e xdr.Encoder
	e.Reset(append(make([]byte, 0, 256), prefix...))
	var c compound
	c.begin(&e, "")
	c.putrootfh()
	c.getfh()
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	got := e.Bytes()
	if !bytes.Equal(got[:4], prefix) {
		t.Errorf("prefix overwritten: %x", got[:4])
	}
	want := hexBytes(t, `
		aabbccdd  prefix
		00000000  tag
		00000001  minorversion
		00000002  2 operations
		00000018  PUTROOTFH
		0000000a  GETFH
	`)
	if !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
}

func BenchmarkBuildReadCompound(b *testing.B) {
	benchBuild(b, func(c *compound, i int) { c.read(&sampleStateID, uint64(i)*4096, 4096) })
}

// BenchmarkBuildGetattrCompound encodes SEQUENCE, PUTFH, GETATTR of the
// attributes File.Stat asks for: the request of the commonest small call.
func BenchmarkBuildGetattrCompound(b *testing.B) {
	benchBuild(b, func(c *compound, _ int) { c.getattr(statMask) })
}

// benchBuild encodes SEQUENCE, PUTFH and what op adds, b.N times.
func benchBuild(b *testing.B, op func(c *compound, i int)) {
	buf := make([]byte, 0, 512)
	fh := make([]byte, 32)
	var e xdr.Encoder
	var c compound
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Reset(buf[:0])
		c.begin(&e, "")
		c.sequence(&sampleSession, uint32(i), 0, 0, false)
		c.putfh(fh)
		op(&c, i)
		if err := c.finish(); err != nil {
			b.Fatal(err)
		}
	}
}
