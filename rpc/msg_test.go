package rpc_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

const (
	nfsProg = 100003
	nfsVers = 4
)

// rawAuth is an Auth that sends the credential and verifier it holds, and
// answers Verify with verifyErr. It records the last header and verifier it
// saw, so it is not safe for concurrent use.
type rawAuth struct {
	cred, verf rpc.OpaqueAuth
	verifyErr  error
	gotHdr     []byte
	gotVerf    rpc.OpaqueAuth
}

func (a *rawAuth) AppendCredVerf(e *xdr.Encoder, hdr []byte) {
	a.gotHdr = bytes.Clone(hdr)
	e.Uint32(a.cred.Flavor)
	e.Opaque(a.cred.Body)
	e.Uint32(a.verf.Flavor)
	e.Opaque(a.verf.Body)
}

func (a *rawAuth) Flavor() uint32 { return a.cred.Flavor }

func (a *rawAuth) Verify(verf rpc.OpaqueAuth) error {
	a.gotVerf = rpc.OpaqueAuth{Flavor: verf.Flavor, Body: bytes.Clone(verf.Body)}
	return a.verifyErr
}

func mustAuthSys(t testing.TB, c rpc.SysCred) *rpc.AuthSys {
	t.Helper()
	a, err := rpc.NewAuthSys(c)
	if err != nil {
		t.Fatalf("NewAuthSys: %v", err)
	}
	return a
}

var testCred = rpc.SysCred{Stamp: 42, Machine: "client", UID: 1000, GID: 100, GIDs: []uint32{10, 1000}}

// TestAppendCallGolden compares an AUTH_SYS NFSv4 NULL call header with
// bytes written out by hand from the RFC 5531 layout.
func TestAppendCallGolden(t *testing.T) {
	testutil.CheckLeaks(t)
	want := []byte{
		0x7a, 0x3c, 0x00, 0x01, // xid
		0, 0, 0, 0, // msg_type CALL
		0, 0, 0, 2, // rpcvers
		0x00, 0x01, 0x86, 0xa3, // prog 100003 (NFS)
		0, 0, 0, 4, // vers 4
		0, 0, 0, 0, // proc 0 (NULL)
		0, 0, 0, 1, // cred flavor AUTH_SYS
		0, 0, 0, 36, // cred body length
		0, 0, 0, 42, // stamp
		0, 0, 0, 6, 'c', 'l', 'i', 'e', 'n', 't', 0, 0, // machinename, padded
		0, 0, 0x03, 0xe8, // uid 1000
		0, 0, 0, 100, // gid 100
		0, 0, 0, 2, // 2 gids
		0, 0, 0, 10,
		0, 0, 0x03, 0xe8,
		0, 0, 0, 0, // verf flavor AUTH_NONE
		0, 0, 0, 0, // verf body length
	}
	var e xdr.Encoder
	rpc.AppendCall(&e, 0x7a3c0001, nfsProg, nfsVers, 0, mustAuthSys(t, testCred))
	if !bytes.Equal(e.Bytes(), want) {
		t.Errorf("AUTH_SYS call header:\n got % x\nwant % x", e.Bytes(), want)
	}

	wantNone := append(bytes.Clone(want[:24]), make([]byte, 16)...)
	for _, auth := range []rpc.Auth{rpc.AuthNone, nil} {
		e.Reset(nil)
		rpc.AppendCall(&e, 0x7a3c0001, nfsProg, nfsVers, 0, auth)
		if !bytes.Equal(e.Bytes(), wantNone) {
			t.Errorf("AUTH_NONE call header (auth %v):\n got % x\nwant % x", auth, e.Bytes(), wantNone)
		}
	}
}

// TestAppendCallHeaderForAuth checks that an Auth sees exactly the header
// from the xid to the procedure, even after a record marker.
func TestAppendCallHeaderForAuth(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	e.Uint32(0x80000000) // a record marker, say
	auth := &rawAuth{cred: rpc.OpaqueAuth{Flavor: rpc.AuthFlavorGSS, Body: []byte("ctx")}}
	rpc.AppendCall(&e, 9, nfsProg, nfsVers, 1, auth)
	want := []byte{0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0x86, 0xa3, 0, 0, 0, 4, 0, 0, 0, 1}
	if !bytes.Equal(auth.gotHdr, want) {
		t.Errorf("header given to Auth = % x, want % x", auth.gotHdr, want)
	}
}

