package lab

// Dead-path detection with the library's default settings, checked
// against a real Ganesha: a download whose path goes silent gets a new
// connection from the path watch, and a stopped server (whose kernel still
// acknowledges) is never taken for a dead path. The client half of each
// test is the test binary re-executed inside the client namespace, so that
// the library dials from there with nothing but its defaults.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
)

// deadPathEnv carries a deadPathConfig to the re-executed child.
const deadPathEnv = "GONFS_LAB_DEADPATH"

// deadPathConfig is what the parent tells the child.
type deadPathConfig struct {
	Test   string // the test the child runs
	Addr   string
	File   string // in the server's namespace
	SHA256 string // of the file's contents
	PID    int    // ganesha.nfsd's
	Upload bool   // the child writes File instead of reading it
	Export string // the export's directory on the host (a file system of its own for an upload)
	// Connections is the child's Config.Connections; 0 leaves the default.
	Connections int
}

const (
	deadPathSize  = 64 << 20
	deadPathFault = 16 << 20 // bytes downloaded when the fault lands
	// deadPathBound bounds the child's whole run. It is a safety net for a
	// hung test, not a measurement: keepalive alone would reconnect well
	// within it.
	deadPathBound = 2 * time.Minute
	stoppedFor    = 10 * time.Second // how long TestStoppedServerIsNotDead stops the server
	frozenFor     = 10 * time.Second // how long TestStalledDiskIsNotDead freezes the disk
)

// TestDeadPathDownload: a download with the default Config, whose
// connection goes silent in both directions after 16 MiB (its 4-tuple
// dropped without a word, as behind a load balancer whose backend died),
// gets a new connection because the path watch declared the old one dead
// (policy.CauseProbeTimeout), not because keepalive did, and completes
// with the right data.
func TestDeadPathDownload(t *testing.T) {
	runDeadPath(t, func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error) {
		<-at
		st := c.Stats().Transport
		port := st.LastPorts[len(st.LastPorts)-1]
		silenceFlow(t, port)
		faultAt := time.Now()
		t.Logf("port %d silenced", port)
		// Measured for the lab report, not asserted: when the new
		// connection came, and when a small call made at the fault, as a
		// user's would be, succeeded (behind the download's READs).
		reconnected := timeUntil(faultAt, func() bool { return c.Stats().Transport.Connects >= 2 })
		small := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadPathBound)
			defer cancel()
			err := c.Mkdir(ctx, path.Dir(cfg.File)+"/made-at-the-fault", 0o755)
			if err == nil {
				t.Logf("a MKDIR made at the fault succeeded %v after it", time.Since(faultAt).Round(time.Millisecond))
			}
			small <- err
		}()
		err := wait()
		if d, ok := reconnected(); ok {
			t.Logf("new connection %v after the fault", d.Round(time.Millisecond))
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := <-small; err != nil {
			t.Errorf("a MKDIR made at the fault: %v", err)
		}
		st = c.Stats().Transport
		t.Logf("download done %v after the fault, %v of it disconnected; connects %d, probes %d, disconnects by cause %v, ports %v",
			time.Since(faultAt).Round(time.Millisecond), st.Disconnected.Round(time.Millisecond), st.Connects, st.Probes, st.Disconnects, st.LastPorts)
		if st.Connects < 2 {
			t.Errorf("%d connections: the download finished without a new one", st.Connects)
		}
		if n := st.Disconnects[policy.CauseProbeTimeout]; n != 1 {
			t.Errorf("%d connections declared dead by the path watch, want 1 (disconnects by cause: %v)", n, st.Disconnects)
		}
		if n := st.Disconnects[policy.CauseDeadPeer]; n != 0 {
			t.Errorf("%d connections declared dead by keepalive or TCP_USER_TIMEOUT, want 0: the path watch should have been first", n)
		}
	})
}

