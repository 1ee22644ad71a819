package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/filehash"
	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/internal/proc"
)

// Environment variables of a run.
const (
	// durationEnv (a Go duration: "30m") makes the soak run rounds of
	// faults until that much time has passed; unset, it runs one round.
	durationEnv = "SOAK_DURATION"
	// seedEnv (a decimal number) replays a run's schedule and choices.
	seedEnv = "SOAK_SEED"
	// resultsEnv names a directory; when set (make soak sets it), the
	// run writes its report there as soak-latest.md.
	resultsEnv = "GONFS_SOAK_RESULTS"
)

// Bounds and sizes of a run.
const (
	workers      = 4
	opBound      = 3 * time.Minute  // a call's context deadline
	stallBound   = 2 * time.Minute  // no operation finished for this long: stuck
	recoverBound = 60 * time.Second // after a fault is lifted, operations succeed again within this
	readyBound   = 60 * time.Second
	resultBound  = 4 * time.Minute // from "stop" to the child's result: its final read-back and Close
	// heapSlack is how much more heap than before the dial the client
	// process may hold after Close: the model's hashes, the runtime's
	// caches.
	heapSlack = 16 << 20
	// timeoutMargin is the go test timeout a long run needs beyond its
	// duration: the round in progress, the final checks, the report.
	timeoutMargin = 10 * time.Minute
)

// gaps are the pauses between faults, [min, max).
var (
	shortGaps = [2]time.Duration{500 * time.Millisecond, 1500 * time.Millisecond}
	longGaps  = [2]time.Duration{2 * time.Second, 10 * time.Second}
)

// TestSoak runs the workload on one client while faults of every kind hit
// it, then checks that nothing was lost, duplicated or leaked.
func TestSoak(t *testing.T) {
	duration := time.Duration(0)
	if s := os.Getenv(durationEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", durationEnv, s, err)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
		seed = v
	}
	t.Logf("soak: seed %d (%s=%d replays this run's fault schedule and workload choices)", seed, seedEnv, seed)

	// A long run killed by go test's timeout would end without its
	// report: ask for the room the last round and the checks need up
	// front. (One round fits in go test's default 10 minutes.)
	if dl, ok := t.Deadline(); ok && duration > 0 && time.Until(dl) < duration+timeoutMargin {
		t.Fatalf("%s=%v needs a test timeout of at least %v more than that (go test -timeout; make soak: SOAK_TIMEOUT)",
			durationEnv, duration, timeoutMargin)
	}
	rep := &report{Seed: seed, Duration: duration, Workers: workers, Start: time.Now(), LoadStart: loadavg()}
	n := build(t)
	c := startClient(t, n.cli, clientConfig{
		Addr: serviceAddr + ":2049", Root: "/export", Workers: workers, Seed: seed,
		OpBound: opBound, Stall: stallBound,
	})
	if err := c.waitReady(readyBound); err != nil {
		t.Fatalf("%v\nclient log:\n%s", err, tailFile(c.logPath, 40))
	}

	// The faults: rounds of every kind in a random order, with random
	// pauses, until the duration has passed (at least one round).
	rnd := rand.New(rand.NewPCG(seed, 0))
	gaps := shortGaps
	if duration > 0 {
		gaps = longGaps
	}
	end := rep.Start.Add(duration)
	for round := 0; round == 0 || time.Now().Before(end); round++ {
		kinds := append([]string(nil), faultKinds...)
		rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, kind := range kinds {
			time.Sleep(gaps[0] + time.Duration(rnd.Int64N(int64(gaps[1]-gaps[0])))) // the pause itself
			before := c.progress()
			f := n.inject(kind, rnd)
			after, ok := c.waitProgress(f.Lifted, recoverBound)
			f.Recovered = ok
			f.Recovery = after.end.Sub(f.Lifted)
			f.Reconnects = after.reconnects - before.reconnects
			f.SessionResets = after.sessionResets - before.sessionResets
			f.ClientIDResets = after.clientIDResets - before.clientIDResets
			rep.Faults = append(rep.Faults, f)
			t.Logf("soak: fault %d %s on server %d (%s): recovered %v in %v; reconnects %d, session resets %d, client ID resets %d",
				len(rep.Faults), f.Kind, f.Server, f.Detail, f.Recovered, f.Recovery.Round(time.Millisecond),
				f.Reconnects, f.SessionResets, f.ClientIDResets)
			if !ok {
				t.Errorf("fault %d (%s on server %d, %s): no operation succeeded within %v after it was lifted",
					len(rep.Faults), f.Kind, f.Server, f.Detail, recoverBound)
				break
			}
		}
		if t.Failed() {
			break
		}
	}

	res, err := c.finish(resultBound)
	rep.End = time.Now()
	rep.LoadEnd = loadavg()
	if err != nil {
		t.Fatalf("%v\nclient log:\n%s", err, tailFile(c.logPath, 60))
	}
	rep.Result = res
	rep.DiskFiles, rep.DiskProblems = checkDisk(n.export, res.Files)
	rep.check(t)
	text := rep.markdown()
	t.Logf("soak report:\n%s", text)
	if dir := os.Getenv(resultsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "soak-latest.md")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("soak: wrote %s", p)
	}
	if t.Failed() {
		t.Logf("client log %s:\n%s", c.logPath, tailFile(c.logPath, 60))
	}
}

