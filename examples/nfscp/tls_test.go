package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testcert"
	"github.com/gonfs/nfs/internal/testutil"
)

// RPC-over-TLS against the Linux kernel's server: a knfsd guest with tlshd
// (internal/knfsd's Config.TLS), whose xprtsec=tls and xprtsec=mtls
// exports are `insecure`, so that TLS and the client certificate alone
// admit a client, from any port. The certificates are made by the test.
func TestKnfsdTLS(t *testing.T) {
	ca := testcert.NewCA(t, "nfscp test CA")
	// nfscp dials the forwarder on 127.0.0.1: the name it checks.
	server := ca.Server(t, "nfs.test", "127.0.0.1")
	srv := knfsd.Start(t, knfsd.Config{Insecure: true, TLS: &knfsd.TLS{CertPEM: server.CertPEM, KeyPEM: server.KeyPEM, CAPEM: ca.PEM()}})
	t.Logf("TLS guest booted in %v", srv.BootTime())

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	client := ca.Client(t, "client.test")
	other := testcert.NewCA(t, "another CA")
	otherClient := other.Client(t, "client.test")
	caFile := write("ca.pem", ca.PEM())
	otherCAFile := write("other-ca.pem", other.PEM())
	certFile, keyFile := write("client.pem", client.CertPEM), write("client.key", client.KeyPEM)
	otherCertFile, otherKeyFile := write("other.pem", otherClient.CertPEM), write("other.key", otherClient.KeyPEM)
	src := filepath.Join(dir, "src")
	sum := writeRandom(t, src, 3<<20+777, 11)
	base := "nfs://" + srv.Addr()

	// Up and down again, with the server's copy checked in the guest too.
	// ephemeral: the ports --stats lists must all be above 1023.
	roundTrip := func(t *testing.T, export string, flags []string, query string, ephemeral bool) {
		t.Helper()
		url := base + export + "/" + areaName(t)
		r := nfscp(t, append(append([]string{"-q", "--stats"}, flags...), src, url+query)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("upload: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		// One connection, one handshake: TLS was used, not plain text.
		if !regexp.MustCompile(`TLS handshakes: +1 `).MatchString(r.stdout) {
			t.Errorf("--stats shows no single TLS handshake:\n%s", r.stdout)
		}
		if ephemeral {
			m := regexp.MustCompile(`local ports: +([0-9 ]+)\n`).FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("--stats shows no local ports:\n%s", r.stdout)
			}
			t.Logf("local ports %s", m[1])
			for _, p := range strings.Fields(m[1]) {
				if n, _ := strconv.Atoi(p); n < 1024 {
					t.Errorf("local ports %s: want only ephemeral ones", m[1])
				}
			}
		}
		back := filepath.Join(t.TempDir(), "back")
		mustSucceed(t, nfscp(t, append(append([]string{"-q"}, flags...), url+query, back)...))
		if got := testutil.FileSHA256(t, back); got != sum {
			t.Fatalf("sha256 after the round trip %s, want %s", got, sum)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		data, err := srv.ReadFile(ctx, export+"/"+areaName(t))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := os.ReadFile(src); !bytes.Equal(data, want) {
			t.Errorf("the server holds %d bytes, want the %d copied", len(data), len(want))
		}
	}

	t.Run("tls round trip", func(t *testing.T) {
		roundTrip(t, knfsd.TLSExport, []string{"--tls-ca", caFile}, "?xprtsec=tls", false)
	})
	// The reserved-port dilemma answered: with a client certificate, from
	// ephemeral ports into the insecure xprtsec=mtls export.
	t.Run("mtls round trip from ephemeral ports", func(t *testing.T) {
		roundTrip(t, knfsd.MTLSExport, []string{"--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile}, "?xprtsec=mtls&policy=ephemeral", true)
	})
	// The flag does what the query does.
	t.Run("xprtsec flag", func(t *testing.T) {
		roundTrip(t, knfsd.TLSExport, []string{"--xprtsec", "tls", "--tls-ca", caFile}, "", false)
	})

	t.Run("wrong CA", func(t *testing.T) {
		url := base + knfsd.TLSExport + "/wrong-ca"
		mustFail(t, nfscp(t, "-q", "--tls-ca", otherCAFile, src, url+"?xprtsec=tls"), 1,
			"nfscp: "+url+": the server's certificate does not verify: x509: certificate signed by unknown authority (give its CA with --tls-ca)")
	})
	t.Run("mtls without a certificate", func(t *testing.T) {
		url := base + knfsd.MTLSExport + "/nocert?xprtsec=mtls"
		mustFail(t, nfscp(t, "-q", "--tls-ca", caFile, src, url), 2,
			"nfscp: "+url+": xprtsec=mtls needs a client certificate: --tls-cert FILE and --tls-key FILE")
	})
	// tlshd refuses a certificate from a CA it does not trust, with an
	// alert after the handshake.
	t.Run("client certificate refused", func(t *testing.T) {
		url := base + knfsd.MTLSExport + "/othercert"
		mustFail(t, nfscp(t, "-q", "--tls-ca", caFile, "--tls-cert", otherCertFile, "--tls-key", otherKeyFile, src, url+"?xprtsec=mtls"), 1,
			"nfscp: "+url+": the server refused the client certificate (--tls-cert): remote error: tls: access denied")
	})
	// TLS without a certificate reaches the server, but its mtls export
	// refuses it.
	t.Run("tls into the mtls export", func(t *testing.T) {
		url := base + knfsd.MTLSExport + "/tlsonly"
		mustFail(t, nfscp(t, "-q", "--tls-ca", caFile, src, url+"?xprtsec=tls"), 1,
			"nfscp: "+url+": the export refuses this client's security (NFS4ERR_WRONGSEC): it may need Kerberos (sec=krb5, krb5i or krb5p), RPC-over-TLS (xprtsec=tls), "+
				"a client certificate (xprtsec=mtls), or no client certificate (Linux's xprtsec=tls exports)")
	})
}

// TLS asked of a server that does not offer it (NFS-Ganesha 4.3 has no
// RPC-over-TLS): one line saying so, and no copy in plain text.
func TestTLSNotOffered(t *testing.T) {
	needServer(t)
	a := newArea(t, srvA)
	src := filepath.Join(t.TempDir(), "f")
	writeRandom(t, src, 1000, 12)
	mustFail(t, nfscp(t, "-q", src, a.url+"/f?xprtsec=tls"), 1,
		"nfscp: "+a.url+"/f: the server does not offer RPC-over-TLS, which xprtsec=tls asks for (a Linux server needs tlshd running)")
	if names := listDir(t, a.disk); len(names) != 0 {
		t.Errorf("after the refusal the server holds %q", names)
	}
}

// A server whose certificate has expired (tlshd serves it as it is): the
// x509 reason, with the times, in one line.
func TestKnfsdTLSExpiredCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "nfscp test CA")
	expired := ca.Expired(t, "nfs.test", "127.0.0.1")
	srv := knfsd.Start(t, knfsd.Config{Insecure: true, TLS: &knfsd.TLS{CertPEM: expired.CertPEM, KeyPEM: expired.KeyPEM, CAPEM: ca.PEM()}})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "f")
	writeRandom(t, src, 1000, 13)
	url := "nfs://" + srv.Addr() + knfsd.TLSExport + "/expired"
	r := nfscp(t, "-q", "--tls-ca", caFile, src, url+"?xprtsec=tls")
	want := regexp.MustCompile(`^nfscp: ` + regexp.QuoteMeta(url) + `: the server's certificate does not verify: ` +
		`x509: certificate has expired or is not yet valid: current time \S+ is after \S+\n$`)
	if r.code != 1 || !want.MatchString(r.stderr) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and a line matching %s", r.code, r.stderr, want)
	}
}
