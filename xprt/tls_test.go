package xprt

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testcert"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// These tests script the server side of RFC 9289 on loopback: they check
// the client's probe, answer it, and run crypto/tls's server. The real
// server (Linux knfsd with tlshd) is exercised in package nfs4's
// TestKnfsdTLS.

const (
	testProg = 100003
	testVers = 4
)

// peerTLS is what one scripted server connection does after the probe.
type peerTLS struct {
	offer bool        // answer STARTTLS; else AUTH_ERROR (auth_stat 1, AUTH_BADCRED)
	cfg   *tls.Config // the server's TLS configuration
}

// serveProbe reads the probe from c, checks it and answers it; it returns
// the probe's fields it checked.
func serveProbe(c net.Conn, offer bool) error {
	var req [probeLen]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return err
	}
	w := func(i int) uint32 { return binary.BigEndian.Uint32(req[4*i:]) }
	if w(0) != 0x80000000|40 || w(2) != 0 || w(3) != 2 || w(4) != testProg || w(5) != testVers || w(6) != 0 ||
		w(7) != authTLS || w(8) != 0 || w(9) != authNone || w(10) != 0 {
		return errors.New("not an AUTH_TLS probe")
	}
	var rep []byte
	if offer {
		rep = appendWords(nil, w(1), 1, 0, authNone, 8)
		rep = append(rep, startTLS[:]...)
		rep = appendWords(rep, 0)
	} else {
		rep = appendWords(nil, w(1), 1, 1, 1, 1) // MSG_DENIED AUTH_ERROR AUTH_BADCRED
	}
	_, err := c.Write(append(appendWords(nil, 0x80000000|uint32(len(rep))), rep...))
	return err
}

func appendWords(b []byte, ws ...uint32) []byte {
	for _, w := range ws {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// runPeer serves one accepted connection as p says, echoing what arrives
// over TLS (or plain text when not offered), and reports the outcome.
func runPeer(t *testing.T, s *net.TCPConn, p peerTLS) <-chan error {
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serveProbe(s, p.offer); err != nil {
			done <- err
			return
		}
		var c net.Conn = s
		if p.offer {
			tc := tls.Server(s, p.cfg)
			if err := tc.Handshake(); err != nil {
				done <- err
				return
			}
			c = tc
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err == nil {
			_, err = c.Write(buf[:n])
		}
		done <- err
	}()
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return done
}

// echo writes msg on c and reads it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("read back %q, %v; want %q", buf, err, msg)
	}
}

type pki struct {
	ca, other *testcert.CA
	server    testcert.Pair
	client    testcert.Pair
}

func newPKI(t testing.TB) pki {
	ca := testcert.NewCA(t, "gonfs test CA")
	return pki{ca: ca, other: testcert.NewCA(t, "another CA"), server: ca.Server(t, "nfs.test", "127.0.0.1"), client: ca.Client(t, "client.test")}
}

func (p pki) serverConfig(clientAuth tls.ClientAuthType) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server.TLS}, ClientAuth: clientAuth, ClientCAs: p.ca.Pool(), MinVersion: tls.VersionTLS13}
}

func tlsOpts(mode TLSMode, cfg *tls.Config) TLSOptions {
	return TLSOptions{Mode: mode, Config: cfg, Prog: testProg, Vers: testVers}
}

// Every connection, the first and each redial, probes and handshakes, and
// the statistics count it.
func TestTLSRoundTripAndRedial(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newPKI(t)
	srv := newServer(t)
	for _, mode := range []TLSMode{TLSRequired, TLSMutual, TLSOpportunistic} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := &tls.Config{RootCAs: k.ca.Pool()}
			clientAuth := tls.NoClientCert
			if mode == TLSMutual {
				cfg.Certificates = []tls.Certificate{k.client.TLS}
				clientAuth = tls.RequireAndVerifyClientCert
			}
			pol := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }}
			tr := newTransport(t, Config{Addr: srv.addr, Policy: pol, TLS: tlsOpts(mode, cfg)})
			var gens []uint64
			for i := range 3 {
				connReady := make(chan struct{})
				var c net.Conn
				var gen uint64
				go func() { c, gen = waitReadyNoFatal(tr); close(connReady) }()
				done := runPeer(t, srv.accept(t), peerTLS{offer: true, cfg: k.serverConfig(clientAuth)})
				<-connReady
				if c == nil {
					t.Fatalf("connection %d: none", i)
				}
				echo(t, c, "hello")
				if err := <-done; err != nil {
					t.Fatalf("server: %v", err)
				}
				st := tr.Stats()
				if st.Handshakes != uint64(i+1) || st.LastHandshake <= 0 || st.HandshakeTime < st.LastHandshake {
					t.Fatalf("after connection %d: Handshakes %d, LastHandshake %v, HandshakeTime %v", i+1, st.Handshakes, st.LastHandshake, st.HandshakeTime)
				}
				gens = append(gens, gen)
				tr.Fail(gen, io.EOF)
			}
			if gens[2] != gens[0]+2 {
				t.Errorf("generations %v", gens)
			}
		})
	}
}

