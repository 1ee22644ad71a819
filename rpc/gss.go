package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/rpc/xdr"
)

// RPCSEC_GSS version 1 (RFC 2203). A Client whose Config.Auth is a
// *GSSAuth creates a security context with the server through the NULL
// procedure (RPCSEC_GSS_INIT) before its first call and seals every
// transmission with it: a credential carrying the context's handle and a
// sequence number, a verifier that is the mechanism's checksum (MIC) of the
// call's header, and, for the integrity and privacy services, a checksum
// over the arguments or the arguments sealed (GSS_Wrap). Every reply's
// verifier, and its results' checksum or seal, is checked before the
// results are decoded.
//
// A call re-sent on a new connection keeps its XID but gets a new sequence
// number and verifier (RFC 2203 §5.3.3.1: a server drops a sequence number
// it has seen); its reply is accepted under any of the sequence numbers it
// was sent with. A transmission is sealed, and its sequence number taken,
// on the caller's goroutine just before the record is written, so that
// sealing (encryption, under krb5p) runs on as many cores as there are
// callers. At most half the server's window of calls is in flight under one
// context (each holds a slot from before it is sealed until its reply), so
// fewer than half a window of later numbers can overtake a call before it
// is written: it never goes out with a number the window has left behind.
//
// A server checks the window when a worker thread takes a request up, not
// in the order requests arrived, and drops, without a word, one that has
// fallen behind it. NFS-Ganesha 4.3 (window 32) did so with only 8 calls
// in flight: one request waited while 33 sent after it were checked. The
// dropped call would wait for its major timeout (two minutes by default).
// So a call unanswered once replies have come to calls sent a window's
// worth of sequence numbers after it is re-sent, after gssRecheck, with a
// new sequence number, on the same connection: the one exception to the
// rule that a call is re-sent only on a new connection, and a safe one: a
// request the server did take up is answered from its reply cache (the
// NFSv4.1 session's, or the XID's), and the first reply wins.

// RPCSEC_GSS procedures (rpc_gss_proc_t) and the credential version.
const (
	gssProcData    = 0
	gssProcInit    = 1
	gssProcDestroy = 3
	gssVersion     = 1
)

// Limits on what a server sends and on the context.
const (
	// maxGSSHandle bounds a context handle: it travels in a credential,
	// whose body is at most MaxAuthBody bytes, after 16 bytes of fields
	// and its length.
	maxGSSHandle = MaxAuthBody - 20
	// maxGSSToken bounds a context token or a reply's checksum.
	maxGSSToken = 64 << 10
	// maxGSSWindow bounds the sequence window a server may announce.
	maxGSSWindow = 1 << 20
	// gssMaxSeq is MAXSEQ: a context whose sequence numbers reach it is
	// used no more (RFC 2203 §5.3.3.1).
	gssMaxSeq = 0x80000000
	// gssSeqsKept is how many of a call's sequence numbers (one per
	// transmission) its reply is checked against.
	gssSeqsKept = 4
	// gssRenewBefore is how long before its credentials end a context is
	// replaced, in the background, so that no call waits for it (half
	// their life before, for credentials that last less than twice this).
	gssRenewBefore = 2 * time.Minute
	// gssRetries bounds how often one call starts over with a new context
	// after the server lost the one it was sent under.
	gssRetries = 2
	// gssDestroyWait bounds RPCSEC_GSS_DESTROY on Close.
	gssDestroyWait = time.Second
	// gssRecheck is how often an unanswered call looks whether the
	// server's window has passed it.
	gssRecheck = time.Second
)

// Errors of RPCSEC_GSS.
var (
	// ErrGSSIntegrity is wrapped by the error of a call whose reply fails
	// its RPCSEC_GSS check: a verifier, a checksum over the results or a
	// sealed body that does not verify under the context, or a sequence
	// number that is not the call's. The reply was altered on its way or
	// is not the server's; nothing of it is decoded.
	ErrGSSIntegrity = errors.New("rpc: RPCSEC_GSS reply failed its integrity check")
)

// GSSError reports a server that refused to create a security context: the
// GSS-API major and minor status of its RPCSEC_GSS_INIT reply (RFC 2743
// §1.2.1.1; the minor status is the mechanism's).
type GSSError struct {
	Major, Minor uint32
}

