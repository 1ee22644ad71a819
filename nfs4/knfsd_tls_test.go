package nfs4

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testcert"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/xprt"
)

// RPC-over-TLS (RFC 9289) against the Linux kernel's server: knfsd in a
// Debian trixie UML guest with tlshd doing the handshakes (internal/knfsd,
// Config.TLS), TLS and mutual TLS. The certificates are made by the test.
func TestKnfsdTLS(t *testing.T) {
	ca := testcert.NewCA(t, "gonfs knfsd test CA")
	// The client dials the forwarder on 127.0.0.1: the name it checks.
	server := ca.Server(t, "nfs.test", "127.0.0.1")
	// Insecure: any source port may connect, so that what admits a
	// client to the TLS exports is TLS (and its certificate) alone,
	// whatever port a policy reconnects from (a plain client is refused
	// from any port).
	srv := knfsd.Start(t, knfsd.Config{Insecure: true, TLS: &knfsd.TLS{CertPEM: server.CertPEM, KeyPEM: server.KeyPEM, CAPEM: ca.PEM()}})
	t.Logf("TLS guest (kernel built for mutual TLS) booted in %v", srv.BootTime())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tlsCfg := func(mode xprt.TLSMode, cfg *tls.Config) Config {
		return Config{TLS: xprt.TLSOptions{Mode: mode, Config: cfg}}
	}

	// A file written over TLS into the xprtsec=tls export reads back the
	// same; a reconnect probes and handshakes again, and the statistics
	// count both handshakes.
	t.Run("round trip and reconnect", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool()}))
		if err != nil {
			t.Fatalf("Dial over TLS: %v", err)
		}
		defer c.Close()
		data := make([]byte, 8<<20+12345)
		rand.Read(data)
		name := knfsd.TLSExport + "/roundtrip"
		tlsTestWrite(ctx, t, c, name, data)
		if got := tlsTestRead(ctx, t, c, name); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read back %d bytes with another sha256", len(got))
		}
		st := c.Stats().Transport
		if st.Handshakes != 1 {
			t.Fatalf("Handshakes %d after one connection; want 1", st.Handshakes)
		}
		t.Logf("first handshake (probe included): %v", st.LastHandshake)

		srv.ResetConnections()
		if got := tlsTestRead(ctx, t, c, name); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("after the reconnect: read back %d bytes with another sha256", len(got))
		}
		st = c.Stats().Transport
		if st.Reconnects < 1 || st.Handshakes != st.Connects {
			t.Fatalf("after a reset: %d connects, %d handshakes; want a handshake per connection", st.Connects, st.Handshakes)
		}
		t.Logf("%d connections, %d handshakes, %v in handshakes, last %v", st.Connects, st.Handshakes, st.HandshakeTime, st.LastHandshake)
	})

	// Every policy's reconnects each probe and handshake anew, from the
	// port the policy chose; an ephemeral port is as good as a reserved
	// one under TLS.
	t.Run("reconnect under each policy", func(t *testing.T) {
		for _, pc := range []struct {
			name string
			pol  policy.Policy
		}{
			{"SameReservedPort", policy.SameReservedPort(policy.Options{})},
			{"NewReservedPort", policy.NewReservedPort(policy.Options{})},
			{"Ephemeral", policy.Ephemeral(policy.Options{})},
			{"Hedged", policy.Hedged(policy.Options{})},
		} {
			t.Run(pc.name, func(t *testing.T) {
				cfg := tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool()})
				cfg.Policy = pc.pol
				c, err := Dial(ctx, srv.Addr(), cfg)
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				name := knfsd.TLSExport + "/policy-" + pc.name
				data := []byte("written over TLS with policy " + pc.name)
				st := tlsReadThroughResets(ctx, t, c, srv, name, data)
				t.Logf("ports %v, %d handshakes, %v in handshakes", st.LastPorts, st.Handshakes, st.HandshakeTime)
			})
		}
	})

	// Throughput over TLS and in plain text, same server and disk: a
	// measurement for the log (docs/testing.md quotes it), not an
	// assertion.
	t.Run("throughput", func(t *testing.T) {
		data := make([]byte, 4<<20)
		rand.Read(data)
		for _, m := range []struct {
			name string
			cfg  Config
			file string
		}{
			{"plain", Config{}, "/throughput-plain"},
			{"tls", tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool()}), knfsd.TLSExport + "/throughput"},
		} {
			c, err := Dial(ctx, srv.Addr(), m.cfg)
			if err != nil {
				t.Fatalf("%s: Dial: %v", m.name, err)
			}
			t0 := time.Now()
			tlsTestWrite(ctx, t, c, m.file, data)
			w := time.Since(t0)
			t0 = time.Now()
			got := tlsTestRead(ctx, t, c, m.file)
			r := time.Since(t0)
			c.Close()
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("%s: read back another sha256", m.name)
			}
			mbs := func(d time.Duration) float64 { return float64(len(data)) / (1 << 20) / d.Seconds() }
			t.Logf("%s: 4 MiB written at %.1f MiB/s, read at %.1f MiB/s", m.name, mbs(w), mbs(r))
		}
	})

	// A plain client reaches the root but not the xprtsec=tls export:
	// NFS4ERR_WRONGSEC, and the message points at TLS.
	t.Run("plain client refused", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), Config{Policy: policy.Ephemeral(policy.Options{})})
		if err != nil {
			t.Fatalf("plain Dial: %v", err)
		}
		defer c.Close()
		_, err = c.Create(ctx, knfsd.TLSExport+"/plain")
		if !errors.Is(err, ErrWrongSec) {
			t.Fatalf("plain Create in the TLS export: %v; want NFS4ERR_WRONGSEC", err)
		}
		if !strings.Contains(err.Error(), "RPC-over-TLS") {
			t.Errorf("error %q does not mention RPC-over-TLS", err)
		}
	})

	// A server certificate from another CA, or for another name, fails
	// Dial with the x509 error, final (no redial loop).
	t.Run("wrong CA", func(t *testing.T) {
		_, err := Dial(ctx, srv.Addr(), tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: testcert.NewCA(t, "other").Pool()}))
		var ua x509.UnknownAuthorityError
		var te *xprt.TLSError
		if !errors.As(err, &ua) || !errors.As(err, &te) || !te.Final {
			t.Fatalf("Dial trusting another CA: %v; want a final TLSError with x509.UnknownAuthorityError", err)
		}
	})
	t.Run("wrong name", func(t *testing.T) {
		_, err := Dial(ctx, srv.Addr(), tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool(), ServerName: "other.test"}))
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("Dial expecting another name: %v; want x509.HostnameError", err)
		}
	})

	// Mutual TLS. The TLS guest boots a kernel built with the asymmetric
	// key type (internal/knfsd's mtlskernel.go), so tlshd can hand the
	// client certificate's identity to the kernel.
	client := ca.Client(t, "client.test")
	mtlsCfg := func(mode xprt.TLSMode, pol policy.Policy) Config {
		cfg := tlsCfg(mode, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS}})
		cfg.Policy = pol
		return cfg
	}

	// A client with a certificate the server trusts writes into the
	// xprtsec=mtls export and reads the same back, before and after a
	// reconnect, which presents the certificate again.
	t.Run("mtls round trip", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), mtlsCfg(xprt.TLSMutual, nil))
		if err != nil {
			t.Fatalf("Dial with mutual TLS: %v", err)
		}
		defer c.Close()
		data := make([]byte, 4<<20+4321)
		rand.Read(data)
		name := knfsd.MTLSExport + "/roundtrip"
		tlsTestWrite(ctx, t, c, name, data)
		if got := tlsTestRead(ctx, t, c, name); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read back %d bytes with another sha256", len(got))
		}
		srv.ResetConnections()
		if got := tlsTestRead(ctx, t, c, name); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("after the reconnect: read back %d bytes with another sha256", len(got))
		}
		st := c.Stats().Transport
		if st.Reconnects < 1 || st.Handshakes != st.Connects {
			t.Fatalf("after a reset: %d connects, %d handshakes; want a handshake per connection", st.Connects, st.Handshakes)
		}
		t.Logf("%d connections, %d handshakes, last %v", st.Connects, st.Handshakes, st.LastHandshake)
	})

	// TLS without a client certificate reaches the root, but the mtls
	// export refuses it: NFS4ERR_WRONGSEC, whose message names the
	// missing certificate.
	t.Run("mtls without a certificate refused", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool()}))
		if err != nil {
			t.Fatalf("Dial over TLS: %v", err)
		}
		defer c.Close()
		_, err = c.Create(ctx, knfsd.MTLSExport+"/nocert")
		if !errors.Is(err, ErrWrongSec) || !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("Create in the mtls export without a certificate: %v; want NFS4ERR_WRONGSEC naming the client certificate", err)
		}
	})

	// A certificate from a CA the server does not trust. Presented
	// anyway (TLSMutual presents its one certificate whatever CAs the
	// server lists), tlshd rejects it after the handshake with an alert:
	// a final TLSError, no redial loop. Left to crypto/tls's own choice
	// (TLSRequired with Certificates), no certificate is sent, since the
	// server's CertificateRequest names only its CA: the client is
	// refused as one without a certificate.
	t.Run("mtls certificate from another CA refused", func(t *testing.T) {
		other := testcert.NewCA(t, "another CA").Client(t, "client.test")
		cfg := tlsCfg(xprt.TLSMutual, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{other.TLS}})
		c, err := Dial(ctx, srv.Addr(), cfg)
		if err == nil {
			_, err = c.Create(ctx, knfsd.MTLSExport+"/othercert")
			c.Close()
		}
		var te *xprt.TLSError
		if !errors.As(err, &te) || !te.Final {
			t.Fatalf("mutual TLS with a certificate from another CA: %v; want a final TLSError", err)
		}
		t.Logf("forced: %v", err)

		cfg = tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{other.TLS}})
		c, err = Dial(ctx, srv.Addr(), cfg)
		if err != nil {
			t.Fatalf("Dial over TLS with a certificate crypto/tls does not send: %v", err)
		}
		defer c.Close()
		_, err = c.Create(ctx, knfsd.MTLSExport+"/othercert")
		if !errors.Is(err, ErrWrongSec) {
			t.Fatalf("Create in the mtls export with a certificate from another CA: %v; want NFS4ERR_WRONGSEC", err)
		}
	})

	// The answer to the reserved-port dilemma: with mutual TLS the
	// certificate, not the source port, says who the client is, so an
	// export that is `insecure` (this server's are) lets a client with a
	// certificate reconnect from a fresh ephemeral port each time, past
	// stale middlebox state, and still refuses one without a
	// certificate.
	t.Run("mtls from ephemeral ports", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), mtlsCfg(xprt.TLSMutual, policy.Ephemeral(policy.Options{})))
		if err != nil {
			t.Fatalf("Dial with mutual TLS from an ephemeral port: %v", err)
		}
		defer c.Close()
		name := knfsd.MTLSExport + "/ephemeral"
		data := []byte("written over mutual TLS from ephemeral ports")
		st := tlsReadThroughResets(ctx, t, c, srv, name, data)
		for _, p := range st.LastPorts {
			if p < 1024 {
				t.Fatalf("ports %v: want only ephemeral ones", st.LastPorts)
			}
		}
		t.Logf("ports %v, %d handshakes", st.LastPorts, st.Handshakes)

		nc, err := Dial(ctx, srv.Addr(), Config{Policy: policy.Ephemeral(policy.Options{}),
			TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
		if err != nil {
			t.Fatalf("Dial over TLS from an ephemeral port: %v", err)
		}
		defer nc.Close()
		if _, err := nc.Open(ctx, name); !errors.Is(err, ErrWrongSec) {
			t.Fatalf("Open in the mtls export without a certificate: %v; want NFS4ERR_WRONGSEC", err)
		}
	})

	// Once the kernel knows client identities, an xprtsec=tls export
	// refuses a client that presents a certificate; xprtsec=tls:mtls
	// takes clients with and without one.
	t.Run("tls export and client certificates", func(t *testing.T) {
		c, err := Dial(ctx, srv.Addr(), mtlsCfg(xprt.TLSMutual, nil))
		if err != nil {
			t.Fatalf("Dial with mutual TLS: %v", err)
		}
		defer c.Close()
		if _, err := c.Create(ctx, knfsd.TLSExport+"/withcert"); !errors.Is(err, ErrWrongSec) {
			t.Fatalf("Create in the tls export with a certificate: %v; want NFS4ERR_WRONGSEC", err)
		}
		tlsTestWrite(ctx, t, c, knfsd.AnyTLSExport+"/withcert", []byte("mtls"))
		nc, err := Dial(ctx, srv.Addr(), tlsCfg(xprt.TLSRequired, &tls.Config{RootCAs: ca.Pool()}))
		if err != nil {
			t.Fatalf("Dial over TLS: %v", err)
		}
		defer nc.Close()
		if got := tlsTestRead(ctx, t, nc, knfsd.AnyTLSExport+"/withcert"); string(got) != "mtls" {
			t.Fatalf("read %q without a certificate", got)
		}
	})

	// Recovery under TLS: nfsd's threads restarted a quarter into a
	// 32 MiB copy into the xprtsec=tls export (killedMidCopy). The copy
	// ends with the bytes sent, the open file reclaimed in the grace
	// period, and every connection, the reconnects after the restart
	// included, probed and handshook anew. Last, since the grace period
	// it starts would slow the subtests after it.
	t.Run("nfsd restart mid-copy", func(t *testing.T) {
		testutil.CheckLeaks(t)
		dir := knfsd.TLSExport + "/restart"
		if _, err := srv.Exec(ctx, "rm -rf "+knfsd.ExportPath+dir+" && mkdir -m 0777 "+knfsd.ExportPath+dir); err != nil {
			t.Fatal(err)
		}
		c := dialServer(t, srv.Addr(), Config{Logger: testLogger(t), TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
		crash := func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := srv.RestartNFSD(ctx); err != nil {
				t.Fatal(err)
			}
		}
		before := c.Stats().Transport.Handshakes
		killedMidCopy(t, testServer{name: "knfsd-tls", addr: srv.Addr(), dir: dir, side: &guestSide{srv: srv, dir: dir}, crash: crash}, c, 32<<20)
		st := c.Stats().Transport
		if st.Reconnects < 1 || st.Handshakes <= before || st.Handshakes != st.Connects {
			t.Fatalf("after the restart: %d connects, %d handshakes (%d before); want a new handshake for each reconnect",
				st.Connects, st.Handshakes, before)
		}
		t.Logf("%d connections, %d handshakes, %v in handshakes", st.Connects, st.Handshakes, st.HandshakeTime)
	})

	// Exactly-once under TLS: 64 goroutines of exclusive creates, renames
	// and removes while the connection is reset every few milliseconds;
	// every re-sent request meets the session's reply cache through a new
	// connection and a new handshake.
	t.Run("resets", func(t *testing.T) {
		testutil.CheckLeaks(t)
		dir := knfsd.TLSExport + "/resets"
		if _, err := srv.Exec(ctx, "rm -rf "+knfsd.ExportPath+dir+" && mkdir -m 0777 "+knfsd.ExportPath+dir); err != nil {
			t.Fatal(err)
		}
		c := dialServer(t, srv.Addr(), Config{Slots: 64, Logger: testLogger(t), TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
		testResets(t, testServer{name: "knfsd-tls", addr: srv.Addr(), dir: dir, side: &guestSide{srv: srv, dir: dir}}, c)
		if st := c.Stats().Transport; st.Handshakes != st.Connects {
			t.Errorf("%d connects, %d handshakes; want a handshake for each", st.Connects, st.Handshakes)
		}
	})
}

// A real server whose certificate has expired: Dial fails at once with a
// final TLSError naming the expiry (x509.CertificateInvalidError, Expired),
// no redial loop until the deadline. tlshd serves the certificate as it
// is; the client is the one to refuse it.
func TestKnfsdTLSExpiredCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "gonfs knfsd test CA")
	expired := ca.Expired(t, "nfs.test", "127.0.0.1")
	srv := knfsd.Start(t, knfsd.Config{Insecure: true, TLS: &knfsd.TLS{CertPEM: expired.CertPEM, KeyPEM: expired.KeyPEM, CAPEM: ca.PEM()}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Dial(ctx, srv.Addr(), Config{TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
	var ci x509.CertificateInvalidError
	var te *xprt.TLSError
	if !errors.As(err, &ci) || ci.Reason != x509.Expired || !errors.As(err, &te) || !te.Final || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a server with an expired certificate: %v; want a final TLSError with x509.CertificateInvalidError (Expired), before the deadline", err)
	}
	if !strings.Contains(err.Error(), "certificate has expired") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line saying the certificate has expired", err)
	}
	t.Logf("%v", err)
}

// TLS asked of a server that does not offer it (NFS-Ganesha 4.3 has no
// RPC-over-TLS): Dial fails with ErrTLSNotOffered at once; no silent
// plain-text fallback.
func TestTLSNotOffered(t *testing.T) {
	srv := ganesha.Start(t, ganesha.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca := testcert.NewCA(t, "ca")
	_, err := Dial(ctx, srv.Addr(), Config{TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
	if !errors.Is(err, xprt.ErrTLSNotOffered) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with TLS required: %v; want ErrTLSNotOffered, before the deadline", err)
	}
}

// A Linux kernel server whose kernel can do RPC-over-TLS but whose tlshd
// does not run (the plain knfsd) answers the probe with STARTTLS and then
// drops the connection at the handshake: the client keeps trying, as for
// any server that is not ready, never falls back to plain text, and when
// the caller's deadline ends the error says that the handshake failed.
func TestKnfsdTLSWithoutTLSHD(t *testing.T) {
	srv := knfsd.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ca := testcert.NewCA(t, "ca")
	_, err := Dial(ctx, srv.Addr(), Config{TLS: xprt.TLSOptions{Mode: xprt.TLSRequired, Config: &tls.Config{RootCAs: ca.Pool()}}})
	var te *xprt.TLSError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) || te.Step != "handshake" {
		t.Fatalf("Dial with TLS required: %v; want the deadline, with the failed handshake as the last attempt", err)
	}
	t.Logf("%v", err)
}

// tlsReadThroughResets writes data to name, then reads it back three
// times, the server resetting the connection before each; every
// reconnect must handshake again. It returns the transport's statistics.
func tlsReadThroughResets(ctx context.Context, t *testing.T, c *Client, srv *knfsd.Server, name string, data []byte) xprt.Stats {
	t.Helper()
	tlsTestWrite(ctx, t, c, name, data)
	for i := range 3 {
		srv.ResetConnections()
		if got := tlsTestRead(ctx, t, c, name); !bytes.Equal(got, data) {
			t.Fatalf("after reset %d: read %q", i+1, got)
		}
	}
	st := c.Stats().Transport
	if st.Reconnects < 3 || st.Handshakes != st.Connects {
		t.Fatalf("%d connects, %d handshakes after 3 resets; want at least 4, a handshake each", st.Connects, st.Handshakes)
	}
	return st
}

func tlsTestWrite(ctx context.Context, t *testing.T, c *Client, name string, data []byte) {
	t.Helper()
	f, err := c.Create(ctx, name)
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

func tlsTestRead(ctx context.Context, t *testing.T, c *Client, name string) []byte {
	t.Helper()
	f, err := c.Open(ctx, name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}
