// Command demo is `make demo`: it shows nfscp copying a file into an NFS
// server and back while the server is killed and restarted under it.
//
// It starts an NFS-Ganesha on a free loopback port exporting a temporary
// directory (with a grace period of a few seconds, so that the restart
// exercises state reclaim), builds nfscp, generates a 256 MiB random file,
// and copies it local → NFS and NFS → local. About a second into each copy
// it kills the server (SIGKILL, as a crash would) and restarts it 2 s
// later. It prints nfscp's reconnect lines and statistics, and the sha256
// of the original and of the round-tripped copy, then removes everything it
// made. It needs root (Ganesha's VFS backend does) and exits with status 1
// if anything fails.
//
// nfscp runs with --bwlimit 64m: on loopback a copy would otherwise end
// before the kill lands, and the point is to kill the server mid-copy.
//
// Run it from the module root: go run ./examples/nfscp/internal/demo
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gonfs/nfs/examples/nfscp/internal/tempfile"
	"github.com/gonfs/nfs/internal/filehash"
	"github.com/gonfs/nfs/internal/ganesha"
	"golang.org/x/term"
)

const (
	fileSize  = 256 << 20
	rateLimit = "64m"           // nfscp --bwlimit: 4 s for the file without outages
	killAfter = time.Second     // into each copy
	outage    = 2 * time.Second // between the kill and the restart
	copyLimit = "10m"           // nfscp --timeout: a demo that hangs is a failure
)

func main() {
	os.Exit(demo())
}

// clearLine starts the demo's lines on a terminal: it erases the line
// that nfscp's progress bar (drawn on the same terminal) may be on.
var clearLine = func() string {
	if term.IsTerminal(int(os.Stdout.Fd())) {
		return "\r\033[K"
	}
	return ""
}()

// say prints a line of the demo's own narration.
func say(format string, args ...any) {
	fmt.Printf(clearLine+"demo: "+format+"\n", args...)
}

func demo() int {
	if err := ganesha.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: cannot run NFS-Ganesha here: %v\n", err)
		fmt.Fprintln(os.Stderr, "demo: run `make demo` as root on Debian; it installs what is missing")
		return 1
	}
	p := ganesha.NewProgram("demo", os.Stderr)
	defer p.Close()

	work := p.TempDir()
	export := filepath.Join(work, "export")
	if err := os.Mkdir(export, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	srv := ganesha.Start(p, ganesha.Config{ExportDir: export, Grace: 5 * time.Second, Lease: 5 * time.Second})
	say("NFS-Ganesha (pid %d) serves %s on %s as %s, with a 5 s grace period after restarts",
		srv.PID(), export, srv.Addr(), srv.Pseudo())

	bin := filepath.Join(work, "nfscp")
	say("building nfscp")
	build := exec.Command("go", "build", "-o", bin, "github.com/gonfs/nfs/examples/nfscp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo: go build:", err)
		return 1
	}

	orig := filepath.Join(work, "random.bin")
	origSum, err := generate(orig, fileSize)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	say("generated %s: 256 MiB of random data", orig)

	url := "nfs://" + srv.Addr() + srv.Pseudo() + "/random.bin"
	back := filepath.Join(work, "random.back")
	steps := []struct {
		title    string
		src, dst string
		tempDir  string // where nfscp's temporary file appears
		tempName string
	}{
		{"local → NFS", orig, url, export, "random.bin"},
		{"NFS → local", url, back, work, "random.back"},
	}
	for i, s := range steps {
		say("[%d/%d] %s, killing the server %s into the copy and restarting it %s later",
			i+1, len(steps), s.title, killAfter, outage)
		if err := copyThroughRestart(p, srv, bin, s.src, s.dst, s.tempDir, s.tempName); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
	}

	backSum, err := filehash.SHA256(back)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	say("sha256 of the original:     %s", origSum)
	say("sha256 after the round trip: %s", backSum)
	if backSum != origSum {
		fmt.Fprintln(os.Stderr, "demo: FAILED: the copy differs from the original")
		return 1
	}
	say("identical: both copies rode through a server crash and restart")
	return 0
}

// copyThroughRestart runs nfscp src dst, kills the server once the copy
// has run for killAfter, restarts it after outage, and waits for nfscp.
func copyThroughRestart(p *ganesha.Program, srv *ganesha.Server, bin, src, dst, tempDir, tempName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 11*time.Minute) // past copyLimit
	defer cancel()
	args := []string{"-v", "--stats", "--bwlimit", rateLimit, "--timeout", copyLimit, src, dst}
	fmt.Printf("$ nfscp %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The copy has begun when its temporary file exists.
	started := false
	for deadline := time.Now().Add(time.Minute); !started && time.Now().Before(deadline); {
		select {
		case err := <-done:
			return fmt.Errorf("nfscp ended before the copy began: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		started = tempfile.Size(tempDir, tempName) >= 0
	}
	if !started {
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("nfscp did not start copying within a minute")
	}
	select {
	case err := <-done:
		return fmt.Errorf("nfscp ended within %s, before the server could be killed (%v)", killAfter, err)
	case <-time.After(killAfter):
	}
	say("killing the server (SIGKILL, pid %d) with %.1f MiB of the file copied",
		srv.PID(), float64(max(tempfile.Size(tempDir, tempName), 0))/(1<<20))
	srv.Kill()
	select {
	case err := <-done:
		return fmt.Errorf("nfscp ended while the server was down: %v", err)
	case <-time.After(outage):
	}
	srv.Restart(p)
	say("server restarted (pid %d)", srv.PID())
	if err := <-done; err != nil {
		return fmt.Errorf("nfscp failed: %v", err)
	}
	return nil
}

// generate writes size random bytes to name and returns their sha256.
func generate(name string, size int64) (string, error) {
	f, err := os.Create(name)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	_, err = io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8(seed), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), err
}