// waitReadyNoFatal is waitReady for a goroutine other than the test's.
func waitReadyNoFatal(tr *Transport) (net.Conn, uint64) {
	for range 10000 {
		c, gen, changed, err := tr.Conn()
		if err != nil {
			return nil, 0
		}
		if c != nil {
			return c, gen
		}
		<-changed
	}
	return nil, 0
}

// TLS asked for, a server that does not offer it: a final, typed error,
// never plain text. Opportunistic mode goes on in plain text.
func TestTLSNotOffered(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newPKI(t)
	for _, mode := range []TLSMode{TLSRequired, TLSMutual} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := newServer(t)
			cfg := &tls.Config{RootCAs: k.ca.Pool(), Certificates: []tls.Certificate{k.client.TLS}}
			tr := newTransport(t, Config{Addr: srv.addr, TLS: tlsOpts(mode, cfg)})
			tr.Conn()
			done := runPeer(t, srv.accept(t), peerTLS{offer: false})
			err := waitErr(t, tr)
			var te *TLSError
			if !errors.Is(err, ErrTLSNotOffered) || !errors.As(err, &te) || !te.Final || te.Step != "probe" {
				t.Fatalf("Conn error %v; want a final *TLSError matching ErrTLSNotOffered", err)
			}
			if _, _, _, err2 := tr.Conn(); err2 != err {
				t.Errorf("second Conn: %v; want the same final error", err2)
			}
			<-done
		})
	}
	t.Run("opportunistic", func(t *testing.T) {
		srv := newServer(t)
		tr := newTransport(t, Config{Addr: srv.addr, TLS: tlsOpts(TLSOpportunistic, &tls.Config{RootCAs: k.ca.Pool()})})
		tr.Conn()
		done := runPeer(t, srv.accept(t), peerTLS{offer: false})
		c, _ := waitReady(t, tr)
		if _, ok := c.(*conn).rw.(*net.TCPConn); !ok {
			t.Fatalf("connection %T; want plain TCP", c.(*conn).rw)
		}
		echo(t, c, "plain")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if st := tr.Stats(); st.Handshakes != 0 {
			t.Errorf("Handshakes %d; want 0", st.Handshakes)
		}
	})
}

// A server certificate that does not verify, or a client certificate the
// server refuses, is a final error that says which.
func TestTLSRefusals(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newPKI(t)
	for _, tc := range []struct {
		name    string
		client  *tls.Config
		mode    TLSMode
		server  *tls.Config
		matches func(error) bool
	}{
		{"wrong CA", &tls.Config{RootCAs: k.other.Pool()}, TLSRequired, k.serverConfig(tls.NoClientCert),
			func(err error) bool { var e x509.UnknownAuthorityError; return errors.As(err, &e) }},
		{"wrong name", &tls.Config{RootCAs: k.ca.Pool(), ServerName: "other.test"}, TLSRequired, k.serverConfig(tls.NoClientCert),
			func(err error) bool { var e x509.HostnameError; return errors.As(err, &e) }},
		{"expired", &tls.Config{RootCAs: k.ca.Pool()}, TLSRequired,
			&tls.Config{Certificates: []tls.Certificate{k.ca.Expired(t, "127.0.0.1").TLS}},
			func(err error) bool {
				var e x509.CertificateInvalidError
				return errors.As(err, &e) && e.Reason == x509.Expired
			}},
		{"no client certificate", &tls.Config{RootCAs: k.ca.Pool()}, TLSRequired, k.serverConfig(tls.RequireAndVerifyClientCert),
			remoteAlertSession},
		{"client certificate from another CA", &tls.Config{RootCAs: k.ca.Pool(), Certificates: []tls.Certificate{k.other.Client(t, "x").TLS}},
			TLSMutual, k.serverConfig(tls.RequireAndVerifyClientCert),
			remoteAlertSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			tr := newTransport(t, Config{Addr: srv.addr, TLS: tlsOpts(tc.mode, tc.client)})
			tr.Conn()
			done := runPeer(t, srv.accept(t), peerTLS{offer: true, cfg: tc.server})
			err := waitConnErr(t, tr)
			var te *TLSError
			if !errors.As(err, &te) || !te.Final || !tc.matches(err) {
				t.Fatalf("Conn error %v (%#v); want a final handshake *TLSError of the expected kind", err, err)
			}
			if serr := <-done; serr == nil {
				t.Error("the server saw a good handshake")
			}
		})
	}
}