// TestCallRoundTrip checks that ParseCall reads back what AppendCall wrote
// and leaves the decoder at the arguments.
func TestCallRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	gss := &rawAuth{
		cred: rpc.OpaqueAuth{Flavor: rpc.AuthFlavorGSS, Body: []byte("12345")},
		verf: rpc.OpaqueAuth{Flavor: rpc.AuthFlavorGSS, Body: bytes.Repeat([]byte{7}, rpc.MaxAuthBody)},
	}
	tests := []struct {
		name       string
		auth       rpc.Auth
		cred, verf rpc.OpaqueAuth
	}{
		{"AUTH_NONE", rpc.AuthNone, rpc.OpaqueAuth{}, rpc.OpaqueAuth{}},
		{"RPCSEC_GSS-shaped", gss, gss.cred, gss.verf},
		{"AUTH_SYS", mustAuthSys(t, testCred), rpc.OpaqueAuth{Flavor: rpc.AuthFlavorSys}, rpc.OpaqueAuth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e xdr.Encoder
			rpc.AppendCall(&e, 0xfeedface, nfsProg, nfsVers, 1, tt.auth)
			e.String("args")
			d := xdr.NewDecoder(e.Bytes())
			h, err := rpc.ParseCall(d)
			if err != nil {
				t.Fatalf("ParseCall: %v", err)
			}
			if h.XID != 0xfeedface || h.RPCVers != 2 || h.Prog != nfsProg || h.Vers != nfsVers || h.Proc != 1 {
				t.Errorf("header = %+v", h)
			}
			if h.Cred.Flavor != tt.cred.Flavor || h.Verf.Flavor != tt.verf.Flavor || !bytes.Equal(h.Verf.Body, tt.verf.Body) {
				t.Errorf("cred flavor %d, verf %d/%d bytes; want %d, %d/%d bytes",
					h.Cred.Flavor, h.Verf.Flavor, len(h.Verf.Body), tt.cred.Flavor, tt.verf.Flavor, len(tt.verf.Body))
			}
			if tt.cred.Flavor == rpc.AuthFlavorSys {
				c, err := rpc.ParseSysCred(h.Cred.Body)
				if err != nil || c.Machine != testCred.Machine || c.UID != testCred.UID || len(c.GIDs) != 2 {
					t.Errorf("ParseSysCred = %+v, %v; want %+v", c, err, testCred)
				}
			} else if !bytes.Equal(h.Cred.Body, tt.cred.Body) {
				t.Errorf("cred body = % x, want % x", h.Cred.Body, tt.cred.Body)
			}
			if args := d.String(10); args != "args" || d.Remaining() != 0 {
				t.Errorf("after ParseCall the decoder reads %q with %d left, want the arguments", args, d.Remaining())
			}
		})
	}
}

// TestParseCallRPCMismatch checks that a call for another RPC version
// yields the denial a server should send back.
func TestParseCallRPCMismatch(t *testing.T) {
	testutil.CheckLeaks(t)
	msg := []byte{0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad}
	h, err := rpc.ParseCall(xdr.NewDecoder(msg))
	var de *rpc.DeniedError
	if !errors.As(err, &de) || de.Stat != rpc.RPCMismatch || de.Low != 2 || de.High != 2 {
		t.Fatalf("ParseCall(rpcvers 3) error = %v, want RPC_MISMATCH 2–2", err)
	}
	if h.XID != 5 || h.RPCVers != 3 {
		t.Errorf("header = %+v, want XID 5 and RPCVers 3 for the reply", h)
	}
}

// replyOutcome is one kind of reply and what ParseReply must make of it.
type replyOutcome struct {
	name    string
	encode  func(e *xdr.Encoder, xid uint32)
	is      []error // errors.Is targets that must match; nil for success
	message string  // expected Error() text, if checked exactly
}