// TestDeadPathOneOfFourConnections: a download with 4 connections
// (Config.Connections, the library's defaults otherwise), one of which
// goes silent in both directions after 16 MiB, completes with the right
// data: the other three carry on, the silent one's READs are re-sent on
// them once the path watch declares it dead, and it is replaced. What the
// fault cost is reported (t.Logf), not asserted: the time from the fault
// to the end of the download beside the least time the rest takes at the
// link's rate, and when the new connection came.
func TestDeadPathOneOfFourConnections(t *testing.T) {
	runDeadPathWith(t, 4, func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error) {
		start := time.Now()
		<-at
		st := c.Stats()
		if len(st.Connections) != 4 {
			t.Fatalf("%d connections, want 4", len(st.Connections))
		}
		port := st.Connections[1].LocalPort
		if port == 0 {
			t.Fatalf("connection 1 not ready when the fault came: %+v", st.Connections[1])
		}
		silenceFlow(t, port)
		faultAt := time.Now()
		before := st.RPC.Retransmits
		t.Logf("connection 1's port %d silenced after %v", port, faultAt.Sub(start).Round(time.Millisecond))
		reconnected := timeUntil(faultAt, func() bool { return c.Stats().Connections[1].Connects >= 2 })
		err := wait()
		done := time.Since(faultAt)
		if d, ok := reconnected(); ok {
			t.Logf("connection 1 replaced %v after the fault", d.Round(time.Millisecond))
		} else {
			t.Logf("connection 1 not replaced within 1s of the download's end")
		}
		if err != nil {
			t.Fatal(err)
		}
		// The rest of the download at the link's rate (shapeRate, 100 Mbit/s
		// before framing: a lower bound).
		rest := time.Duration((deadPathSize - deadPathFault) * 8 * int64(time.Second) / 100e6)
		st = c.Stats()
		c1 := st.Connections[1]
		t.Logf("download done %v after the fault; the rest takes at least %v at the link's rate (cost at most %v); "+
			"%d READs re-sent; connection 1: connects %d, probes %d, disconnects by cause %v",
			done.Round(time.Millisecond), rest.Round(time.Millisecond), (done - rest).Round(time.Millisecond),
			st.RPC.Retransmits-before, c1.Connects, c1.Probes, c1.Disconnects)
		if n := c1.Disconnects[policy.CauseProbeTimeout]; n != 1 {
			t.Errorf("connection 1 declared dead by the path watch %d times, want 1 (disconnects by cause: %v)", n, c1.Disconnects)
		}
	})
}

