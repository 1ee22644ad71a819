package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
)

// The end-to-end tests run the nfscp binary, built once by TestMain, against
// NFS-Ganesha servers, and the main copy paths also against the Linux
// kernel's nfsd (forEachServer in servers_test.go). Two Ganesha servers and
// one knfsd guest are shared by the tests that do not stop theirs (each test
// works in its own directory of the export); tests that kill Ganesha start
// their own, and those that restart knfsd's threads do it on the shared
// guest, which serves one test at a time.

var (
	nfscpBin string          // the binary under test
	srvA     *ganesha.Server // shared servers; nil when Ganesha cannot run here
	srvB     *ganesha.Server
	noServer string // why srvA is nil
)

// TestMain checks for goroutine leaks once, after every test and after
// testMain has stopped the shared servers: the tests run nfscp as a
// separate process, so a leak in this one is the test helpers'.
func TestMain(m *testing.M) {
	flag.Parse()
	testutil.VerifyMain(func() int { return testMain(m) })
}

func testMain(m *testing.M) int {
	// Listing tests and fuzzing (whose workers run TestMain too) need
	// neither the binary nor servers.
	for _, name := range []string{"test.list", "test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			noServer = "not started for " + name
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "nfscp-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Readable by all: a test runs the binary as another user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	nfscpBin = filepath.Join(dir, "nfscp")
	args := []string{"build", "-o", nfscpBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	if err := ganesha.Available(); err != nil {
		noServer = err.Error()
	} else if !testing.Short() {
		p := ganesha.NewProgram("nfscp-test", os.Stderr)
		defer p.Close()
		srvA = ganesha.Start(p, ganesha.Config{})
		srvB = ganesha.Start(p, ganesha.Config{})
		// Traversable by all: tests copy as other users too.
		for _, s := range []*ganesha.Server{srvA, srvB} {
			if err := os.Chmod(s.ExportDir(), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	} else {
		noServer = "-short"
	}
	code := m.Run()
	if err := knfsd.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// needServer skips (or, under GONFS_REQUIRE_GANESHA=1, fails) a test that
// needs Ganesha when it cannot run.
func needServer(t *testing.T) {
	t.Helper()
	if srvA != nil {
		return
	}
	if os.Getenv(ganesha.RequireEnv) == "1" {
		t.Fatalf("NFS-Ganesha is required (%s=1) but cannot run: %s", ganesha.RequireEnv, noServer)
	}
	t.Skipf("NFS-Ganesha cannot run here: %s", noServer)
}

// area is a test's own directory on a server: its path in the export on
// disk and as an nfs:// URL.
type area struct {
	disk string     // the directory on the server's disk (Ganesha's only)
	side serverSide // the directory seen from the server's side
	url  string     // nfs://addr/export/<test>
}

// newArea makes a fresh directory for t in srv's export.
func newArea(t *testing.T, srv *ganesha.Server) area {
	t.Helper()
	name := areaName(t)
	disk := filepath.Join(srv.ExportDir(), name)
	if err := os.RemoveAll(disk); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(disk) })
	return area{disk: disk, side: localSide(disk), url: "nfs://" + srv.Addr() + srv.Pseudo() + "/" + name}
}

// result is how a run of nfscp ended.
type result struct {
	code           int
	stdout, stderr string
}

// runTimeout bounds every run of the binary.
const runTimeout = 2 * time.Minute

// nfscp runs the binary with args and returns its exit status and output.
func nfscp(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(nfscpBin, args...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	return startCmd(t, cmd)()
}

// startCmd starts cmd; wait returns how it ended. It kills cmd if it runs
// longer than runTimeout.
func startCmd(t *testing.T, cmd *exec.Cmd) (wait func() result) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() result {
		t.Helper()
		var err error
		select {
		case err = <-done:
		case <-time.After(runTimeout):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v did not end within %s; stderr:\n%s", cmd.Args, runTimeout, stderr.String())
		}
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
			t.Errorf("%v printed a stack trace:\n%s", cmd.Args, r.stderr)
		}
		return r
	}
}

// mustSucceed fails t unless r is a silent success.
func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// mustFail fails t unless r ended with code and exactly the one line want
// on stderr.
func mustFail(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || r.stderr != want+"\n" {
		t.Fatalf("got exit %d, stderr:\n%q\nwant exit %d, stderr:\n%q", r.code, r.stderr, code, want+"\n")
	}
}

// writeRandom creates name with size random bytes and returns their sha256.
func writeRandom(t *testing.T, name string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	if _, err := io.CopyN(io.MultiWriter(f, h), r, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// noLeftovers fails t if dir holds a temporary file of nfscp's.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".nfscp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// waitFor polls cond every 20 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s", what, limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