func replyOutcomes() []replyOutcome {
	accepted := func(stat rpc.AcceptStat, low, high uint32) func(*xdr.Encoder, uint32) {
		return func(e *xdr.Encoder, xid uint32) { rpc.AppendAcceptedReply(e, xid, rpc.OpaqueAuth{}, stat, low, high) }
	}
	denied := func(stat rpc.RejectStat, low, high uint32, auth rpc.AuthStat) func(*xdr.Encoder, uint32) {
		return func(e *xdr.Encoder, xid uint32) { rpc.AppendDeniedReply(e, xid, stat, low, high, auth) }
	}
	out := []replyOutcome{
		{"SUCCESS", accepted(rpc.Success, 0, 0), nil, ""},
		{"PROG_UNAVAIL", accepted(rpc.ProgUnavail, 0, 0), []error{rpc.ProgUnavail},
			"rpc: PROG_UNAVAIL: program unavailable"},
		{"PROG_MISMATCH", accepted(rpc.ProgMismatch, 2, 3), []error{rpc.ProgMismatch},
			"rpc: PROG_MISMATCH: server supports versions 2–3"},
		{"PROC_UNAVAIL", accepted(rpc.ProcUnavail, 0, 0), []error{rpc.ProcUnavail},
			"rpc: PROC_UNAVAIL: procedure unavailable"},
		{"GARBAGE_ARGS", accepted(rpc.GarbageArgs, 0, 0), []error{rpc.GarbageArgs},
			"rpc: GARBAGE_ARGS: server could not decode the arguments"},
		{"SYSTEM_ERR", accepted(rpc.SystemErr, 0, 0), []error{rpc.SystemErr},
			"rpc: SYSTEM_ERR: server system error"},
		{"RPC_MISMATCH", denied(rpc.RPCMismatch, 3, 4, 0), []error{rpc.RPCMismatch},
			"rpc: RPC_MISMATCH: server supports RPC versions 3–4"},
		{"AUTH_ERROR unnamed", denied(rpc.AuthError, 0, 0, 99), []error{rpc.AuthError, rpc.AuthStat(99)},
			"rpc: AUTH_ERROR: AUTH_STAT(99): authentication status 99"},
	}
	for s := rpc.AuthOK; s <= rpc.RPCSECGSSCtxProblem; s++ {
		out = append(out, replyOutcome{"AUTH_ERROR " + s.String(), denied(rpc.AuthError, 0, 0, s),
			[]error{rpc.AuthError, s}, ""})
	}
	return out
}

