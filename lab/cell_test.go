package lab

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/filehash"
	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/internal/proc"
)

// Sizes and bounds of every cell. A dead path is noticed in about 3 s
// (labSocket); the bound gives the client several times that.
const (
	copySize   = 64 << 20
	faultAt    = 16 << 20 // the fault lands after this much of the copy
	shapeRate  = "100mbit"
	labBound   = 20 * time.Second
	setupBound = 60 * time.Second
)

// policies are the stock policies, in table order.
var policies = policyOrder

// results collects the cells of this run, for writeResults.
var results struct {
	sync.Mutex
	cells []Cell
}

func record(c Cell) {
	results.Lock()
	results.cells = append(results.cells, c)
	results.Unlock()
}

// A cellSpec describes one run of the client (or clients) against a
// fault.
type cellSpec struct {
	Scenario string
	Policy   string
	Client   *netlab.NS // where the client runs
	Addr     string     // server address as the client sees it
	// ExportDir is the exported directory on this host (shared by the
	// servers of a scenario), Pseudo its path in the NFS namespace.
	ExportDir, Pseudo string
	MinPort, MaxPort  int
	// More are further clients that run at the same time and see the
	// same faults; each is recorded as a cell of its own, the scenario's
	// name followed by "/" and its label (the first client's label is
	// Label).
	Label string
	More  []extraClient
	// Faults inject the faults, in order; each returns when its fault
	// has taken effect, and the time it did. After each but the last the
	// cell waits until a call has succeeded again.
	Faults []func() time.Time
	// Bound is how long after the last fault the client may take;
	// default labBound.
	Bound time.Duration
	// StuckOK: this policy may legitimately stay stuck here (the
	// SameReservedPort cells behind stale middlebox state).
	StuckOK bool
	// ExactlyOnce: the server instance and its session survive the
	// fault, so no call may run twice. Across server instances a call
	// cut off by the fault may have run on the old one; that is reported,
	// not failed.
	ExactlyOnce bool
	// Dump lists namespaces whose state a failure report shows.
	Dump []*netlab.NS
	// Defaults runs the client with the library's default socket
	// options, timeouts and backoff instead of the lab's.
	Defaults bool
	// V40 runs the client over NFSv4.0 (the servers must serve it).
	V40 bool
	// Connections is the client's Config.Connections (0: the default, 1).
	Connections int
	// Probers and ProbeEvery: how many MKDIR probe loops the client runs
	// and how often each probes (0: one, every 200 ms).
	Probers    int
	ProbeEvery time.Duration
	// HoldCopy stops the copy at the fault point until the fault is
	// announced: only probes are in flight during the fault.
	HoldCopy bool
	// Idle: the client is idle when the fault lands and then makes a
	// call (clientConfig.Idle).
	Idle bool
	// Size is how much the client copies; default copySize. The fault
	// lands after faultAt bytes.
	Size int64
	// FaultTakes is how long injecting the faults takes (an outage the
	// fault function waits out); the client's bounds before the fault is
	// announced grow by as much.
	FaultTakes time.Duration
	// Reclaim: the server restarts with the client's state to reclaim in
	// its grace period; the cell fails unless the client reclaimed it
	// (no open made again for want of reclaim).
	Reclaim bool
	// ReportOnly: a cell that did not recover is recorded, not failed
	// (what the lab shows rather than asserts). Wrong data or a missing
	// acknowledged probe still fail it.
	ReportOnly bool
}

// An extraClient is a further client of a cell.
type extraClient struct {
	Label  string
	Client *netlab.NS
	Addr   string
}

// clientRun is one client of a cell, while it runs.
type clientRun struct {
	label, name string // name: the file and probe directory suffix
	scenario    string
	seed        uint64
	probeDir    string
	child       *childProc
	res         *clientResult // once reported
	err         error         // why it has no result
}

