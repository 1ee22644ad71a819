package knfsd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/kdc"
)

// The Kerberos exports take the root export's options with their own
// fsid and one service each, and the root takes every flavor; a server
// without Kerberos has neither them nor svcgssd, and its init.sh is
// what it was before Kerberos existed.
func TestKerberosExports(t *testing.T) {
	c, err := Config{Insecure: true, Kerberos: &Kerberos{Krb5Conf: "k", Keytab: "t"}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: c}
	script := s.initScript()
	for _, want := range []string{
		"/export " + guestNet + "(rw,fsid=0,no_root_squash,sync,no_subtree_check,insecure,sec=sys:krb5:krb5i:krb5p)",
		"/export/krb5 " + guestNet + "(rw,fsid=111,no_root_squash,sync,no_subtree_check,insecure,sec=krb5)",
		"/export/krb5i " + guestNet + "(rw,fsid=112,no_root_squash,sync,no_subtree_check,insecure,sec=krb5i)",
		"/export/krb5p " + guestNet + "(rw,fsid=113,no_root_squash,sync,no_subtree_check,insecure,sec=krb5p)",
		"rpc.svcgssd -f -n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("init.sh lacks %q:\n%s", want, script)
		}
	}
	s.cfg.Kerberos = nil
	if plain := s.initScript(); strings.Contains(plain, "sec=") || strings.Contains(plain, "svcgssd") || strings.Contains(plain, "krb5") {
		t.Errorf("a server without Kerberos gets Kerberos exports or svcgssd:\n%s", plain)
	}
	if _, err := (Config{TLS: &TLS{}, Kerberos: &Kerberos{Krb5Conf: "k", Keytab: "t"}}).resolve(); err == nil {
		t.Error("Kerberos with TLS resolves; the mutual-TLS kernel has no rpcsec_gss_krb5")
	}
	if _, err := (Config{Kerberos: &Kerberos{Keytab: "t"}}).resolve(); err == nil {
		t.Error("Kerberos without a krb5.conf resolves")
	}
}

// TestKerberosStart boots a Kerberos server and checks in the guest what
// makes it one: Debian's kernel with the Kerberos mechanism loaded,
// svcgssd running with the keytab (and no gssproxy: the kernel's legacy
// upcall), and
// the exports. The clients' side is in the krb5 module's tests
// (krb5/knfsd_test.go).
func TestKerberosStart(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	kt := k.Keytab(t, "nfs/localhost")
	srv := Start(t, Config{Kerberos: &Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: kt}})
	t.Logf("Kerberos server booted in %v", srv.BootTime())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct{ script, want string }{
		{"uname -r | grep -v -- " + mtlsLocalVersion, "7."},
		{"command -v gssproxy || echo none", "none"},
		{"grep -c '^rpcsec_gss_krb5 ' /proc/modules", "1"},
		{"pgrep -x rpc.svcgssd >/dev/null && echo running", "running"},
		{"cmp /gonfs/krb5.keytab /etc/krb5.keytab && stat -c %a /etc/krb5.keytab", "600"},
		{"exportfs -v", "sec=sys:krb5:krb5i:krb5p"},
		{"exportfs -v", "/export/krb5p"},
		{"stat -c %a " + ExportPath + Krb5iExport, "777"},
	} {
		out, err := srv.Exec(ctx, c.script)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %q (%v); want %q in it", c.script, out, err, c.want)
		}
	}
}