// TestParseReplyOutcomes checks every reply a server can send: the xid
// comes back, the error is typed and matches its status with errors.Is and
// errors.As, and the message names the status.
func TestParseReplyOutcomes(t *testing.T) {
	testutil.CheckLeaks(t)
	auth := mustAuthSys(t, testCred)
	for _, tt := range replyOutcomes() {
		t.Run(tt.name, func(t *testing.T) {
			var e xdr.Encoder
			tt.encode(&e, 0x01020304)
			e.Uint32(0x600d) // results, or trailing bytes to ignore
			d := xdr.NewDecoder(e.Bytes())
			xid, err := rpc.ParseReply(d, auth)
			if xid != 0x01020304 {
				t.Errorf("xid = %#x, want 0x01020304", xid)
			}
			if tt.is == nil {
				if err != nil {
					t.Fatalf("ParseReply: %v", err)
				}
				if v := d.Uint32(); v != 0x600d || d.Remaining() != 0 {
					t.Errorf("after a SUCCESS header the decoder reads %#x, want the results", v)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseReply returned nil error")
			}
			wrapped := fmt.Errorf("nfs4: GETATTR: %w", err)
			for _, target := range tt.is {
				if !errors.Is(wrapped, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if errors.Is(wrapped, rpc.ErrMalformed) {
				t.Errorf("a well-formed reply matched ErrMalformed: %v", err)
			}
			var ae *rpc.AcceptError
			var de *rpc.DeniedError
			switch tt.is[0].(type) {
			case rpc.AcceptStat:
				if !errors.As(wrapped, &ae) || ae.Stat != tt.is[0] {
					t.Errorf("errors.As(*AcceptError) failed for %v", err)
				}
			case rpc.RejectStat:
				if !errors.As(wrapped, &de) || de.Stat != tt.is[0] {
					t.Errorf("errors.As(*DeniedError) failed for %v", err)
				}
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.message)
			}
			for _, target := range tt.is {
				if name := target.(fmt.Stringer).String(); !strings.Contains(err.Error(), name) {
					t.Errorf("Error() = %q does not name %s", err.Error(), name)
				}
			}
		})
	}
}

// TestParseReplyDetails checks the version ranges a mismatch carries.
func TestParseReplyDetails(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	rpc.AppendAcceptedReply(&e, 1, rpc.OpaqueAuth{}, rpc.ProgMismatch, 3, 4)
	_, err := rpc.ParseReply(xdr.NewDecoder(e.Bytes()), nil)
	var ae *rpc.AcceptError
	if !errors.As(err, &ae) || ae.Low != 3 || ae.High != 4 {
		t.Errorf("PROG_MISMATCH 3–4: got %#v", err)
	}
	var stat rpc.AcceptStat
	if !errors.As(err, &stat) || stat != rpc.ProgMismatch {
		t.Errorf("errors.As(AcceptStat) = %v, want PROG_MISMATCH", stat)
	}

	e.Reset(nil)
	rpc.AppendDeniedReply(&e, 1, rpc.RPCMismatch, 2, 5, rpc.AuthTooWeak)
	_, err = rpc.ParseReply(xdr.NewDecoder(e.Bytes()), nil)
	var de *rpc.DeniedError
	if !errors.As(err, &de) || de.Low != 2 || de.High != 5 || de.Auth != rpc.AuthOK {
		t.Errorf("RPC_MISMATCH 2–5: got %#v", err)
	}
	if errors.Is(err, rpc.AuthTooWeak) {
		t.Error("an RPC_MISMATCH denial matched an auth_stat")
	}
}

// TestParseReplyVerifier checks that the Auth judges the verifier of a
// successful reply, and that its verdict reaches the caller.
func TestParseReplyVerifier(t *testing.T) {
	testutil.CheckLeaks(t)
	verf := rpc.OpaqueAuth{Flavor: rpc.AuthFlavorGSS, Body: []byte("mic of the seqnum")}
	var e xdr.Encoder
	rpc.AppendAcceptedReply(&e, 77, verf, rpc.Success, 0, 0)
	msg := e.Bytes()

	refuse := errors.New("bad mic")
	auth := &rawAuth{verifyErr: refuse}
	xid, err := rpc.ParseReply(xdr.NewDecoder(msg), auth)
	if xid != 77 || err != refuse {
		t.Errorf("ParseReply = %d, %v; want 77, the Auth's error", xid, err)
	}
	if auth.gotVerf.Flavor != verf.Flavor || !bytes.Equal(auth.gotVerf.Body, verf.Body) {
		t.Errorf("Auth saw verifier %+v, want %+v", auth.gotVerf, verf)
	}

	for _, a := range []rpc.Auth{rpc.AuthNone, mustAuthSys(t, testCred)} {
		if _, err := rpc.ParseReply(xdr.NewDecoder(msg), a); !errors.Is(err, rpc.ErrVerifier) {
			t.Errorf("RPCSEC_GSS verifier with %T: err = %v, want ErrVerifier", a, err)
		}
	}
}

// validReplies returns one message of each reply shape, with a verifier
// body that needs padding.
func validReplies() map[string][]byte {
	verf := rpc.OpaqueAuth{Flavor: rpc.AuthFlavorShort, Body: []byte("short")}
	out := map[string][]byte{}
	var e xdr.Encoder
	rpc.AppendAcceptedReply(&e, 1, verf, rpc.Success, 0, 0)
	out["SUCCESS"] = bytes.Clone(e.Bytes())
	e.Reset(nil)
	rpc.AppendAcceptedReply(&e, 1, verf, rpc.ProgMismatch, 4, 4)
	out["PROG_MISMATCH"] = bytes.Clone(e.Bytes())
	e.Reset(nil)
	rpc.AppendAcceptedReply(&e, 1, verf, rpc.GarbageArgs, 0, 0)
	out["GARBAGE_ARGS"] = bytes.Clone(e.Bytes())
	e.Reset(nil)
	rpc.AppendDeniedReply(&e, 1, rpc.RPCMismatch, 2, 2, 0)
	out["RPC_MISMATCH"] = bytes.Clone(e.Bytes())
	e.Reset(nil)
	rpc.AppendDeniedReply(&e, 1, rpc.AuthError, 0, 0, rpc.AuthRejectedCred)
	out["AUTH_ERROR"] = bytes.Clone(e.Bytes())
	return out
}

// TestParseReplyTruncated cuts every reply shape at every offset inside its
// header: each cut must give a malformed error, never a panic or a result.
func TestParseReplyTruncated(t *testing.T) {
	testutil.CheckLeaks(t)
	auth := mustAuthSys(t, testCred)
	for name, msg := range validReplies() {
		if _, err := rpc.ParseReply(xdr.NewDecoder(msg), auth); err != nil && errors.Is(err, rpc.ErrMalformed) {
			t.Fatalf("%s: the whole message is malformed: %v", name, err)
		}
		for n := 0; n < len(msg); n++ {
			_, err := rpc.ParseReply(xdr.NewDecoder(msg[:n]), auth)
			if !errors.Is(err, rpc.ErrMalformed) || !errors.Is(err, xdr.ErrShort) {
				t.Errorf("%s cut at %d of %d bytes: err = %v, want ErrMalformed wrapping xdr.ErrShort", name, n, len(msg), err)
			}
		}
	}
}

// TestParseReplyMalformed checks headers that are complete but wrong.
func TestParseReplyMalformed(t *testing.T) {
	testutil.CheckLeaks(t)
	success := validReplies()["SUCCESS"] // verifier length at 16, "short" at 20, padding 25..28, accept_stat at 28
	patch := func(msg []byte, off int, b ...byte) []byte {
		msg = bytes.Clone(msg)
		copy(msg[off:], b)
		return msg
	}
	bigVerf := func(n int) []byte {
		var e xdr.Encoder
		rpc.AppendAcceptedReply(&e, 1, rpc.OpaqueAuth{Flavor: rpc.AuthFlavorGSS, Body: make([]byte, n)}, rpc.Success, 0, 0)
		return e.Bytes()
	}
	var call xdr.Encoder
	rpc.AppendCall(&call, 1, nfsProg, nfsVers, 0, rpc.AuthNone)

	tests := []struct {
		name   string
		msg    []byte
		also   error  // wrapped xdr error, if any
		inText string // substring of the message
	}{
		{"CALL instead of REPLY", call.Bytes(), nil, "CALL"},
		{"msg_type 2", patch(success, 4, 0, 0, 0, 2), nil, "msg_type 2"},
		{"reply_stat 2", patch(success, 8, 0, 0, 0, 2), nil, "reply_stat 2"},
		{"reply_stat 0x100", patch(success, 8, 0, 0, 1, 0), nil, "reply_stat 256"},
		{"accept_stat 6", patch(success, 28, 0, 0, 0, 6), nil, "accept_stat 6"},
		{"reject_stat 2", patch(validReplies()["AUTH_ERROR"], 12, 0, 0, 0, 2), nil, "reject_stat 2"},
		{"verifier padding", patch(success, 26, 1), xdr.ErrPadding, "padding"},
		{"verifier body 401 bytes", bigVerf(401), xdr.ErrTooLong, "limit"},
		{"verifier length 0xffffffff", patch(success, 16, 0xff, 0xff, 0xff, 0xff), xdr.ErrTooLong, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rpc.ParseReply(xdr.NewDecoder(tt.msg), &rawAuth{})
			if !errors.Is(err, rpc.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.also)
			}
			if !strings.HasPrefix(err.Error(), "rpc: malformed message: ") || !strings.Contains(err.Error(), tt.inText) {
				t.Errorf("Error() = %q, want it to say %q", err.Error(), tt.inText)
			}
		})
	}

	if _, err := rpc.ParseReply(xdr.NewDecoder(bigVerf(rpc.MaxAuthBody)), &rawAuth{}); err != nil {
		t.Errorf("verifier body of exactly MaxAuthBody bytes: %v", err)
	}
}