// TestStoppedServerIsNotDead: a Ganesha stopped (SIGSTOP) for 10 s in the
// middle of a download with the default Config still has a kernel that
// acknowledges every segment. The path watch probes it, hears the
// acknowledgements and keeps the connection: no redial and no request
// sent twice while it is stopped (10 s, and at least three probes), and
// after SIGCONT the download completes on the first connection.
func TestStoppedServerIsNotDead(t *testing.T) {
	runDeadPath(t, func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error) {
		<-at
		before := c.Stats().Transport.Probes
		if err := syscall.Kill(cfg.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		cont := func() {
			if stopped.IsZero() {
				return
			}
			if err := syscall.Kill(cfg.PID, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
			t.Logf("server stopped for %v", time.Since(stopped).Round(time.Millisecond))
			stopped = time.Time{}
		}
		defer cont()
		// Wait, while it is stopped, 10 s and for three probes of the path
		// watch, each acknowledged by the server's kernel.
		end := time.Now().Add(deadPathBound / 2)
		for (c.Stats().Transport.Probes < before+3 || time.Since(stopped) < stoppedFor) && time.Now().Before(end) {
			time.Sleep(50 * time.Millisecond)
		}
		all := c.Stats()
		st := all.Transport
		cont()
		if st.Probes < before+3 {
			t.Fatalf("%d probes while the server was stopped, want at least 3", st.Probes-before)
		}
		if all.RPC.Retransmits != 0 {
			t.Errorf("%d requests sent again while the server was stopped, want 0", all.RPC.Retransmits)
		}
		if st.Connects != 1 || st.Disconnects != [policy.NumCauses]uint64{} {
			t.Errorf("while the server was stopped: %d connections, disconnects by cause %v; want the first connection kept",
				st.Connects, st.Disconnects)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats().Transport; st.Connects != 1 {
			t.Errorf("%d connections after the server resumed, want 1", st.Connects)
		}
	})
}

// TestStalledDiskIsNotDead: an upload with the default Config to a
// Ganesha whose export's file system is frozen (fsfreeze) for 10 s after
// 16 MiB: its WRITEs and COMMITs wait for the disk, while its kernel
// acknowledges every segment and the server still answers. The connection
// is kept, no request is sent twice, and after the thaw the upload
// completes with the right bytes on the server's disk.
func TestStalledDiskIsNotDead(t *testing.T) {
	runDeadPathOf(t, true, 0, func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error) {
		<-at
		before := c.Stats()
		fsfreeze(t, "-f", cfg.Export)
		frozen := time.Now()
		thaw := func() {
			if frozen.IsZero() {
				return
			}
			fsfreeze(t, "-u", cfg.Export)
			t.Logf("disk frozen for %v", time.Since(frozen).Round(time.Millisecond))
			frozen = time.Time{}
		}
		defer thaw()
		written := func() uint64 { return c.Stats().Transport.BytesSent }
		sent := written()
		time.Sleep(frozenFor)
		all := c.Stats()
		stalled := written() - sent
		thaw()
		t.Logf("while frozen: %d bytes sent, %d probes of the path watch", stalled, all.Transport.Probes-before.Transport.Probes)
		if stalled > deadPathSize-deadPathFault {
			t.Errorf("the upload sent %d bytes while the disk was frozen: it did not stall", stalled)
		}
		if n := all.RPC.Retransmits - before.RPC.Retransmits; n != 0 {
			t.Errorf("%d requests sent again while the disk was frozen, want 0", n)
		}
		if st := all.Transport; st.Connects != 1 || st.Disconnects != [policy.NumCauses]uint64{} {
			t.Errorf("while the disk was frozen: %d connections, disconnects by cause %v; want the first connection kept",
				st.Connects, st.Disconnects)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats().Transport; st.Connects != 1 {
			t.Errorf("%d connections after the thaw, want 1", st.Connects)
		}
	})
}

// fsfreeze runs fsfreeze(8) with op (-f freezes, -u thaws) on the file
// system mounted at dir.
func fsfreeze(t *testing.T, op, dir string) {
	t.Helper()
	if out, err := exec.Command("fsfreeze", op, dir).CombinedOutput(); err != nil {
		t.Errorf("fsfreeze %s %s: %v\n%s", op, dir, err, out)
	}
}

// loopDisk makes an ext4 file system of size bytes in a sparse file of
// t's, mounts it (a loop device) on a directory of t's and returns that
// directory; cleanup thaws it, in case a test froze it, and unmounts it
// after everything registered later (a server exporting it) has stopped.
func loopDisk(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"mkfs.ext4", "-q", "-F", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("fsfreeze", "-u", mnt).Run() // not frozen: an error, and nothing to do
		var out []byte
		var err error
		for range 50 { // 5 s for a server's last files to close
			if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("umount %s: %v\n%s", mnt, err, out)
	})
	return mnt
}

// runDeadPath builds a client and a server namespace (both directions
// shaped to shapeRate), starts a Ganesha with a file of deadPathSize bytes, and
// runs child in the client namespace: there it dials with the default
// Config, starts downloading the file (io.Copy, so up to Config.Window
// READs in flight), and calls child with the client, a channel closed
// once deadPathFault bytes have arrived and one that yields the
// download's result when it ends (an error if its SHA-256 is wrong).
func runDeadPath(t *testing.T, child func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error)) {
	runDeadPathOf(t, false, 0, child)
}

// runDeadPathWith is runDeadPath with the child's Config.Connections set
// to connections.
func runDeadPathWith(t *testing.T, connections int, child func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error)) {
	runDeadPathOf(t, false, connections, child)
}