func (e *GSSError) Error() string {
	return fmt.Sprintf("rpc: the server refused the RPCSEC_GSS context: GSS major status %#x (%s), minor %d",
		e.Major, gssMajorName(e.Major), e.Minor)
}

// gssMajorName names the calling and routine errors of a GSS-API major
// status (RFC 2743 §1.2.1.1).
func gssMajorName(major uint32) string {
	names := [...]string{1: "GSS_S_BAD_MECH", "GSS_S_BAD_NAME", "GSS_S_BAD_NAMETYPE", "GSS_S_BAD_BINDINGS",
		"GSS_S_BAD_STATUS", "GSS_S_BAD_SIG", "GSS_S_NO_CRED", "GSS_S_NO_CONTEXT", "GSS_S_DEFECTIVE_TOKEN",
		"GSS_S_DEFECTIVE_CREDENTIAL", "GSS_S_CREDENTIALS_EXPIRED", "GSS_S_CONTEXT_EXPIRED", "GSS_S_FAILURE",
		"GSS_S_BAD_QOP", "GSS_S_UNAUTHORIZED", "GSS_S_UNAVAILABLE", "GSS_S_DUPLICATE_ELEMENT", "GSS_S_NAME_NOT_MN"}
	if r := major >> 16 & 0xff; r != 0 && int(r) < len(names) {
		return names[r]
	}
	if major&1 != 0 {
		return "GSS_S_CONTINUE_NEEDED"
	}
	return "unknown"
}

// GSSAuth is the RPCSEC_GSS flavor with one mechanism (for Kerberos V5,
// module github.com/gonfs/nfs/krb5) and one service. Give it to a Client
// as Config.Auth; each Client creates its own context with its server,
// renews it before its credentials end and after the server loses it (a
// server restart: RPCSEC_GSS_CREDPROBLEM or CTXPROBLEM), and destroys it
// on Close. At most half the server's sequence window of calls is in
// flight under one context; a call left unanswered after the window has
// passed it (a server may drop such a call without a word) is re-sent on
// the same connection with a new sequence number. A GSSAuth is immutable
// and safe for concurrent use.
//
// Outside a Client (AppendCall, ParseReply) there is no context: a GSSAuth
// then writes and accepts AUTH_NONE, which servers take for the NULL
// procedure only. A Client's path-watch probes, NULL calls whose replies
// it drops, go that way.
type GSSAuth struct {
	mech GSSMechanism
	svc  GSSService
}

// NewGSSAuth returns the RPCSEC_GSS flavor for mech and svc.
func NewGSSAuth(mech GSSMechanism, svc GSSService) (*GSSAuth, error) {
	if mech == nil {
		return nil, errors.New("rpc: NewGSSAuth: no mechanism")
	}
	if svc < GSSNone || svc > GSSPrivacy {
		return nil, fmt.Errorf("rpc: NewGSSAuth: unknown service %d", uint32(svc))
	}
	return &GSSAuth{mech: mech, svc: svc}, nil
}

// Mechanism returns the mechanism a was made with.
func (a *GSSAuth) Mechanism() GSSMechanism { return a.mech }

// Service returns the service a was made with.
func (a *GSSAuth) Service() GSSService { return a.svc }

// Flavor returns AuthFlavorGSS.
func (a *GSSAuth) Flavor() uint32 { return AuthFlavorGSS }

// AppendCredVerf appends an AUTH_NONE credential and verifier (see GSSAuth).
func (a *GSSAuth) AppendCredVerf(e *xdr.Encoder, hdr []byte) { AuthNone.AppendCredVerf(e, hdr) }

// Verify accepts an AUTH_NONE verifier only (see GSSAuth).
func (a *GSSAuth) Verify(verf OpaqueAuth) error { return AuthNone.Verify(verf) }

// gssCtx is one established context.
type gssCtx struct {
	gc       GSSContext
	handle   []byte
	window   uint32
	renewAt  time.Time     // when a new context is made in the background
	seq      uint32        // the last sequence number taken; guarded by gssState.seqMu
	answered atomic.Uint32 // the highest sequence number a reply verified
	slots    chan struct{} // held by each call in flight under the context: half the window
}

