package nfs4

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc/xdr"
)

// NFSv4.0 against both servers: Ganesha serving 4.0 alone, and the Linux
// server (which serves 4.0 besides 4.1 and 4.2) with the Client pinned to
// 4.0, from one reserved port (SameReservedPort, the policy for servers
// whose duplicate-request cache must recognise a re-sent call). The tests
// are those of the 4.1 suite: fstest over a tree; a tree made, listed,
// renamed and removed; the error mapping; 96 MiB through io.Copy each
// way; the 64-goroutine mixed
// workload (many open owners at once, each with its own seqid sequence);
// connection resets under 64 goroutines of exclusive creates, renames and
// removes, where calls re-sent with their XID must run exactly once; and
// a server crash in the middle of a 64 MiB copy, after which the Client
// gets a new client ID and reclaims the open file in grace.
//
// The resets run against Ganesha only. The Linux server keeps no
// duplicate-request cache for NFSv4 at all (its COMPOUND procedure is
// RC_NOCACHE): over 4.0 only the open owners' seqid replay cache protects
// OPEN, OPEN_CONFIRM and CLOSE, and a RENAME or REMOVE re-sent after a
// reset may run twice whatever the port.
func TestV40(t *testing.T) {
	gcfg := ganesha.Config{MinorVersions: []int{0}, Lease: time.Minute, Grace: 20 * time.Second}
	cfg := Config{Version: Version40, Slots: 64, Logger: testLogger(t), Policy: policy.SameReservedPort(policy.Options{})}
	forEachServerWith(t, gcfg, cfg, func(t *testing.T, s testServer, c *Client) {
		if v := c.MinorVersion(); v != 0 {
			t.Fatalf("MinorVersion() = %d; want 0", v)
		}
		// The error mapping first: it checks that failed operations left
		// the directory as it was, so it must find only its own files.
		t.Run("errors", func(t *testing.T) { testNamespaceErrors(t, s, c) })
		t.Run("fstest", func(t *testing.T) { testFstest(t, s, c) })
		t.Run("tree", func(t *testing.T) { testTree(t, s, c) })
		t.Run("iocopy", func(t *testing.T) { testBigFile(t, s, c, 96<<20) })
		t.Run("mixed64", func(t *testing.T) { testMixed64(t, s, c) })
		if s.name == "ganesha" {
			t.Run("resets", func(t *testing.T) { testResets(t, s, c) })
		}
		// 64 MiB rather than the 4.1 suite's 128: the same reclaim, in half
		// the time.
		t.Run("crash", func(t *testing.T) { killedMidCopy(t, s, c, 64<<20) })
	})
}

// A Ganesha that serves NFSv4.0 alone: the default Config negotiates down
// to 4.0 and works; a Client pinned to 4.1 gets a VersionError naming it.
func TestGaneshaWithoutMinorVersion1(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := ganesha.Start(t, ganesha.Config{MinorVersions: []int{0}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eph := policy.Ephemeral(policy.Options{})
	c := dialServer(t, srv.Addr(), Config{Policy: eph})
	if v := c.MinorVersion(); v != 0 {
		t.Fatalf("negotiated minor version %d; want 0", v)
	}
	name := srv.Pseudo() + "/negotiated"
	writeFile(t, c, name, []byte("four point oh"))
	checkFile(t, c, name, []byte("four point oh"))

	_, err := Dial(ctx, srv.Addr(), Config{Version: Version41, Policy: policy.Ephemeral(policy.Options{})})
	var ve *VersionError
	if !errors.As(err, &ve) || !errors.Is(err, ErrMinorVersMismatch) || !strings.Contains(err.Error(), "NFSv4.1") {
		t.Fatalf("Dial pinned to 4.1: %v; want a VersionError naming NFSv4.1", err)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"": VersionAny, "4": VersionAny, "4.0": Version40, "v4.1": Version41, "41": Version41, "4.2": Version42, "V4.2": Version42} {
		if v, err := ParseVersion(in); err != nil || v != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, v, err, want)
		}
	}
	if _, err := ParseVersion("3"); err == nil {
		t.Error("ParseVersion(\"3\") succeeded")
	}
}

