package knfsd

import (
	"strings"
	"testing"
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