// TestParseCallMalformed cuts a call at every offset and tries wrong
// message types and oversized credentials.
func TestParseCallMalformed(t *testing.T) {
	testutil.CheckLeaks(t)
	var e xdr.Encoder
	rpc.AppendCall(&e, 1, nfsProg, nfsVers, 0, mustAuthSys(t, testCred))
	msg := e.Bytes()
	for n := 0; n < len(msg); n++ {
		if _, err := rpc.ParseCall(xdr.NewDecoder(msg[:n])); !errors.Is(err, rpc.ErrMalformed) || !errors.Is(err, xdr.ErrShort) {
			t.Errorf("call cut at %d of %d bytes: err = %v, want ErrMalformed wrapping xdr.ErrShort", n, len(msg), err)
		}
	}

	reply := validReplies()["SUCCESS"]
	if _, err := rpc.ParseCall(xdr.NewDecoder(reply)); !errors.Is(err, rpc.ErrMalformed) {
		t.Errorf("REPLY given to ParseCall: err = %v, want ErrMalformed", err)
	}
	odd := bytes.Clone(msg)
	odd[7] = 7
	if _, err := rpc.ParseCall(xdr.NewDecoder(odd)); !errors.Is(err, rpc.ErrMalformed) {
		t.Errorf("msg_type 7: err = %v, want ErrMalformed", err)
	}

	for _, n := range []int{rpc.MaxAuthBody, rpc.MaxAuthBody + 1} {
		e.Reset(nil)
		rpc.AppendCall(&e, 1, nfsProg, nfsVers, 0, &rawAuth{cred: rpc.OpaqueAuth{Flavor: 6, Body: make([]byte, n)}})
		_, err := rpc.ParseCall(xdr.NewDecoder(e.Bytes()))
		if tooBig := n > rpc.MaxAuthBody; tooBig != errors.Is(err, xdr.ErrTooLong) || tooBig != (err != nil) {
			t.Errorf("credential body of %d bytes: err = %v", n, err)
		}
	}
}

