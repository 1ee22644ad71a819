package xprt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/gonfs/nfs/policy"
)

// RPC-over-TLS (RFC 9289). With TLSOptions.Mode set, every new connection,
// the first and each reconnect alike, is secured before the RPC client gets
// it: the supervisor dials from the port the policy chose, sends the
// AUTH_TLS probe (tlsprobe.go), and on STARTTLS runs a TLS 1.3 handshake on
// the same TCP connection; record-marked RPC then travels inside TLS. The
// probe and handshake time count as part of the outage in Stats, and the
// handshakes themselves in Stats.Handshakes and Stats.HandshakeTime.
//
// With TLS the server authenticates the client by its certificate (mutual
// TLS) or at least the connection is encrypted and the server known, so the
// source port no longer matters for trust: a policy that reconnects from a
// fresh ephemeral port loses nothing.

// DefaultHandshakeTimeout is TLSOptions.HandshakeTimeout: the probe and
// the TLS handshake of one connection together.
const DefaultHandshakeTimeout = 15 * time.Second

// ALPN is the application protocol name RFC 9289 registers for ONC RPC;
// it is offered unless TLSOptions.Config sets NextProtos. (Linux's server
// selects none, which Go accepts.)
const ALPN = "sunrpc"

// TLSMode says whether and how connections use RPC-over-TLS.
type TLSMode int

const (
	// TLSNone: plain TCP; no probe. The default.
	TLSNone TLSMode = iota
	// TLSOpportunistic: probe; use TLS if the server offers it, else go
	// on in plain text on the same connection. The server is still
	// authenticated when TLS is used. Use it only where plain text is
	// acceptable: an attacker on the path can make the probe fail.
	TLSOpportunistic
	// TLSRequired: the server must offer TLS and present a certificate
	// valid for the server name under the given roots (xprtsec=tls on
	// Linux). A server that does not offer it is an error, never a
	// silent downgrade.
	TLSRequired
	// TLSMutual: TLSRequired, and the client presents its certificate
	// (xprtsec=mtls). TLSOptions.Config must carry one.
	TLSMutual
)

var tlsModeNames = [...]string{
	TLSNone:          "none",
	TLSOpportunistic: "opportunistic",
	TLSRequired:      "tls",
	TLSMutual:        "mtls",
}

// String returns the mode's name: "none", "opportunistic", "tls", "mtls".
func (m TLSMode) String() string {
	if m >= 0 && int(m) < len(tlsModeNames) {
		return tlsModeNames[m]
	}
	return "tlsmode(" + strconv.Itoa(int(m)) + ")"
}

