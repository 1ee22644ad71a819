package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