// noteAnswered records that a reply to sequence number seq verified.
func (x *gssCtx) noteAnswered(seq uint32) {
	for {
		old := x.answered.Load()
		if seq <= old || x.answered.CompareAndSwap(old, seq) {
			return
		}
	}
}

// gssState is a Client's RPCSEC_GSS state: its current context and the
// establishment of the next.
type gssState struct {
	auth *GSSAuth
	c    *Client

	mu       sync.Mutex
	cur      *gssCtx       // the context new calls use; nil before the first and after a loss
	making   chan struct{} // closed when the establishment under way ends; nil if none
	renewing bool          // a background renewal runs
	renewals sync.WaitGroup

	seqMu sync.Mutex // guards every gssCtx.seq
}

// verifier checks a reply's verifier; Auth is one.
type verifier interface {
	Verify(verf OpaqueAuth) error
}

// gssCall is the RPCSEC_GSS part of a call.
type gssCall struct {
	g     *gssState
	x     *gssCtx // the context the call is sealed with
	proc  uint32  // RPC procedure
	gproc uint32  // RPCSEC_GSS procedure: data or destroy
	plain *[]byte // the arguments, after 4 bytes for the sequence number; without pay, if set
	pay   []byte  // a bulk payload of the arguments (a WRITE's data), kept by reference (xdr.Encoder.Payload)
	payAt int     // where in plain pay belongs
	whole *[]byte // plain and pay in one piece, for the privacy service's seal
	seqs  [gssSeqsKept]uint32
	nseq  int
	match uint32      // the sequence number whose verifier the reply carried
	msg   [4]byte     // a sequence number as the reply's verifier signs it (kept here: a local would escape)
	open  *[]byte     // an unwrapped reply (privacy), released with the call
	tick  *time.Timer // gssRecheck, while the call awaits its reply
}

// recheck returns the channel that wakes the call to look whether the
// server's window has passed it; nil (never ready) for other flavors.
func (gc *gssCall) recheck() <-chan time.Time {
	if gc.g == nil || gc.gproc != gssProcData || gc.tick == nil {
		return nil
	}
	return gc.tick.C
}

// armRecheck starts the recheck clock after a transmission.
func (gc *gssCall) armRecheck() {
	if gc.g == nil {
		return
	}
	if gc.tick == nil {
		gc.tick = time.NewTimer(gssRecheck)
		return
	}
	gc.tick.Reset(gssRecheck)
}

// passed reports whether the server has verified replies to calls sent a
// window's worth of sequence numbers after this one's last transmission:
// if it has not answered this one, it has dropped it.
func (gc *gssCall) passed() bool {
	if gc.nseq == 0 {
		return false
	}
	last := gc.seqs[(gc.nseq-1)%gssSeqsKept]
	return gc.x.answered.Load() >= last+gc.x.window
}

// Verify checks a reply's verifier: the server's checksum of one of the
// sequence numbers the call went out with.
func (gc *gssCall) Verify(verf OpaqueAuth) error {
	if verf.Flavor != AuthFlavorGSS {
		return fmt.Errorf("%w: %s verifier in reply to an RPCSEC_GSS call", ErrGSSIntegrity, flavorName(verf.Flavor))
	}
	for i := 0; i < min(gc.nseq, gssSeqsKept); i++ {
		binary.BigEndian.PutUint32(gc.msg[:], gc.seqs[(gc.nseq-1-i)%gssSeqsKept])
		if gc.x.gc.VerifyMIC(gc.msg[:], verf.Body) == nil {
			gc.match = gc.seqs[(gc.nseq-1-i)%gssSeqsKept]
			return nil
		}
	}
	return fmt.Errorf("%w: the reply's verifier does not check", ErrGSSIntegrity)
}

// sentSeq reports whether seq is one the call went out with.
func (gc *gssCall) sentSeq(seq uint32) bool {
	for i := 0; i < min(gc.nseq, gssSeqsKept); i++ {
		if gc.seqs[i] == seq {
			return true
		}
	}
	return false
}

