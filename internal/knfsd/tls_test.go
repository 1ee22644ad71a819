package knfsd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testcert"
)

// The TLS exports take the root export's options with their own fsid and
// xprtsec; a server without TLS has neither them nor tlshd.
func TestTLSExports(t *testing.T) {
	c, err := Config{Insecure: true, TLS: &TLS{}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: c}
	got := s.tlsExports()
	for _, want := range []string{
		"/export/tls " + guestNet + "(rw,fsid=101,no_root_squash,sync,no_subtree_check,insecure,xprtsec=tls)",
		"/export/mtls " + guestNet + "(rw,fsid=102,no_root_squash,sync,no_subtree_check,insecure,xprtsec=mtls)",
		"/export/anytls " + guestNet + "(rw,fsid=103,no_root_squash,sync,no_subtree_check,insecure,xprtsec=tls:mtls)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("exports %q lack %q", got, want)
		}
	}
	if !strings.Contains(s.initScript(), "tlshd") {
		t.Error("init.sh does not start tlshd")
	}
	s.cfg.TLS = nil
	if s.tlsExports() != "" || strings.Contains(s.initScript(), "tlshd") {
		t.Error("a server without TLS gets TLS exports or tlshd")
	}
}

// A TLS server boots the kernel built for mutual TLS; other servers boot
// Debian's.
func TestTLSKernel(t *testing.T) {
	ca := testcert.NewCA(t, "knfsd kernel test CA")
	cert := ca.Server(t, "nfs.test")
	srv := Start(t, Config{TLS: &TLS{CertPEM: cert.CertPEM, KeyPEM: cert.KeyPEM, CAPEM: ca.PEM()}})
	t.Logf("TLS server booted in %v", srv.BootTime())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := srv.Exec(ctx, "uname -r")
	if err != nil {
		t.Fatal(err)
	}
	release := strings.TrimSpace(out)
	if !strings.HasSuffix(release, mtlsLocalVersion) {
		t.Fatalf("TLS server's kernel %q; want the one built for mutual TLS (%s)", release, mtlsLocalVersion)
	}
	plain, err := Shared(t).Exec(ctx, "uname -r")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(strings.TrimSpace(plain), mtlsLocalVersion) {
		t.Fatalf("a server without TLS boots %q; want Debian's kernel", plain)
	}
	t.Logf("kernels: TLS %s, plain %s", release, strings.TrimSpace(plain))
}
