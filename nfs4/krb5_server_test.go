package nfs4

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/kdc"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
)

// TestGaneshaKerberosExport: a Ganesha with Kerberos from internal/kdc
// really demands it. Under AUTH_SYS (the default) Dial succeeds (the
// pseudo root takes every flavor), but the krb5 export refuses every
// call with NFS4ERR_WRONGSEC, whose message points at Kerberos, and
// SECINFO lists only the RPCSEC_GSS services it was given, in Ganesha's
// order (privacy first). An export that also names sys serves AUTH_SYS.
func TestGaneshaKerberosExport(t *testing.T) {
	testutil.CheckLeaks(t)
	k := kdc.Start(t, kdc.Config{})
	krb := &ganesha.Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: k.Keytab(t, "nfs/localhost")}
	for _, tc := range []struct {
		sec      []string
		services []uint32 // RPC_GSS_SVC_* SECINFO lists; 0 stands for AUTH_SYS
		wrongSec bool
	}{
		{[]string{"krb5"}, []uint32{uint32(rpc.GSSNone)}, true},
		{[]string{"krb5", "krb5i", "krb5p"}, []uint32{uint32(rpc.GSSPrivacy), uint32(rpc.GSSIntegrity), uint32(rpc.GSSNone)}, true},
		{[]string{"sys", "krb5i"}, []uint32{uint32(rpc.GSSIntegrity), 0}, false},
	} {
		t.Run(strings.Join(tc.sec, ","), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			srv, c := dialGanesha(t, ganesha.Config{ExportDir: dir, Kerberos: krb, SecType: tc.sec}, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			_, statErr := c.Stat(ctx, srv.Pseudo()+"/f")
			_, createErr := c.Create(ctx, srv.Pseudo()+"/new")
			if tc.wrongSec {
				for _, err := range []error{statErr, createErr} {
					if !errors.Is(err, ErrWrongSec) || !strings.Contains(err.Error(), "Kerberos") {
						t.Errorf("AUTH_SYS call into an export of %v: %v; want NFS4ERR_WRONGSEC, its message naming Kerberos", tc.sec, err)
					}
				}
			} else if statErr != nil || createErr != nil {
				t.Errorf("AUTH_SYS calls into an export of %v: Stat: %v, Create: %v; want both to work", tc.sec, statErr, createErr)
			}

			var got []uint32
			for _, s := range secinfoOf(t, ctx, c, strings.TrimPrefix(srv.Pseudo(), "/")) {
				switch s.flavor {
				case rpc.AuthFlavorGSS:
					if string(s.oid) != string(krb5OID) {
						t.Errorf("SECINFO lists RPCSEC_GSS with mechanism %x, want Kerberos V5's %x", s.oid, krb5OID)
					}
					got = append(got, s.service)
				case rpc.AuthFlavorSys:
					got = append(got, 0)
				default:
					t.Errorf("SECINFO lists flavor %d", s.flavor)
				}
			}
			if !slices.Equal(got, tc.services) {
				t.Errorf("SECINFO of an export of %v lists services %v, want %v (0: AUTH_SYS)", tc.sec, got, tc.services)
			}
		})
	}
}

// secinfoOf asks SECINFO for name in the root directory. (Ganesha 4.3
// refuses LOOKUP followed by SECINFO_NO_NAME under the wrong flavor,
// although RFC 8881 §2.6.3.1.1.8 says a server should allow it.)
func secinfoOf(t *testing.T, ctx context.Context, c *Client, name string) []secinfo {
	t.Helper()
	var res secinfoRes
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putrootfh()
			if cmp.op(opSecinfo) {
				cmp.e.String(name)
			}
		},
		p: func(r *reply) error {
			if err := r.statusOnly(opPutRootFH); err != nil {
				return err
			}
			if err := r.head(opSecinfo); err != nil {
				return err
			}
			d := &r.d
			res.n = d.Count(maxSecinfo, 4)
			for i := range res.n {
				s := &res.flavors[i]
				*s = secinfo{flavor: d.Uint32()}
				if s.flavor == rpc.AuthFlavorGSS {
					s.oid = append([]byte(nil), d.Opaque(maxOIDLen)...)
					s.qop = d.Uint32()
					s.service = d.Uint32()
				}
			}
			return r.done(opSecinfo, OK)
		},
	})
	if err != nil {
		t.Fatalf("SECINFO %q: %v", name, err)
	}
	return res.flavors[:res.n]
}