// build makes the network and starts the servers.
func build(t *testing.T) *topo {
	l := netlab.New(t)
	n := &topo{t: t, export: t.TempDir()}
	n.cli, n.lb = l.NS("client"), l.NS("lb")
	n.srv = [2]*netlab.NS{l.NS("srv0"), l.NS("srv1")}
	l.Link(n.cli, clientAddr+"/24", n.lb, "10.77.1.1/24")
	l.Link(n.lb, "10.77.2.1/24", n.srv[0], backendAddr[0]+"/24")
	l.Link(n.lb, "10.77.3.1/24", n.srv[1], backendAddr[1]+"/24")
	n.cli.IP("route", "add", "10.77.9.0/24", "via", "10.77.1.1")
	n.srv[0].IP("route", "add", "default", "via", "10.77.2.1")
	n.srv[1].IP("route", "add", "default", "via", "10.77.3.1")
	n.lb.Sysctl("net.ipv4.ip_forward", "1")
	n.lb.Nft(lbRules(backendAddr[0]))
	for k := range workers {
		if err := os.Mkdir(filepath.Join(n.export, fmt.Sprintf("w%d", k)), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range n.srv {
		n.gan[i] = ganesha.Start(t, ganesha.Config{
			NetNS: s.Name, BindAddr: backendAddr[i], Port: 2049, ExportDir: n.export,
			Lease: lease, Grace: grace,
		})
	}
	return n
}

// checkDisk compares the exported directory with the client's model
// (path → sha256): it returns how many files it compared and what
// differs.
func checkDisk(export string, want map[string]string) (int, []string) {
	var problems []string
	seen := 0
	for k := range workers {
		dir := fmt.Sprintf("w%d", k)
		entries, err := os.ReadDir(filepath.Join(export, dir))
		if err != nil {
			return seen, append(problems, err.Error())
		}
		for _, e := range entries {
			name := dir + "/" + e.Name()
			sum, err := filehash.SHA256(filepath.Join(export, name))
			seen++
			w, ok := want[name]
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case !ok:
				problems = append(problems, fmt.Sprintf("%s is on the server but the client removed or never created it", name))
			case sum != w:
				problems = append(problems, fmt.Sprintf("%s on the server has sha256 %s, the client was told %s", name, sum, w))
			}
		}
	}
	for name := range want {
		if _, err := os.Stat(filepath.Join(export, name)); err != nil {
			problems = append(problems, fmt.Sprintf("%s acknowledged but not on the server: %v", name, err))
		}
	}
	return seen, problems
}

// A clientProc is the child process and the test's ends of its pipes.
type clientProc struct {
	proc    *proc.Process
	in      *os.File
	logPath string
	ready   chan struct{}      // closed at "soak: ready"
	result  chan *clientResult // the result, once
	ended   chan struct{}      // closed when its stdout closes
	mu      sync.Mutex
	last    progress      // guarded by mu
	changed chan struct{} // closed and replaced at each progress line; guarded by mu
	bad     []string      // unparsable lines; guarded by mu
}

// progress is one "soak: progress" line.
type progress struct {
	ops                                       int64
	clientIDResets, sessionResets, reconnects uint64
	// start and end of the latest-started operation that has finished.
	start, end time.Time
}

// startClient starts the test binary in ns as the soak's client. The
// process and its pipes are released when the test ends.
func startClient(t *testing.T, ns *netlab.NS, cfg clientConfig) *clientProc {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "client.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		t.Fatal(err)
	}
	defer outW.Close()
	cmd := ns.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+string(env))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, logFile
	p, err := ns.Start(cmd)
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatal(err)
	}
	c := &clientProc{proc: p, in: inW, logPath: logPath, ready: make(chan struct{}),
		result: make(chan *clientResult, 1), ended: make(chan struct{}), changed: make(chan struct{})}
	// The reader ends when the child's stdout closes: when it exits or is
	// killed, at the latest when the test ends.
	go c.read(outR)
	t.Cleanup(func() {
		p.Stop(0)
		inW.Close()
		<-c.ended
	})
	return c
}