// TestHeaderAllocs checks the hot-path promise: encoding a call header into
// a buffer with room, and parsing a successful reply, allocate nothing.
func TestHeaderAllocs(t *testing.T) {
	testutil.CheckLeaks(t)
	buf := make([]byte, 0, 512)
	var e xdr.Encoder
	for _, auth := range []rpc.Auth{rpc.AuthNone, mustAuthSys(t, testCred)} {
		if a := testing.AllocsPerRun(100, func() {
			e.Reset(buf)
			rpc.AppendCall(&e, 1, nfsProg, nfsVers, 1, auth)
		}); a != 0 {
			t.Errorf("AppendCall with %T allocated %.1f times, want 0", auth, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			e.Reset(buf)
			auth.AppendCredVerf(&e, nil)
		}); a != 0 {
			t.Errorf("%T.AppendCredVerf allocated %.1f times, want 0", auth, a)
		}
	}

	e.Reset(nil)
	rpc.AppendAcceptedReply(&e, 1, rpc.OpaqueAuth{}, rpc.Success, 0, 0)
	reply := bytes.Clone(e.Bytes())
	e.Reset(nil)
	rpc.AppendCall(&e, 1, nfsProg, nfsVers, 1, mustAuthSys(t, testCred))
	call := bytes.Clone(e.Bytes())
	auth := mustAuthSys(t, testCred)
	var d xdr.Decoder
	if a := testing.AllocsPerRun(100, func() {
		d.Reset(reply)
		if _, err := rpc.ParseReply(&d, auth); err != nil {
			t.Fatal(err)
		}
		d.Reset(call)
		if _, err := rpc.ParseCall(&d); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("ParseReply and ParseCall allocated %.1f times, want 0", a)
	}
}

// FuzzParseReply checks that ParseReply never panics, that every error is
// of a documented kind, and that whatever it accepts re-encodes to exactly
// the bytes it consumed.
func FuzzParseReply(f *testing.F) {
	testutil.CheckLeaks(f)
	for _, msg := range validReplies() {
		f.Add(msg)
	}
	var call xdr.Encoder
	rpc.AppendCall(&call, 1, nfsProg, nfsVers, 0, rpc.AuthNone)
	f.Add(call.Bytes())
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	auth, err := rpc.NewAuthSys(testCred)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, err := rpc.ParseReply(xdr.NewDecoder(msg), auth)
		var ae *rpc.AcceptError
		var de *rpc.DeniedError
		if err != nil && !errors.As(err, &ae) && !errors.As(err, &de) &&
			!errors.Is(err, rpc.ErrVerifier) && !errors.Is(err, rpc.ErrMalformed) {
			t.Fatalf("undocumented error %T: %v", err, err)
		}
		ae, de = nil, nil

		d := xdr.NewDecoder(msg)
		xid, err := rpc.ParseReply(d, &rawAuth{})
		if err != nil && errors.Is(err, rpc.ErrMalformed) {
			return
		}
		var e xdr.Encoder
		switch {
		case errors.As(err, &de):
			rpc.AppendDeniedReply(&e, xid, de.Stat, de.Low, de.High, de.Auth)
		case err == nil || errors.As(err, &ae):
			vd := xdr.NewDecoder(msg[12:])
			verf := rpc.OpaqueAuth{Flavor: vd.Uint32(), Body: vd.Opaque(rpc.MaxAuthBody)}
			stat, low, high := rpc.Success, uint32(0), uint32(0)
			if ae != nil {
				stat, low, high = ae.Stat, ae.Low, ae.High
			}
			rpc.AppendAcceptedReply(&e, xid, verf, stat, low, high)
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if !bytes.Equal(e.Bytes(), msg[:d.Offset()]) {
			t.Fatalf("re-encoded header % x, consumed % x", e.Bytes(), msg[:d.Offset()])
		}
	})
}

