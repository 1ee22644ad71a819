package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/knfsd"
)

// Against the Linux kernel's server (internal/knfsd), whose exports are
// `secure` by default: what a user sees when nfscp's source port is
// refused, and that the default settings, as root, are not.
func TestKnfsdPortRefusal(t *testing.T) {
	srv := knfsd.Shared(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv(1) from util-linux is needed: %v", err)
	}
	src := filepath.Join(t.TempDir(), "f")
	writeRandom(t, src, 5000, 3)
	url := "nfs://" + srv.Addr() + "/port-refusal"

	// The reason names the port, the export option and the privilege;
	// the port differs from run to run.
	want := regexp.MustCompile(`^nfscp: ` + regexp.QuoteMeta(url) + `: the server refused source port [0-9]+: ` +
		regexp.QuoteMeta(`its export accepts only reserved ports (below 1024); export it with "insecure", `+
			`or run nfscp as root or with CAP_NET_BIND_SERVICE (and not with --policy ephemeral)`) + "\n$")
	check := func(what string, r result) {
		t.Helper()
		if r.code != 1 || !want.MatchString(r.stderr) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 1 and a line matching %s", what, r.code, r.stderr, want)
		}
	}
	check("--policy ephemeral", nfscp(t, "-q", "--policy", "ephemeral", src, url))
	// Without the privilege, the default policy falls back to an
	// unreserved port, which this export refuses.
	check("without CAP_NET_BIND_SERVICE", runCmd(t, exec.Command("setpriv",
		"--inh-caps=-net_bind_service", "--bounding-set=-net_bind_service", "--", nfscpBin, "-q", src, url)))

	mustSucceed(t, nfscp(t, "-q", src, url))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := srv.ReadFile(ctx, "/port-refusal")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(src); !bytes.Equal(got, want) {
		t.Errorf("the server holds %d bytes, want the %d copied", len(got), len(want))
	}
}

// A path outside every export fails with the component that is missing
// and what the server's root holds instead: against Ganesha, whose root
// is a pseudo file system holding the export's path; against knfsd,
// whose fsid=0 export is the root itself, so the export's path on the
// server's disk is not part of the URL.
func TestPathOutsideExports(t *testing.T) {
	needServer(t)
	kn := knfsd.Shared(t)
	dst := t.TempDir()
	mustFail(t, nfscp(t, "-q", "nfs://"+srvA.Addr()+"/data/f", dst), 1,
		"nfscp: nfs://"+srvA.Addr()+"/data/f: no such file or directory: the server's NFSv4 root has no \"data\" (which holds \"export\")")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kn.Exec(ctx, "rm -rf /export/outside && mkdir /export/outside"); err != nil {
		t.Fatal(err)
	}
	url := "nfs://" + kn.Addr() + "/export/outside/f"
	r := nfscp(t, "-q", url, dst)
	want := "nfscp: " + url + ": no such file or directory: the server's NFSv4 root has no \"export\" (which holds "
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, `"outside"`) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and a line beginning %q naming \"outside\"", r.code, r.stderr, want)
	}
	// Deeper in: the directory that lacks the name is named.
	url = "nfs://" + kn.Addr() + "/outside/missing/f"
	mustFail(t, nfscp(t, "-q", url, dst), 1,
		"nfscp: "+url+": no such file or directory: \"/outside\" has no \"missing\" (which is empty)")
}