func (c *clientProc) read(out *os.File) {
	defer close(c.ended)
	defer out.Close()
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 64<<20)
	readyOnce := sync.OnceFunc(func() { close(c.ready) })
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "soak: ready":
			readyOnce()
		case strings.HasPrefix(line, "soak: progress "):
			var p progress
			var start, end int64
			_, err := fmt.Sscanf(line, "soak: progress %d %d %d %d %d %d", &p.ops, &p.clientIDResets, &p.sessionResets, &p.reconnects, &start, &end)
			p.start, p.end = time.Unix(0, start), time.Unix(0, end)
			c.mu.Lock()
			if err != nil {
				c.bad = append(c.bad, line)
			} else {
				c.last = p
				close(c.changed)
				c.changed = make(chan struct{})
			}
			c.mu.Unlock()
		case strings.HasPrefix(line, "soak: result "):
			var res clientResult
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "soak: result ")), &res); err != nil {
				res = clientResult{Err: fmt.Sprintf("result line: %v", err)}
			}
			c.result <- &res
		}
	}
}

func (c *clientProc) waitReady(d time.Duration) error {
	select {
	case <-c.ready:
		return nil
	case <-c.ended:
		return fmt.Errorf("client exited (%v) before it was ready", c.proc.Wait())
	case <-time.After(d):
		return fmt.Errorf("client not ready within %v", d)
	}
}

func (c *clientProc) progress() progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// waitProgress waits up to d for an operation started after since to
// finish. It returns the progress then, or the latest and false.
func (c *clientProc) waitProgress(since time.Time, d time.Duration) (progress, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		p, changed := c.last, c.changed
		c.mu.Unlock()
		if p.start.After(since) {
			return p, true
		}
		select {
		case <-changed:
		case <-c.ended:
			return p, false
		case <-timer.C:
			return p, false
		}
	}
}

// finish tells the client to stop and waits up to d for its result.
func (c *clientProc) finish(d time.Duration) (*clientResult, error) {
	if _, err := fmt.Fprintln(c.in, "stop"); err != nil {
		return nil, fmt.Errorf("telling the client to stop: %w", err)
	}
	select {
	case res := <-c.result:
		return res, nil
	case <-c.ended:
		select {
		case res := <-c.result:
			return res, nil
		default:
		}
		return nil, fmt.Errorf("client exited (%v) without a result", c.proc.Wait())
	case <-time.After(d):
		return nil, fmt.Errorf("no result from the client within %v of stop", d)
	}
}

// tailFile returns the last n lines of the file at p.
func tailFile(p string, n int) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