// call makes cl, whose XID is set, as an RPCSEC_GSS call, starting over
// with a new context when the server has lost the one it was sent under.
func (g *gssState) call(ctx context.Context, cl *call, pin *conn, proc uint32, args Marshaler, res Unmarshaler) error {
	gc := &cl.gss
	gc.g, gc.proc, gc.gproc = g, proc, gssProcData
	if gc.plain == nil {
		gc.plain = bufpool.Get(0)
	}
	cl.enc.Reset(append((*gc.plain)[:0], 0, 0, 0, 0))
	cl.enc.ReferenceFrom(bulkRecord)
	if args != nil {
		if err := args.MarshalXDR(&cl.enc); err != nil {
			return err
		}
	}
	*gc.plain = cl.enc.Bytes()
	if gc.pay, gc.payAt = cl.enc.Referenced(); gc.pay == nil {
		gc.payAt = len(*gc.plain)
	}
	cl.args = args
	for attempt := 0; ; attempt++ {
		x, err := g.context(ctx, pin)
		if err != nil {
			return err
		}
		gc.x, gc.nseq = x, 0
		if pin == nil {
			// A call pinned to a new connection (Config.Bind) takes no
			// slot: the calls holding them may be waiting for it.
			select {
			case x.slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = g.c.roundTrip(ctx, cl, pin)
		if pin == nil {
			<-x.slots
		}
		if err == nil {
			if err = g.c.decode(cl, res); err == nil {
				x.noteAnswered(gc.match)
			}
		}
		if attempt == gssRetries || !g.lost(x, err) {
			return err
		}
		// The call was refused, not run: it starts over with a new XID.
		bufpool.Put(cl.reply)
		cl.reply = nil
		cl.xid = g.c.xid.Add(1)
	}
}

// lost reports whether err says the server no longer has context x, and
// if so makes sure no new call uses x.
func (g *gssState) lost(x *gssCtx, err error) bool {
	if err == nil {
		return false
	}
	var de *DeniedError
	if !errors.As(err, &de) || de.Stat != AuthError {
		return false
	}
	switch de.Auth {
	case RPCSECGSSCredProblem, RPCSECGSSCtxProblem, AuthRejectedCred:
	default:
		return false
	}
	g.mu.Lock()
	if g.cur == x {
		g.cur = nil
	}
	g.mu.Unlock()
	return true
}

// context returns the context to send under, establishing one first if
// there is none (on pin alone, for a call pinned to a connection), and
// starting a renewal in the background when the current one's credentials
// end soon.
func (g *gssState) context(ctx context.Context, pin *conn) (*gssCtx, error) {
	for range 8 {
		g.mu.Lock()
		if x := g.cur; x != nil {
			if !time.Now().Before(x.renewAt) && !g.renewing && g.making == nil {
				g.renewing = true
				g.renewals.Add(1)
				go g.renew()
			}
			g.mu.Unlock()
			return x, nil
		}
		if w := g.making; w != nil {
			g.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		w := make(chan struct{})
		g.making = w
		g.mu.Unlock()
		x, err := g.establish(ctx, pin)
		g.mu.Lock()
		if err == nil {
			g.cur = x
		}
		g.making = nil
		close(w)
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return x, nil
	}
	return nil, errors.New("rpc: RPCSEC_GSS context lost again and again while calls waited for it")
}

// renew establishes a new context while calls go on under the current one,
// and puts it in its place.
func (g *gssState) renew() {
	defer g.renewals.Done()
	ctx, cancel := context.WithTimeout(g.c.ctx, g.c.major)
	defer cancel()
	x, err := g.establish(ctx, nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.renewing = false
	if err == nil && g.c.ctx.Err() != nil {
		err = ErrClosed
	}
	if err != nil {
		g.c.log.Warn("rpc: RPCSEC_GSS context not renewed; calls go on under the current one", "err", err)
		return
	}
	g.cur = x
}

// establish creates a context: RPCSEC_GSS_INIT with the mechanism's first
// token, on pin alone if set.
func (g *gssState) establish(ctx context.Context, pin *conn) (*gssCtx, error) {
	gctx, tok, err := g.auth.mech.InitContext(ctx)
	if err != nil {
		return nil, err
	}
	if len(tok) > maxGSSToken {
		return nil, fmt.Errorf("rpc: RPCSEC_GSS: the mechanism's token is %d bytes, more than %d", len(tok), maxGSSToken)
	}
	var cred [28]byte // flavor, length; version, procedure, sequence number, service, an empty handle
	b := cred[:0]
	b = binary.BigEndian.AppendUint32(b, AuthFlavorGSS)
	b = binary.BigEndian.AppendUint32(b, 20)
	b = binary.BigEndian.AppendUint32(b, gssVersion)
	b = binary.BigEndian.AppendUint32(b, gssProcInit)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(g.auth.svc))
	b = binary.BigEndian.AppendUint32(b, 0)
	var res gssInitRes
	if err := g.c.rawCall(ctx, pin, 0, b, tok, &res); err != nil {
		if errors.Is(err, AuthRejectedCred) {
			// What NFS-Ganesha answers for any token its acceptor refuses.
			return nil, fmt.Errorf("rpc: RPCSEC_GSS_INIT: the server refused the security context "+
				"(for Kerberos: its keytab lacks the service's key, or its clock and the client's differ by more than "+
				"the allowed skew, usually 5 minutes): %w", err)
		}
		return nil, fmt.Errorf("rpc: RPCSEC_GSS_INIT: %w", err)
	}
	if res.major != 0 {
		gerr := &GSSError{Major: res.major, Minor: res.minor}
		if len(res.token) > 0 {
			// The mechanism's own error (for Kerberos, a KRB-ERROR such as
			// clock skew) says more than the major status.
			if err := gctx.Complete(res.token); err != nil {
				return nil, fmt.Errorf("%w: %w", gerr, err)
			}
		}
		return nil, gerr
	}
	if res.window == 0 || res.window > maxGSSWindow {
		return nil, fmt.Errorf("%w: RPCSEC_GSS_INIT: sequence window %d", ErrMalformed, res.window)
	}
	if err := gctx.Complete(res.token); err != nil {
		return nil, fmt.Errorf("rpc: RPCSEC_GSS_INIT: the server's token: %w", err)
	}
	if res.verf.Flavor != AuthFlavorGSS {
		return nil, fmt.Errorf("%w: RPCSEC_GSS_INIT reply has a %s verifier", ErrGSSIntegrity, flavorName(res.verf.Flavor))
	}
	var win [4]byte
	binary.BigEndian.PutUint32(win[:], res.window)
	if err := gctx.VerifyMIC(win[:], res.verf.Body); err != nil {
		return nil, fmt.Errorf("%w: RPCSEC_GSS_INIT reply's verifier: %w", ErrGSSIntegrity, err)
	}
	g.c.gssContexts.Add(1)
	now, expiry := time.Now(), gctx.Expiry()
	return &gssCtx{gc: gctx, handle: res.handle, window: res.window,
		renewAt: expiry.Add(-min(gssRenewBefore, expiry.Sub(now)/2)),
		slots:   make(chan struct{}, max(1, res.window/2))}, nil
}

// gssInitRes is rpc_gss_init_res, with the reply's verifier. It copies
// what it keeps out of the reply.
type gssInitRes struct {
	handle       []byte
	major, minor uint32
	window       uint32
	token        []byte
	verf         OpaqueAuth
	verfBody     [MaxAuthBody]byte
}

// Verify keeps the verifier, which can be checked only once the server's
// token has completed the context.
func (r *gssInitRes) Verify(verf OpaqueAuth) error {
	n := copy(r.verfBody[:], verf.Body)
	r.verf = OpaqueAuth{Flavor: verf.Flavor, Body: r.verfBody[:n]}
	return nil
}

// UnmarshalXDR decodes rpc_gss_init_res.
func (r *gssInitRes) UnmarshalXDR(d *xdr.Decoder) error {
	r.handle = append([]byte(nil), d.Opaque(maxGSSHandle)...)
	r.major = d.Uint32()
	r.minor = d.Uint32()
	r.window = d.Uint32()
	r.token = append([]byte(nil), d.Opaque(maxGSSToken)...)
	if d.Err() != nil {
		return malformed(d, "RPCSEC_GSS_INIT result")
	}
	return nil
}

// seal writes cl's record for one transmission, on the caller's goroutine
// just before it is written: a new sequence number, the verifier, and the
// arguments as the service protects them. It does nothing for a call of
// another flavor, or one whose record is encoded already
// (RPCSEC_GSS_INIT).
func (gc *gssCall) seal(cl *call) error {
	if gc.g == nil {
		return nil
	}
	x, g := gc.x, gc.g
	g.seqMu.Lock()
	if x.seq >= gssMaxSeq-1 {
		g.seqMu.Unlock()
		return errors.New("rpc: RPCSEC_GSS context has used every sequence number")
	}
	x.seq++
	seq := x.seq
	g.seqMu.Unlock()
	gc.seqs[gc.nseq%gssSeqsKept] = seq
	gc.nseq++

	plain := *gc.plain
	binary.BigEndian.PutUint32(plain, seq)
	// Room for the header, the credential, two checksums and a seal's
	// overhead, so that appending never grows the buffer.
	if need := len(plain) + len(gc.pay) + 1024 + len(x.handle); cl.rec == nil || cap(*cl.rec) < need {
		bufpool.Put(cl.rec)
		cl.rec = bufpool.Get(need)
	}
	c := g.c
	b := append((*cl.rec)[:0], 0, 0, 0, 0) // record mark
	hdr := len(b)
	b = appendUint32s(b, cl.xid, msgCall, Version, c.prog, c.vers, gc.proc)
	b = appendUint32s(b, AuthFlavorGSS, uint32(20+len(x.handle)+xdrPad(len(x.handle))),
		gssVersion, gc.gproc, seq, uint32(g.auth.svc))
	b = appendOpaque(b, x.handle)
	b = binary.BigEndian.AppendUint32(b, AuthFlavorGSS) // the verifier
	var err error
	if b, err = appendMICOpaque(b, x.gc, hdr, len(b)-4); err != nil {
		return err
	}
	cl.pay = nil
	switch g.auth.svc {
	case GSSNone:
		// The payload stays where it is: the record is written as its
		// head, the payload and its tail (conn.write).
		b = append(b, plain[4:gc.payAt]...)
		if gc.pay != nil {
			cl.pay, cl.payAt = gc.pay, len(b)
		}
		b = append(b, plain[gc.payAt:]...)
	case GSSIntegrity:
		n := len(plain) + len(gc.pay)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		at := len(b)
		b = append(append(append(b, plain[:gc.payAt]...), gc.pay...), plain[gc.payAt:]...)
		b = append(b, xdrZeros[:xdrPad(n)]...)
		if b, err = appendMICOpaque(b, x.gc, at, at+n); err != nil {
			return err
		}
	case GSSPrivacy:
		msg := plain
		if gc.pay != nil {
			if n := len(plain) + len(gc.pay); gc.whole == nil || cap(*gc.whole) < n {
				bufpool.Put(gc.whole)
				gc.whole = bufpool.Get(n)
			}
			*gc.whole = append(append(append((*gc.whole)[:0], plain[:gc.payAt]...), gc.pay...), plain[gc.payAt:]...)
			msg = *gc.whole
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		if b, err = x.gc.AppendWrap(b, msg); err != nil {
			return fmt.Errorf("rpc: RPCSEC_GSS seal: %w", err)
		}
		n := len(b) - at - 4
		binary.BigEndian.PutUint32(b[at:], uint32(n))
		b = append(b, xdrZeros[:xdrPad(n)]...)
	}
	n := len(b) - 4
	if n += len(cl.pay); n > fragmentLenMax {
		return fmt.Errorf("rpc: call of %d bytes exceeds the record-marking limit", n)
	}
	binary.BigEndian.PutUint32(b, lastFragment|uint32(n))
	*cl.rec = b
	return nil
}

// openReply checks the results of an accepted reply as the service
// protects them and leaves d at the procedure's results.
func (gc *gssCall) openReply(d *xdr.Decoder) error {
	var body []byte
	switch gc.g.auth.svc {
	case GSSNone:
		return nil
	case GSSIntegrity:
		body = d.Opaque(d.Remaining())
		mic := d.Opaque(maxGSSToken)
		if d.Err() != nil {
			return malformed(d, "RPCSEC_GSS integrity body")
		}
		if err := gc.x.gc.VerifyMIC(body, mic); err != nil {
			return fmt.Errorf("%w: the checksum over the results does not check: %w", ErrGSSIntegrity, err)
		}
	case GSSPrivacy:
		tok := d.Opaque(d.Remaining())
		if d.Err() != nil {
			return malformed(d, "RPCSEC_GSS privacy body")
		}
		if gc.open == nil || cap(*gc.open) < len(tok) {
			bufpool.Put(gc.open)
			gc.open = bufpool.Get(len(tok))
		}
		var err error
		if body, err = gc.x.gc.Unwrap((*gc.open)[:0], tok); err != nil {
			return fmt.Errorf("%w: the sealed results do not open: %w", ErrGSSIntegrity, err)
		}
		*gc.open = body
	}
	if len(body) < 4 || !gc.sentSeq(binary.BigEndian.Uint32(body)) {
		return fmt.Errorf("%w: the results carry another call's sequence number", ErrGSSIntegrity)
	}
	d.Reset(body[4:])
	return nil
}

// release returns the call's buffers to their pools.
func (gc *gssCall) release() {
	if gc.open != nil {
		bufpool.Put(gc.open)
		gc.open = nil
	}
	if gc.plain != nil && cap(*gc.plain) > 64<<10 {
		bufpool.Put(gc.plain)
		gc.plain = nil
	}
	if gc.whole != nil {
		bufpool.Put(gc.whole)
		gc.whole = nil
	}
	gc.pay = nil
	if gc.tick != nil {
		gc.tick.Stop()
	}
	gc.g, gc.x = nil, nil
}

// destroy tells the server to drop the current context
// (RPCSEC_GSS_DESTROY), if a connection is ready to carry it at once;
// bounded by gssDestroyWait. Close calls it.
func (g *gssState) destroy() {
	g.mu.Lock()
	x := g.cur
	g.cur = nil
	g.mu.Unlock()
	cn := g.c.best()
	if x == nil || cn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gssDestroyWait)
	defer cancel()
	cl := callPool.Get().(*call)
	defer g.c.release(cl)
	cl.xid = g.c.xid.Add(1)
	gc := &cl.gss
	gc.g, gc.x, gc.proc, gc.gproc = g, x, 0, gssProcDestroy
	if gc.plain == nil {
		gc.plain = bufpool.Get(0)
	}
	*gc.plain = append((*gc.plain)[:0], 0, 0, 0, 0)
	gc.pay, gc.payAt = nil, len(*gc.plain)
	_ = g.c.roundTrip(ctx, cl, cn) // the context ends with the connection anyway
}

func appendUint32s(b []byte, vs ...uint32) []byte {
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

var xdrZeros [4]byte

func xdrPad(n int) int { return (4 - n&3) & 3 }

func appendOpaque(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	b = append(b, p...)
	return append(b, xdrZeros[:xdrPad(len(p))]...)
}

// appendMICOpaque appends, as an opaque (an RPCSEC_GSS verifier's body or
// checksum), the context's MIC of b[from:to].
func appendMICOpaque(b []byte, gctx GSSContext, from, to int) ([]byte, error) {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := gctx.AppendMIC(b, b[from:to])
	if err != nil {
		return nil, fmt.Errorf("rpc: RPCSEC_GSS checksum: %w", err)
	}
	n := len(b) - at - 4
	binary.BigEndian.PutUint32(b[at:], uint32(n))
	return append(b, xdrZeros[:xdrPad(n)]...), nil
}

// rawCall makes a call whose credential and verifier, credVerf, are
// encoded already and whose argument is the opaque arg (RPCSEC_GSS_INIT),
// on pin alone if set, and decodes the reply into res, which also keeps
// its verifier.
func (c *Client) rawCall(ctx context.Context, pin *conn, proc uint32, credVerf, arg []byte, res *gssInitRes) error {
	cl := callPool.Get().(*call)
	defer c.release(cl)
	cl.xid = c.xid.Add(1)
	if cl.rec == nil {
		cl.rec = bufpool.Get(0)
	}
	cl.enc.Reset((*cl.rec)[:0])
	mark := beginRecord(&cl.enc)
	appendCallHeader(&cl.enc, cl.xid, c.prog, c.vers, proc)
	cl.enc.FixedOpaque(credVerf)
	cl.enc.FixedOpaque(noneCredVerf[8:]) // an AUTH_NONE verifier
	cl.enc.Opaque(arg)
	if err := endRecord(&cl.enc, mark); err != nil {
		return err
	}
	*cl.rec = cl.enc.Bytes()
	if err := c.roundTrip(ctx, cl, pin); err != nil {
		return err
	}
	cl.dec.Reset(*cl.reply)
	if _, err := parseReply(&cl.dec, res); err != nil {
		return err
	}
	return res.UnmarshalXDR(&cl.dec)
}
