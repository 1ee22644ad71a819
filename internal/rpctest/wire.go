package rpctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/gonfs/nfs/rpc/xdr"
)

// Values of RFC 5531 used on the wire. They are defined here rather than
// taken from package rpc; see the package documentation for why.

// accept_stat values, for Conn.ReplyAccept.
const (
	Success      = 0 // SUCCESS: the call completed
	ProgUnavail  = 1 // PROG_UNAVAIL: the program is not exported
	ProgMismatch = 2 // PROG_MISMATCH: the version is not supported; low and high follow
	ProcUnavail  = 3 // PROC_UNAVAIL: the procedure is not supported
	GarbageArgs  = 4 // GARBAGE_ARGS: the arguments could not be decoded
	SystemErr    = 5 // SYSTEM_ERR: the server failed, e.g. out of memory
)

// reject_stat values, for Conn.ReplyDenied.
const (
	RPCMismatch = 0 // RPC_MISMATCH: the RPC version is not 2; low and high follow
	AuthError   = 1 // AUTH_ERROR: authentication failed; an auth_stat follows
)

// auth_stat values, for Conn.ReplyDenied with AuthError.
const (
	AuthOK           = 0 // AUTH_OK
	AuthBadCred      = 1 // AUTH_BADCRED: bad credential (seal broken)
	AuthRejectedCred = 2 // AUTH_REJECTEDCRED: the client must begin a new session
	AuthBadVerf      = 3 // AUTH_BADVERF: bad verifier (seal broken)
	AuthRejectedVerf = 4 // AUTH_REJECTEDVERF: the verifier expired or was replayed
	AuthTooWeak      = 5 // AUTH_TOOWEAK: rejected for security reasons
	AuthInvalidResp  = 6 // AUTH_INVALIDRESP: bogus response verifier
	AuthFailed       = 7 // AUTH_FAILED: reason unknown
)

// Authentication flavors.
const (
	AuthNone = 0 // AUTH_NONE
	AuthSys  = 1 // AUTH_SYS
)

const (
	msgCall  = 0 // msg_type CALL
	msgReply = 1 // msg_type REPLY

	replyAccepted = 0 // reply_stat MSG_ACCEPTED
	replyDenied   = 1 // reply_stat MSG_DENIED

	rpcVersion = 2 // the only rpcvers of RFC 5531

	maxAuthBody = 400 // opaque_auth body<400>

	lastFragment = 1 << 31          // record marker bit: this fragment ends the record
	fragmentMask = lastFragment - 1 // record marker bits: fragment length

	// maxRecord bounds one record a client may send. It is well above the
	// largest NFS WRITE a client sends (1 MiB of data plus headers).
	maxRecord = 16 << 20

	// readChunk bounds how much buffer a fragment header can make the
	// server allocate before the announced bytes actually arrive.
	readChunk = 64 << 10
)

// Errors a client's bytes can cause. They reach Server.Err only wrapped by
// Conn.protocolError, which adds the "rpctest: conn N: " prefix.
var (
	errRecordTooLong = errors.New("record longer than 16 MiB")
	errTruncated     = errors.New("connection ended inside a record")
)

// readRecord reads one record marked as in RFC 5531 §11 from r, appending
// its fragments' payload to dst[:0]. It returns io.EOF only if the stream
// ended cleanly before the first byte of a record.
func readRecord(r *bufio.Reader, dst []byte) ([]byte, error) {
	rec := dst[:0]
	first := true
	for {
		hdr, err := r.Peek(4)
		if err != nil {
			if err == io.EOF && first && len(hdr) == 0 {
				return rec, io.EOF
			}
			return rec, readErr(err)
		}
		marker := binary.BigEndian.Uint32(hdr)
		if _, err := r.Discard(4); err != nil {
			return rec, readErr(err)
		}
		first = false
		n := int(marker & fragmentMask)
		if n > maxRecord-len(rec) {
			return rec, errRecordTooLong
		}
		// Grow as the bytes arrive rather than as the header promises.
		for n > 0 {
			k := min(n, readChunk)
			rec = slices.Grow(rec, k)
			off := len(rec)
			rec = rec[:off+k]
			if _, err := io.ReadFull(r, rec[off:]); err != nil {
				return rec[:off], readErr(err)
			}
			n -= k
		}
		if marker&lastFragment != 0 {
			return rec, nil
		}
	}
}

// readErr maps an end of stream inside a record to errTruncated and passes
// any other error (a closed or reset socket) through.
func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated
	}
	return err
}

// parseCall decodes the call message in rec into call. The slices it sets
// alias rec. Bytes after the verifier are the arguments, unparsed.
func parseCall(rec []byte, call *Call) error {
	var d xdr.Decoder
	d.Reset(rec)
	call.XID = d.Uint32()
	mtype := d.Uint32()
	rpcvers := d.Uint32()
	switch {
	case d.Err() != nil:
	case mtype != msgCall:
		return fmt.Errorf("xid %#x: msg_type %d, want CALL (0)", call.XID, mtype)
	case rpcvers != rpcVersion:
		return fmt.Errorf("xid %#x: rpcvers %d, want 2", call.XID, rpcvers)
	}
	call.Prog = d.Uint32()
	call.Vers = d.Uint32()
	call.Proc = d.Uint32()
	call.CredFlavor = d.Uint32()
	call.Cred = d.Opaque(maxAuthBody)
	call.VerfFlavor = d.Uint32()
	call.Verf = d.Opaque(maxAuthBody)
	if err := d.Err(); err != nil {
		return fmt.Errorf("bad call header (%d bytes): %w", len(rec), err)
	}
	call.Args = d.Rest()
	return nil
}

// appendAccepted appends the body of an accepted reply: header, an AUTH_NONE
// verifier, stat, low and high for PROG_MISMATCH, then results as they are.
func appendAccepted(dst []byte, xid, stat, low, high uint32, results []byte) []byte {
	var e xdr.Encoder
	e.Reset(dst)
	e.Uint32(xid)
	e.Uint32(msgReply)
	e.Uint32(replyAccepted)
	e.Uint32(AuthNone)
	e.Opaque(nil)
	e.Uint32(stat)
	if stat == ProgMismatch {
		e.Uint32(low)
		e.Uint32(high)
	}
	return append(e.Bytes(), results...)
}

// appendDenied appends the body of a denied reply. Reject statuses other than
// RPC_MISMATCH and AUTH_ERROR are written with nothing after them.
func appendDenied(dst []byte, xid, rejectStat, low, high, authStat uint32) []byte {
	var e xdr.Encoder
	e.Reset(dst)
	e.Uint32(xid)
	e.Uint32(msgReply)
	e.Uint32(replyDenied)
	e.Uint32(rejectStat)
	switch rejectStat {
	case RPCMismatch:
		e.Uint32(low)
		e.Uint32(high)
	case AuthError:
		e.Uint32(authStat)
	}
	return e.Bytes()
}

// appendFragments appends msg to dst as one record split into fragments of
// at most size bytes, or one fragment if size <= 0.
func appendFragments(dst, msg []byte, size int) []byte {
	if size <= 0 || size > fragmentMask {
		size = fragmentMask
	}
	for {
		n := min(len(msg), size)
		marker := uint32(n)
		if n == len(msg) {
			marker |= lastFragment
		}
		dst = binary.BigEndian.AppendUint32(dst, marker)
		dst = append(dst, msg[:n]...)
		msg = msg[n:]
		if len(msg) == 0 {
			return dst
		}
	}
}