// runCell runs the clients of spec, injects the faults, checks each
// client's outcome strictly, and records a cell for each. It returns the
// cell of the first client.
func runCell(t *testing.T, spec cellSpec) Cell {
	t.Helper()
	if spec.Bound == 0 {
		spec.Bound = labBound
	}
	if spec.Size == 0 {
		spec.Size = copySize
	}
	clients := append([]extraClient{{spec.Label, spec.Client, spec.Addr}}, spec.More...)
	runs := make([]*clientRun, len(clients))
	for i, c := range clients {
		r := &clientRun{label: c.Label, scenario: spec.Scenario, name: strings.ToLower(spec.Policy)}
		if c.Label != "" {
			r.scenario += "/" + c.Label
			r.name += "-" + c.Label
		}
		h := sha256.Sum256([]byte(r.scenario + "/" + spec.Policy))
		for _, b := range h[:8] {
			r.seed = r.seed<<8 | uint64(b)
		}
		r.probeDir = "probes-" + r.name
		if err := os.Mkdir(filepath.Join(spec.ExportDir, r.probeDir), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := clientConfig{
			Addr: c.Addr, Policy: spec.Policy, MinPort: spec.MinPort, MaxPort: spec.MaxPort,
			File: path.Join(spec.Pseudo, "copy-"+r.name), ProbeDir: path.Join(spec.Pseudo, r.probeDir),
			Size: spec.Size, Signal: faultAt, Seed: r.seed, Bound: spec.Bound, Faults: len(spec.Faults),
			Setup: setupBound + spec.FaultTakes, Defaults: spec.Defaults,
			V40: spec.V40, Connections: spec.Connections, Probers: spec.Probers, ProbeEvery: spec.ProbeEvery, HoldCopy: spec.HoldCopy,
			Idle: spec.Idle,
		}
		child, err := startChild(t, c.Client, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer child.proc.Stop(0)
		r.child = child
		runs[i] = r
	}
	drive(spec, runs)

	var first Cell
	for i, r := range runs {
		cell := check(t, spec, r)
		if i == 0 {
			first = cell
		}
	}
	return first
}

// drive waits until every client is ready for the fault, injects the
// faults, and collects the results. A client that fails on the way has
// its err set; the others go on.
func drive(spec cellSpec, runs []*clientRun) {
	active := func() []*clientRun {
		var a []*clientRun
		for _, r := range runs {
			if r.res == nil && r.err == nil {
				a = append(a, r)
			}
		}
		return a
	}
	// await waits for a line from each active client; a client that ends
	// instead has its result or error recorded.
	await := func(prefix string, d time.Duration) {
		for _, r := range active() {
			res, err := r.child.wait(prefix, d)
			if res != nil {
				r.res = res
			} else if err != nil {
				r.err = err
			}
		}
	}
	await("lab: ready", setupBound)
	await("lab: fault-point", setupBound)
	for k, inject := range spec.Faults {
		if len(active()) == 0 {
			return
		}
		at := inject()
		for _, r := range active() {
			if _, err := fmt.Fprintf(r.child.in, "fault %d %d\n", k, at.UnixNano()); err != nil {
				r.err = err
			}
		}
		if k < len(spec.Faults)-1 {
			await(fmt.Sprintf("lab: recovered %d", k), spec.Bound)
		}
	}
	await("lab: result ", spec.Bound+15*time.Second)
}

// check judges one client's run, records its cell, and fails the test
// unless the outcome is correct.
func check(t *testing.T, spec cellSpec, r *clientRun) Cell {
	t.Helper()
	cell := Cell{Scenario: r.scenario, Policy: spec.Policy, Reconnect: -1, FirstCall: -1, CopyDone: -1}
	logs := fmt.Sprintf("client log %s:\n%s%s", r.child.logPath, tailFile(r.child.logPath, 30), dumps(spec.Dump))
	if r.res == nil {
		cell.Outcome, cell.Note = Failed, fmt.Sprint(r.err)
		record(cell)
		t.Errorf("%s × %s: %v\n%s", r.scenario, spec.Policy, r.err, logs)
		return cell
	}
	res := r.res
	cell.Ports, cell.Dials, cell.Reconnects, cell.Duplicates = res.Ports, res.Dials, res.Reconnects, res.Duplicates
	if n := len(res.FirstCall); n > 0 {
		cell.FirstCall = res.FirstCall[n-1]
	}
	if n := len(res.Reconnect); n > 0 {
		cell.Reconnect = res.Reconnect[n-1]
	}
	cell.CopyDone = res.CopyDone

	var problems []string
	corrupt := false // wrong data or a lost probe: never only reported
	if res.Recovered {
		cell.Outcome = Recovered
		sum, err := filehash.SHA256(filepath.Join(spec.ExportDir, "copy-"+r.name))
		if err != nil {
			problems = append(problems, err.Error())
		}
		cell.SHA256 = sum
		want := expectedSum(r.seed, spec.Size)
		cell.DataOK = sum == want && res.SHA256 == want && res.Copied == spec.Size
		if !cell.DataOK {
			corrupt = true
			problems = append(problems, fmt.Sprintf("data: server has sha256 %s, sent %s (%d bytes), want %s", sum, res.SHA256, res.Copied, want))
		}
		if missing := missingProbes(filepath.Join(spec.ExportDir, r.probeDir), res.Probes); len(missing) > 0 {
			corrupt = true
			problems = append(problems, fmt.Sprintf("acknowledged MKDIRs missing on the server: %v", missing))
		}
		if spec.Reclaim && (res.Reclaims == 0 || res.Reopens > 0) {
			problems = append(problems, fmt.Sprintf("state not reclaimed in the grace period: %d opens reclaimed, %d made again", res.Reclaims, res.Reopens))
		}
		if spec.ExactlyOnce && res.Duplicates > 0 {
			problems = append(problems, fmt.Sprintf("%d probe MKDIRs ran twice (NFS4ERR_EXIST) on a surviving session", res.Duplicates))
		}
		if len(problems) > 0 {
			cell.Outcome = Failed
		}
	} else {
		cell.Outcome = Failed
		if res.Stuck {
			cell.Outcome = Stuck
		}
		problems = append(problems, res.Err)
		if len(res.ProbeErrs) > 0 {
			problems = append(problems, "probe errors: "+strings.Join(res.ProbeErrs, "; "))
		}
	}
	cell.Note = strings.Join(problems, "; ")
	record(cell)
	t.Logf("%s × %s: %s, reconnect %v, first call %v, copy done %v, ports %v, dials %d (spares %d, used %d), reconnects %d, probes in flight at the fault %d, calls re-sent %d, duplicates %d, opens reclaimed %d, made again %d %s",
		r.scenario, spec.Policy, cell.Outcome, cell.Reconnect, cell.FirstCall, cell.CopyDone, cell.Ports, cell.Dials,
		res.Spares, res.SparesUsed, cell.Reconnects, res.InFlight, res.Resent, cell.Duplicates, res.Reclaims, res.Reopens, cell.Note)
	if cell.Outcome == Stuck && spec.StuckOK {
		return cell // the expected result, not a failure
	}
	if spec.ReportOnly && !corrupt {
		return cell // shown in the table, not asserted
	}
	if cell.Outcome != Recovered {
		t.Errorf("%s × %s: %s: %s\n%s", r.scenario, spec.Policy, cell.Outcome, cell.Note, logs)
	}
	return cell
}

// A childProc is a client process and the lab's ends of its pipes.
type childProc struct {
	proc    *proc.Process
	in      *os.File    // its stdin
	lines   chan string // its stdout, line by line; closed when it ends
	logPath string      // its stderr
}

// startChild starts the test binary in ns as a client with cfg. The
// process and its pipes are released when the test ends.
func startChild(t *testing.T, ns *netlab.NS, cfg clientConfig) (*childProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(t.TempDir(), "client.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return nil, err
	}
	defer outW.Close()

	cmd := ns.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+string(env))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, logFile
	p, err := ns.Start(cmd)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	c := &childProc{proc: p, in: inW, lines: make(chan string, 16), logPath: logPath}
	// The reader ends when the child's stdout closes: when it exits or
	// is killed, at the latest when the test ends.
	go func() {
		defer close(c.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		p.Stop(0)
		inW.Close()
		for range c.lines { // drain, so that the reader ends
		}
	})
	return c, nil
}

// wait waits up to d for a line starting with prefix. If the client
// reports its result instead, wait returns it; if it ends or stays
// silent, an error.
func (c *childProc) wait(prefix string, d time.Duration) (*clientResult, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return nil, fmt.Errorf("client exited (%v) while the lab waited for %q", c.proc.Wait(), prefix)
			}
			if rest, ok := strings.CutPrefix(line, "lab: result "); ok {
				var res clientResult
				if err := json.Unmarshal([]byte(rest), &res); err != nil {
					return nil, fmt.Errorf("client result %q: %w", rest, err)
				}
				return &res, nil
			}
			if strings.HasPrefix(line, prefix) {
				return nil, nil
			}
		case <-timer.C:
			return nil, fmt.Errorf("no %q from the client within %v", prefix, d)
		}
	}
}

// missingProbes returns the names the client created that dir lacks.
func missingProbes(dir string, names []string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{err.Error()}
	}
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Name()] = true
	}
	var missing []string
	for _, n := range names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing
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

func dumps(nss []*netlab.NS) string {
	var b strings.Builder
	for _, n := range nss {
		b.WriteString(n.Dump())
	}
	return b.String()
}