// SETCLIENTID refused with NFS4ERR_CLID_INUSE carries the address of the
// client holding the identity; it is read (bounded) and the status
// returned.
func TestSetClientIDInUse(t *testing.T) {
	l := listOf(opSetClientID)
	re := newReplyEnc(ErrClidInUse, 1)
	re.res(opSetClientID, ErrClidInUse)
	re.String("tcp")
	re.String("192.0.2.7.3.231")
	var r reply
	if err := r.init(re.Bytes(), l); err != nil {
		t.Fatal(err)
	}
	var res setClientIDRes
	if err := r.setClientID(&res); !errors.Is(err, ErrClidInUse) || res.inUse != "tcp 192.0.2.7.3.231" {
		t.Fatalf("setClientID: %v, in use by %q", err, res.inUse)
	}
	if err := r.end(); !errors.Is(err, ErrClidInUse) {
		t.Fatalf("end: %v", err)
	}
	// An address longer than any netaddr4 is malformed, not read.
	re = newReplyEnc(ErrClidInUse, 1)
	re.res(opSetClientID, ErrClidInUse)
	re.String("tcp")
	re.String(strings.Repeat("9", maxUAddrLen+1))
	r.init(re.Bytes(), l)
	if err := r.setClientID(&res); err == nil || errors.Is(err, ErrClidInUse) || !strings.HasPrefix(err.Error(), "nfs4: ") {
		t.Fatalf("oversized address: %v; want a malformed-reply error", err)
	}
}

// TestLeaseExpiry over NFSv4.0, against both servers: after the server
// expired the client behind a silent path (knfsd, a courteous server,
// once a second client's open conflicts), RENEW or OPEN answers
// NFS4ERR_EXPIRED or STALE_CLIENTID (knfsd: EXPIRED), the Client gets a
// new client ID, opens the file it may still open again by name (4.0 has
// no CLAIM_FH), and loses the one it may not.
func TestV40LeaseExpiry(t *testing.T) {
	t.Run("ganesha", func(t *testing.T) { leaseExpiry(t, Version40) })
	t.Run("knfsd", func(t *testing.T) { knfsdLeaseExpiry(t, Version40) })
}

// Golden NFSv4.0 requests, written by hand from the XDR of RFC 7530.
func TestGoldenV40SetClientID(t *testing.T) {
	var e xdr.Encoder
	var c compound
	c.beginMinor(&e, "", 0)
	c.setClientID(&setClientIDArgs{verifier: verifier{1, 2, 3, 4, 5, 6, 7, 8}, id: []byte("gonfs"),
		cbProgram: callbackProgram, cbNetID: cbNetID, cbAddr: cbUnreachable})
	checkGolden(t, &c, &e, `
		00000000                          tag: empty
		00000000                          minorversion 0
		00000001                          argarray: 1 operation
		00000023                          OP_SETCLIENTID (35)
		0102030405060708                  client.verifier
		00000005                          client.id: 5 bytes
		676f6e6673000000                  "gonfs", padded
		40000000                          callback.cb_program
		00000003                          cb_location.r_netid: 3 bytes
		74637000                          "tcp", padded
		0000000b                          cb_location.r_addr: 11 bytes
		302e302e302e302e302e3000          "0.0.0.0.0.0", padded
		00000000                          callback_ident
	`, opSetClientID)
}

func TestGoldenV40OpenConfirmClose(t *testing.T) {
	var e xdr.Encoder
	var c compound
	c.beginMinor(&e, "", 0)
	c.putfh([]byte{0xfe})
	c.openConfirm(&stateID{seqid: 1, other: [12]byte{0: 0xaa, 11: 0xbb}}, 7)
	c.closeSeq(&stateID{seqid: 2, other: [12]byte{0: 0xaa, 11: 0xbb}}, 8)
	c.renew(0x1122334455667788)
	checkGolden(t, &c, &e, `
		00000000                          tag: empty
		00000000                          minorversion 0
		00000004                          argarray: 4 operations
		00000016                          OP_PUTFH (22)
		00000001                          object: 1 byte
		fe000000                          the handle, padded
		00000014                          OP_OPEN_CONFIRM (20)
		00000001                          open_stateid.seqid
		aa00000000000000000000bb          open_stateid.other
		00000007                          seqid
		00000004                          OP_CLOSE (4)
		00000008                          seqid
		00000002                          open_stateid.seqid
		aa00000000000000000000bb          open_stateid.other
		0000001e                          OP_RENEW (30)
		1122334455667788                  clientid
	`, opPutFH, opOpenConfirm, opClose, opRenew)
}

// The open owner's seqid moves on after every result but those RFC 7530
// §9.1.7 lists.
func TestSeqidAdvances(t *testing.T) {
	for _, st := range []Status{OK, ErrDelay, ErrGrace, ErrNoEnt, ErrExpired, ErrShareDenied} {
		if !seqidAdvances(st) {
			t.Errorf("%v does not advance the seqid; RFC 7530 says it does", st)
		}
	}
	for _, st := range []Status{ErrStaleClientID, ErrStaleStateID, ErrBadStateID, ErrBadSeqID, ErrBadXDR, ErrResource, ErrNoFileHandle, ErrMoved} {
		if seqidAdvances(st) {
			t.Errorf("%v advances the seqid; RFC 7530 says it does not", st)
		}
	}
}