// FuzzParseCall checks that ParseCall never panics and that a header it
// accepts re-encodes with AppendCall to exactly the bytes it consumed.
func FuzzParseCall(f *testing.F) {
	testutil.CheckLeaks(f)
	var e xdr.Encoder
	rpc.AppendCall(&e, 1, nfsProg, nfsVers, 0, rpc.AuthNone)
	f.Add(bytes.Clone(e.Bytes()))
	e.Reset(nil)
	rpc.AppendCall(&e, 2, nfsProg, nfsVers, 1, mustAuthSys(f, testCred))
	f.Add(bytes.Clone(e.Bytes()))
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Add(validReplies()["SUCCESS"])
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := xdr.NewDecoder(msg)
		h, err := rpc.ParseCall(d)
		var de *rpc.DeniedError
		switch {
		case errors.As(err, &de):
			if de.Stat != rpc.RPCMismatch || h.RPCVers == rpc.Version || d.Offset() != 12 {
				t.Fatalf("denial %v for rpcvers %d after %d bytes", de, h.RPCVers, d.Offset())
			}
			return
		case err != nil:
			if !errors.Is(err, rpc.ErrMalformed) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			return
		}
		if h.Cred.Flavor == rpc.AuthFlavorSys {
			rpc.ParseSysCred(h.Cred.Body) // must not panic
		}
		var e xdr.Encoder
		rpc.AppendCall(&e, h.XID, h.Prog, h.Vers, h.Proc, &rawAuth{cred: h.Cred, verf: h.Verf})
		if !bytes.Equal(e.Bytes(), msg[:d.Offset()]) {
			t.Fatalf("re-encoded header % x, consumed % x", e.Bytes(), msg[:d.Offset()])
		}
	})
}

// An NFSv4 NULL call with AUTH_SYS credentials, and the parse of its reply.
func ExampleAppendCall() {
	auth, err := rpc.NewAuthSys(rpc.SysCred{Machine: "client", UID: 1000, GID: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	var e xdr.Encoder
	rpc.AppendCall(&e, 1, 100003, 4, 0, auth)
	// NULL has no arguments; a real client would now send e.Bytes().
	fmt.Println(len(e.Bytes()), "bytes")

	// A server's answer: the program is there, but not version 4.
	var reply xdr.Encoder
	rpc.AppendAcceptedReply(&reply, 1, rpc.OpaqueAuth{}, rpc.ProgMismatch, 2, 3)
	xid, err := rpc.ParseReply(xdr.NewDecoder(reply.Bytes()), auth)
	fmt.Println(xid, errors.Is(err, rpc.ProgMismatch))
	fmt.Println(err)
	// Output:
	// 68 bytes
	// 1 true
	// rpc: PROG_MISMATCH: server supports versions 2–3
}
