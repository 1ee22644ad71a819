package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/kdc"
)

// Kerberos against NFS-Ganesha with an MIT KDC of the test's own: a user's
// credential cache (kinit) and a service's keytab, each under sec=krb5p;
// the default sec=sys refused by the export with a hint that names
// Kerberos; a missing credential cache said in one line.
func TestKerberos(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	k.AddPrincipal(t, "alice", "alice-secret")
	srv := ganesha.Start(t, ganesha.Config{
		Kerberos: &ganesha.Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: k.Keytab(t, "nfs/localhost")},
		SecType:  []string{"krb5p"},
	})
	// Ganesha maps a principal it cannot map to a local user to the
	// anonymous user.
	if err := os.Chmod(srv.ExportDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	ccache := k.Kinit(t, "alice", "alice-secret")
	keytab := k.Keytab(t, "nfs-client/localhost")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandom(t, src, 5<<20+3, 21)
	base := "nfs://" + srv.Addr() + srv.Pseudo() + "/"
	krb5Flags := []string{"--krb5-conf", k.Krb5Conf(), "--krb5-service", "nfs/localhost"}
	run := func(env string, args ...string) result {
		cmd := exec.Command(nfscpBin, args...)
		cmd.Env = append(os.Environ(), "KRB5CCNAME="+env)
		return runCmd(t, cmd)
	}

	for _, tc := range []struct {
		name  string
		base  string
		flags []string
	}{
		// The server's principal by default: nfs/ and the host in the
		// URL, here "localhost".
		{"ccache", "nfs://localhost:" + strconv.Itoa(srv.Port()) + srv.Pseudo() + "/", []string{"--krb5-conf", k.Krb5Conf()}},
		{"keytab", base, append([]string{"--keytab", keytab, "--krb5-principal", "nfs-client/localhost"}, krb5Flags...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.base + tc.name + "?sec=krb5p"
			args := append(append([]string{"-q", "--stats"}, tc.flags...), src, url)
			r := run("FILE:"+ccache, args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("upload: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "sec=krb5p") {
				t.Errorf("--stats does not say sec=krb5p:\n%s", r.stdout)
			}
			disk, err := os.ReadFile(filepath.Join(srv.ExportDir(), tc.name))
			if h := sha256.Sum256(disk); err != nil || hex.EncodeToString(h[:]) != sum {
				t.Fatalf("the server's copy: %d bytes (%v), sha256 differs", len(disk), err)
			}
			back := filepath.Join(t.TempDir(), "back")
			r = run("FILE:"+ccache, append(append([]string{"-q"}, tc.flags...), url, back)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("download: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			got, err := os.ReadFile(back)
			if h := sha256.Sum256(got); err != nil || hex.EncodeToString(h[:]) != sum {
				t.Fatalf("downloaded %d bytes (%v), sha256 differs", len(got), err)
			}
		})
	}

	// sec= lists what the user allows, strongest first: the export of a
	// second server takes only krb5i, and nfscp uses it.
	t.Run("strongest allowed", func(t *testing.T) {
		srv2 := ganesha.Start(t, ganesha.Config{
			Kerberos: &ganesha.Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: k.Keytab(t, "nfs/localhost")},
			SecType:  []string{"krb5i"},
		})
		if err := os.Chmod(srv2.ExportDir(), 0o777); err != nil {
			t.Fatal(err)
		}
		url := "nfs://" + srv2.Addr() + srv2.Pseudo() + "/f?sec=krb5p:krb5i:krb5"
		r := run("FILE:"+ccache, append(append([]string{"-q", "--stats"}, krb5Flags...), src, url)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("upload: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "sec=krb5i") {
			t.Errorf("--stats does not say sec=krb5i, the one flavor of the list the export takes:\n%s", r.stdout)
		}
		disk, err := os.ReadFile(filepath.Join(srv2.ExportDir(), "f"))
		if h := sha256.Sum256(disk); err != nil || hex.EncodeToString(h[:]) != sum {
			t.Fatalf("the server's copy: %d bytes (%v), sha256 differs", len(disk), err)
		}
		r = run("FILE:"+ccache, append(append([]string{"-q"}, krb5Flags...), src, "nfs://"+srv2.Addr()+srv2.Pseudo()+"/g?sec=krb5p:krb5")...)
		if r.code == 0 || !strings.Contains(r.stderr, "the export takes sec=krb5i, none of sec=krb5p:krb5") {
			t.Fatalf("a list the export takes nothing of: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})

	t.Run("sys refused", func(t *testing.T) {
		r := run("FILE:"+ccache, "-q", src, base+"sys")
		if r.code == 0 || !strings.Contains(r.stderr, "NFS4ERR_WRONGSEC") || !strings.Contains(r.stderr, "sec=krb5") {
			t.Fatalf("AUTH_SYS to a krb5p export: exit %d, stderr:\n%s\nwant a failure naming NFS4ERR_WRONGSEC and sec=krb5", r.code, r.stderr)
		}
	})
	t.Run("no ccache", func(t *testing.T) {
		r := run("FILE:"+filepath.Join(dir, "none"), append(append([]string{"-q"}, krb5Flags...), src, base+"none?sec=krb5")...)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "krb5") {
			t.Fatalf("no credential cache: exit %d, stderr:\n%s\nwant one line naming Kerberos", r.code, r.stderr)
		}
		t.Logf("no ccache: %s", r.stderr)
	})
}