// runDeadPathOf is runDeadPathWith, or with upload the same for an upload
// of deadPathSize bytes to a new file on an export that is an ext4 file
// system of its own (loopDisk), which the child may freeze; the parent
// checks the file's SHA-256 on the server's disk after the child passed.
func runDeadPathOf(t *testing.T, upload bool, connections int, child func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error)) {
	if env := os.Getenv(deadPathEnv); env != "" {
		var cfg deadPathConfig
		if err := json.Unmarshal([]byte(env), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Test == t.Name() {
			runDeadPathChild(t, cfg, child)
		}
		return
	}
	var cli, srv *netlab.NS
	var s *ganesha.Server
	var export string
	data := newDataReader(1, deadPathSize, deadPathSize+1, nil)
	if upload {
		cli, _, s, export = pairOn(t, ganesha.Config{Lease: 15 * time.Second}, loopDisk(t, 4*deadPathSize))
		if _, err := io.Copy(io.Discard, data); err != nil {
			t.Fatal(err)
		}
	} else {
		cli, srv, s, export = pair(t, ganesha.Config{Lease: 15 * time.Second})
		srv.Shape("to-client", shapeRate) // the download's direction
		f, err := os.Create(filepath.Join(export, "big"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := hex.EncodeToString(data.sum.Sum(nil))
	cfg, err := json.Marshal(deadPathConfig{Test: t.Name(), Addr: "10.77.1.1:2049", File: "/export/big",
		SHA256: want, PID: s.PID(), Upload: upload, Export: export, Connections: connections})
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "child.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := cli.Command(self, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), deadPathEnv+"="+string(cfg))
	cmd.Stdout, cmd.Stderr = out, out
	p, err := cli.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	select {
	case <-p.Done():
		werr = p.Wait()
	case <-time.After(deadPathBound + time.Minute):
		werr = p.Stop(time.Second)
		t.Errorf("client in %s did not exit", cli)
	}
	log, _ := os.ReadFile(out.Name())
	if werr != nil || !strings.Contains(string(log), "--- PASS: "+t.Name()) {
		t.Fatalf("client in %s: %v\n%s", cli, werr, log)
	}
	t.Logf("client:\n%s", log)
	if upload {
		f, err := os.Open(filepath.Join(export, "big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sum := sha256.New()
		n, err := io.Copy(sum, f)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(sum.Sum(nil)); n != deadPathSize || got != want {
			t.Errorf("on the server's disk: %d bytes with SHA-256 %s, want %d bytes with %s", n, got, deadPathSize, want)
		}
	}
}

// runDeadPathChild is the client half of runDeadPath.
func runDeadPathChild(t *testing.T, cfg deadPathConfig, child func(t *testing.T, cfg deadPathConfig, c *nfs4.Client, at <-chan struct{}, wait func() error)) {
	ctx, cancel := context.WithTimeout(context.Background(), deadPathBound)
	defer cancel()
	// The client's connection, session and recovery events go to the
	// child's output, which the parent shows when the child fails.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := nfs4.Dial(ctx, cfg.Addr, nfs4.Config{Connections: cfg.Connections, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	at := make(chan struct{})
	done := make(chan error, 1)
	if cfg.Upload {
		f, err := c.Create(ctx, cfg.File)
		if err != nil {
			t.Fatal(err)
		}
		data := newDataReader(1, deadPathSize, deadPathFault, func() { close(at) })
		go func() {
			_, err := io.Copy(f, data)
			if cerr := f.Close(); err == nil {
				err = cerr // the last WRITEs' COMMIT
			}
			done <- err
		}()
	} else {
		f, err := c.Open(ctx, cfg.File)
		if err != nil {
			t.Fatal(err)
		}
		w := &faultPoint{sum: sha256.New(), at: deadPathFault, reached: at}
		go func() {
			n, err := io.Copy(w, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if sum := hex.EncodeToString(w.sum.Sum(nil)); err == nil && (n != deadPathSize || sum != cfg.SHA256) {
				err = fmt.Errorf("downloaded %d bytes with SHA-256 %s, want %d bytes with %s", n, sum, deadPathSize, cfg.SHA256)
			}
			done <- err
		}()
	}
	child(t, cfg, c, at, func() error {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			// What the client was doing when it stalled.
			fmt.Fprintf(os.Stderr, "stats at the stall: %+v\n", c.Stats())
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			return fmt.Errorf("copy not done within %v", deadPathBound)
		}
	})
}

// timeUntil polls cond every 5 ms, from now on, in a goroutine. The
// function it returns stops the polling and reports how long after from
// cond first held, waiting at most a second more for it; false if it did
// not hold by then. Call it once.
func timeUntil(from time.Time, cond func() bool) func() (time.Duration, bool) {
	held := make(chan time.Duration, 1)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
		held <- time.Since(from)
	}()
	return func() (time.Duration, bool) {
		select {
		case d := <-held:
			close(stop)
			return d, true
		case <-time.After(time.Second):
			close(stop)
			return 0, false
		}
	}
}

// faultPoint hashes what is written to it and closes reached once at
// bytes have been.
type faultPoint struct {
	sum     hash.Hash
	n, at   int64
	reached chan struct{}
}

func (w *faultPoint) Write(p []byte) (int, error) {
	w.sum.Write(p)
	if w.n < w.at && w.n+int64(len(p)) >= w.at {
		close(w.reached)
	}
	w.n += int64(len(p))
	return len(p), nil
}

// silenceFlow drops, in the namespace the process runs in, every TCP
// packet to or from local port port, in silence: the connection on it is
// dead, new connections from other ports are not.
func silenceFlow(t *testing.T, port int) {
	t.Helper()
	p := strconv.Itoa(port)
	rules := `table inet lab_flow {
	chain in { type filter hook input priority -300; policy accept; tcp dport ` + p + ` drop; }
	chain out { type filter hook output priority -300; policy accept; tcp sport ` + p + ` drop; }
}`
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}