// TLSOptions configure RPC-over-TLS. The zero value is plain TCP.
type TLSOptions struct {
	// Mode chooses plain, opportunistic, server-authenticated or mutual
	// TLS. Default: TLSNone.
	Mode TLSMode

	// Config is the client's TLS configuration: RootCAs (default: the
	// system roots), ServerName (default: the host part of Config.Addr)
	// and, for TLSMutual, Certificates or GetClientCertificate. It is
	// cloned; MinVersion is raised to TLS 1.3 (RFC 9289 requires 1.3)
	// and NextProtos defaults to [ALPN]. In TLSMutual mode with exactly
	// one certificate and no GetClientCertificate, that certificate is
	// always sent, even when the server's CertificateRequest names other
	// CAs (Go's default would send none, and the server would see a
	// client without one).
	Config *tls.Config

	// Prog and Vers are the RPC program and version the probe's NULL call
	// names. Package nfs4 sets them (100003, 4). Required when Mode is
	// not TLSNone.
	Prog, Vers uint32

	// HandshakeTimeout bounds the probe and the handshake of one
	// connection. Default: 15s (DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// ErrTLSNotOffered matches, through errors.Is, the error of a transport
// that requires TLS (TLSRequired, TLSMutual) on a server whose reply to
// the AUTH_TLS probe does not offer it. It is final: the transport gives
// up rather than redial or fall back to plain text.
var ErrTLSNotOffered = errors.New("xprt: the server does not offer RPC-over-TLS")

// TLSError is a connection that could not be secured. A final one (the
// server does not offer TLS, a certificate was refused, by either side) is
// the transport's final error: Conn returns it, and the transport does not
// redial, since redialing cannot help. Others (the connection broke during
// the handshake) count as failed dial attempts and the policy decides.
//
// Find what failed with errors.Is(err, ErrTLSNotOffered) and errors.As
// into *tls.CertificateVerificationError (then x509.UnknownAuthorityError,
// x509.HostnameError, x509.CertificateInvalidError for an expired
// certificate); a server that refused the client's certificate, or the
// lack of one, ends the session with a TLS alert (Step "session": with TLS
// 1.3 that arrives on the first read after the handshake), which
// crypto/tls reports as a *net.OpError with Op "remote error".
type TLSError struct {
	// Addr is the server.
	Addr string
	// Port is the local port of the connection.
	Port int
	// Mode is the mode asked for.
	Mode TLSMode
	// Step is "probe" or "handshake".
	Step string
	// Final is true when redialing cannot help (see above).
	Final bool
	// Err is what failed.
	Err error
}

func (e *TLSError) Error() string {
	msg := fmt.Sprintf("xprt: %s: RPC-over-TLS (%s) %s from port %d: %v", e.Addr, e.Mode, e.Step, e.Port, e.Err)
	if errors.Is(e.Err, ErrTLSNotOffered) {
		msg += " (the server needs a TLS-capable NFS service: on Linux, tlshd running and an export with xprtsec=tls or mtls)"
	}
	return msg
}

// Unwrap returns Err.
func (e *TLSError) Unwrap() error { return e.Err }

// tlsSetup is what New derives from TLSOptions; nil for TLSNone.
type tlsSetup struct {
	mode       TLSMode
	cfg        *tls.Config
	prog, vers uint32
	timeout    time.Duration
}

// newTLSSetup checks o and prepares the TLS configuration for addr.
func newTLSSetup(o TLSOptions, addr string) (*tlsSetup, error) {
	if o.Mode == TLSNone {
		return nil, nil
	}
	if o.Mode < 0 || o.Mode > TLSMutual {
		return nil, fmt.Errorf("xprt: TLSOptions.Mode %v", o.Mode)
	}
	if o.Prog == 0 {
		return nil, errors.New("xprt: TLSOptions.Prog is 0: the AUTH_TLS probe needs the RPC program")
	}
	var cfg *tls.Config
	if o.Config != nil {
		cfg = o.Config.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion < tls.VersionTLS13 {
		cfg.MinVersion = tls.VersionTLS13
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS13 {
		return nil, errors.New("xprt: TLSOptions.Config.MaxVersion is below TLS 1.3, which RFC 9289 requires")
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{ALPN}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("xprt: TLS server name from %q: %w", addr, err)
		}
		cfg.ServerName = host
	}
	if o.Mode == TLSMutual {
		if len(cfg.Certificates) == 0 && cfg.GetClientCertificate == nil {
			return nil, errors.New("xprt: TLSMutual needs a client certificate in TLSOptions.Config (Certificates or GetClientCertificate)")
		}
		if len(cfg.Certificates) == 1 && cfg.GetClientCertificate == nil {
			cert := &cfg.Certificates[0]
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
	}
	s := &tlsSetup{mode: o.Mode, cfg: cfg, prog: o.Prog, vers: o.Vers, timeout: o.HandshakeTimeout}
	if s.timeout <= 0 {
		s.timeout = DefaultHandshakeTimeout
	}
	return s, nil
}

// secure probes tc and runs the TLS handshake as t.tls says, and returns
// the connection to hand out: tc itself (no TLS, or TLSOpportunistic on a
// server without it) or a *tls.Conn over it. On error tc is aborted and
// the error is a *TLSError.
func (t *Transport) secure(tc *net.TCPConn) (net.Conn, error) {
	s := t.tls
	if s == nil {
		return tc, nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.ctx, s.timeout)
	defer cancel()
	// The probe uses plain reads and writes: a deadline bounds them, and
	// Close (t.ctx) moves it to now.
	deadline, _ := ctx.Deadline()
	tc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	port := localPort(tc)
	fail := func(step string, err error, final bool) (net.Conn, error) {
		abort(tc)
		if ctx.Err() != nil && t.ctx.Err() == nil && !final {
			err = fmt.Errorf("%w (after %v)", err, s.timeout)
		}
		return nil, &TLSError{Addr: t.addr, Port: port, Mode: s.mode, Step: step, Final: final, Err: err}
	}

	xid := rand.Uint32()
	var buf [maxProbeReply]byte
	if _, err := tc.Write(appendProbe(buf[:0], xid, s.prog, s.vers)); err != nil {
		return fail("probe", err, false)
	}
	rec, err := readProbeReply(tc, buf[:])
	if err == nil {
		err = parseProbeReply(rec, xid)
	}
	if err != nil {
		if errors.Is(err, ErrTLSNotOffered) && s.mode == TLSOpportunistic {
			if !stop() {
				return fail("probe", context.Cause(ctx), false)
			}
			tc.SetDeadline(time.Time{})
			t.log.Info("xprt: server does not offer TLS; continuing in plain text (opportunistic)", slog.Any("reply", err))
			return tc, nil
		}
		var pe *ProbeReplyError
		return fail("probe", err, errors.As(err, &pe))
	}

	c := tls.Client(tc, s.cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return fail("handshake", err, handshakeFinal(err))
	}
	if !stop() {
		// The deadline fired (or Close ran) just as the handshake ended.
		return fail("handshake", context.Cause(ctx), false)
	}
	tc.SetDeadline(time.Time{})
	took := time.Since(start)
	t.mu.Lock()
	t.handshakes++
	t.handshakeTime += took
	t.lastHandshake = took
	t.mu.Unlock()
	st := c.ConnectionState()
	t.log.Debug("xprt: TLS established", slog.Int("local_port", port), slog.Duration("took", took),
		slog.String("cipher", tls.CipherSuiteName(st.CipherSuite)), slog.String("alpn", st.NegotiatedProtocol))
	return c, nil
}

// handshakeFinal reports whether a handshake error is one redialing cannot
// fix: a certificate refused by either side, or a protocol mismatch.
func handshakeFinal(err error) bool {
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || remoteAlert(err) || errors.As(err, &rhe) ||
		errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// remoteAlert reports whether err is a TLS alert the server sent:
// crypto/tls returns one as a *net.OpError whose Op is "remote error".
func remoteAlert(err error) bool {
	var oe *net.OpError
	var alert tls.AlertError
	return (errors.As(err, &oe) && oe.Op == "remote error") || errors.As(err, &alert)
}

// refusedLocked ends the transport with a final *TLSError if cause, the
// error that broke connection c, is a TLS alert from the server: with TLS
// 1.3 the client's handshake completes before the server has checked the
// client's certificate, so a server that refuses it (or its absence) says
// so with an alert on the first read. Redialing would only be refused
// again. It reports whether it did; t.mu is held.
func (t *Transport) refusedLocked(c *conn, cause error) bool {
	if t.tls == nil || !remoteAlert(cause) {
		return false
	}
	t.err = &TLSError{Addr: t.addr, Port: c.port, Mode: t.tls.mode, Step: "session", Final: true,
		Err: fmt.Errorf("the server ended the TLS session with an alert (for mutual TLS: it refused the client certificate, or its absence): %w", cause)}
	t.setStateLocked(TransientFailure)
	return true
}

// secureFailed handles a connection that could not be secured: a final
// error ends the supervisor's work (Conn returns it from now on) and
// secureFailed reports true; otherwise it counts as a failed dial attempt
// and the policy decides when to redial.
func (t *Transport) secureFailed(err error) (final bool) {
	var te *TLSError
	if !errors.As(err, &te) || !te.Final {
		if t.ctx.Err() != nil {
			return false // closed; the supervisor's loop head exits
		}
		cause := classify(err, false)
		var ne net.Error
		if cause == policy.CauseOther && (errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
			cause = policy.CauseDialTimeout // the probe or handshake ran out of time
		}
		port := 0
		if te != nil {
			port = te.Port
		}
		de := &DialError{Addr: t.addr, Port: port, Cause: cause, Err: err}
		t.count([]*DialError{de})
		t.attemptFailed([]*DialError{de})
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dialing = false
	if t.state == Shutdown {
		return true
	}
	t.err = err
	t.setStateLocked(TransientFailure)
	t.log.Warn("xprt: giving up: connection cannot be secured", slog.Any("err", err))
	return true
}