func remoteAlertSession(err error) bool {
	var te *TLSError
	var oe *net.OpError
	return errors.As(err, &te) && te.Step == "session" && errors.As(err, &oe) && oe.Op == "remote error"
}

// waitConnErr waits for the transport's final error. A server that
// refuses the client's certificate does so after the client's side of a
// TLS 1.3 handshake has completed: the first read gets its alert, and the
// RPC client reports that with Fail.
func waitConnErr(t *testing.T, tr *Transport) error {
	t.Helper()
	for range 10000 {
		c, gen, changed, err := tr.Conn()
		if err != nil {
			return err
		}
		if c == nil {
			<-changed
			continue
		}
		_, rerr := c.Read(make([]byte, 1))
		if rerr == nil {
			t.Fatal("the server's alert did not arrive; read succeeded")
		}
		tr.Fail(gen, rerr)
	}
	t.Fatal("no final error")
	return nil
}

// A connection that breaks during the handshake is a failed dial attempt,
// not a final error: the policy redials.
func TestTLSBrokenHandshakeRedials(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newPKI(t)
	srv := newServer(t)
	pol := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }}
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol, TLS: tlsOpts(TLSRequired, &tls.Config{RootCAs: k.ca.Pool()})})
	tr.Conn()
	s1 := srv.accept(t)
	if err := serveProbe(s1, true); err != nil {
		t.Fatal(err)
	}
	s1.Close() // instead of the handshake
	done := runPeer(t, srv.accept(t), peerTLS{offer: true, cfg: k.serverConfig(tls.NoClientCert)})
	c, _ := waitReady(t, tr)
	echo(t, c, "again")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	as, _ := pol.seen()
	// Closed with the ClientHello unread, the server's socket resets.
	if len(as) != 2 || (as[1].Cause != policy.CauseClosed && as[1].Cause != policy.CauseReset) {
		t.Fatalf("attempts %+v; want a second one after the connection closed or reset", as)
	}
	if st := tr.Stats(); st.Handshakes != 1 || st.FailedAttempts[as[1].Cause] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A server that never answers the probe: HandshakeTimeout ends the
// attempt, a dial timeout for the policy, which redials.
func TestTLSProbeTimeout(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newPKI(t)
	srv := newServer(t)
	pol := &script{next: func(policy.Attempt) policy.Decision { return policy.Decision{} }}
	opts := tlsOpts(TLSRequired, &tls.Config{RootCAs: k.ca.Pool()})
	opts.HandshakeTimeout = 200 * time.Millisecond
	tr := newTransport(t, Config{Addr: srv.addr, Policy: pol, TLS: opts})
	tr.Conn()
	srv.accept(t) // silent
	done := runPeer(t, srv.accept(t), peerTLS{offer: true, cfg: k.serverConfig(tls.NoClientCert)})
	c, _ := waitReady(t, tr)
	echo(t, c, "late")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	as, _ := pol.seen()
	if len(as) != 2 || as[1].Cause != policy.CauseDialTimeout {
		t.Fatalf("attempts %+v; want a second one after CauseDialTimeout", as)
	}
}

