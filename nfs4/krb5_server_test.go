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
			flavors, err := c.SecInfo(ctx, srv.Pseudo())
			if err != nil {
				t.Fatalf("SecInfo(%s): %v", srv.Pseudo(), err)
			}
			for _, s := range flavors {
				switch s.Flavor {
				case rpc.AuthFlavorGSS:
					if string(s.Mechanism) != string(krb5OID) {
						t.Errorf("SECINFO lists RPCSEC_GSS with mechanism %x, want Kerberos V5's %x", s.Mechanism, krb5OID)
					}
					got = append(got, uint32(s.Service))
				case rpc.AuthFlavorSys:
					got = append(got, 0)
				default:
					t.Errorf("SECINFO lists flavor %d", s.Flavor)
				}
			}
			if !slices.Equal(got, tc.services) {
				t.Errorf("SECINFO of an export of %v lists services %v, want %v (0: AUTH_SYS)", tc.sec, got, tc.services)
			}
		})
	}
}
