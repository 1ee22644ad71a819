package knfsd

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestTLSImage builds the TLS guest (Debian trixie with its UML kernel and
// tlshd) if it is not cached; scripts/knfsd-image.sh runs it before the
// other tests, so that no test pays for the build.
func TestTLSImage(t *testing.T) {
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	t0 := time.Now()
	dir, err := EnsureTLSImage()
	if err != nil {
		t.Fatal(err)
	}
	g := tlsGuest{dir: dir}
	for _, p := range []string{g.image(), g.kernel(), dir + "/lib/libc.so.6", dir + "/lib/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("TLS guest %s (image %s on disk), ready in %v", dir, imageSizeBytes(g.image()), time.Since(t0).Round(time.Millisecond))
}

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