func TestTLSOptionsChecked(t *testing.T) {
	for _, o := range []TLSOptions{
		{Mode: TLSRequired},         // no program
		{Mode: TLSMutual, Prog: 1},  // no certificate
		{Mode: TLSMode(9), Prog: 1}, // no such mode
		{Mode: TLSRequired, Prog: 1, Config: &tls.Config{MaxVersion: tls.VersionTLS12}},
	} {
		if _, err := New(Config{Addr: "127.0.0.1:1", TLS: o}); err == nil {
			t.Errorf("New with %+v: no error", o)
		}
	}
}

func TestParseProbeReply(t *testing.T) {
	ok := appendWords(nil, 9, 1, 0, authNone, 8)
	ok = append(ok, startTLS[:]...)
	ok = appendWords(ok, 0)
	if err := parseProbeReply(ok, 9); err != nil {
		t.Fatalf("STARTTLS reply: %v", err)
	}
	for _, tc := range []struct {
		name      string
		rec       []byte
		notOffer  bool
		malformed bool
	}{
		{"other xid", ok, false, true},
		{"denied", appendWords(nil, 9, 1, 1, 1, 1), true, false},
		{"accepted, no verifier", appendWords(nil, 9, 1, 0, 0, 0, 0), true, false},
		{"accepted, PROG_UNAVAIL", appendWords(nil, 9, 1, 0, 0, 0, 1), true, false},
		{"truncated", ok[:20], false, true},
		{"huge verifier", appendWords(nil, 9, 1, 0, 0, 0xffffffff), false, true},
		{"a call", appendWords(nil, 9, 0, 2), false, true},
	} {
		xid := uint32(9)
		if tc.name == "other xid" {
			xid = 10
		}
		err := parseProbeReply(tc.rec, xid)
		var pe *ProbeReplyError
		if !errors.As(err, &pe) || pe.Malformed != tc.malformed || errors.Is(err, ErrTLSNotOffered) != tc.notOffer {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func FuzzProbeReply(f *testing.F) {
	ok := appendWords(nil, 9, 1, 0, authNone, 8)
	ok = append(ok, startTLS[:]...)
	ok = appendWords(ok, 0)
	f.Add(append(appendWords(nil, 0x80000000|uint32(len(ok))), ok...))
	f.Add(appendWords(nil, 0x80000000|20, 9, 1, 1, 1, 1))
	f.Add(appendWords(nil, 0x00000004, 9, 0x80000000|4, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf [maxProbeReply]byte
		rec, err := readProbeReply(bytes.NewReader(b), buf[:])
		if err != nil {
			return
		}
		if len(rec) > maxProbeReply {
			t.Fatalf("record of %d bytes", len(rec))
		}
		err = parseProbeReply(rec, 9)
		var pe *ProbeReplyError
		switch {
		case err == nil && !bytes.Contains(rec, startTLS[:]):
			t.Fatalf("accepted a reply without STARTTLS: %x", rec)
		case err != nil && !errors.As(err, &pe):
			t.Fatalf("error %v is not a *ProbeReplyError", err)
		}
	})
}

// What TLS costs on the hot path: a 64-byte and a 1 MiB write and read
// back through the transport's connection, plain and over TLS 1.3, with
// allocations. Run with go test -bench TLSRoundTrip -benchmem ./xprt.
func BenchmarkTLSRoundTrip(b *testing.B) {
	k := newPKI(b)
	for _, size := range []int{64, 1 << 20} {
		for _, mode := range []TLSMode{TLSNone, TLSRequired} {
			b.Run(mode.String()+"/"+strconv.Itoa(size), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				go func() {
					s, err := ln.Accept()
					if err != nil {
						return
					}
					defer s.Close()
					var c net.Conn = s
					if mode != TLSNone {
						if serveProbe(s, true) != nil {
							return
						}
						c = tls.Server(s, k.serverConfig(tls.NoClientCert))
					}
					io.Copy(c, c)
				}()
				tr, err := New(Config{Addr: ln.Addr().String(), Policy: ports(0), TLS: tlsOpts(mode, &tls.Config{RootCAs: k.ca.Pool()})})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				c, _ := waitReadyNoFatal(tr)
				if c == nil {
					b.Fatal("no connection")
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
