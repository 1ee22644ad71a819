package lab

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/netlab"
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

// A cellSpec describes one run of the client against one fault.
type cellSpec struct {
	Scenario string
	Policy   string
	Client   *netlab.NS // where the client runs
	Addr     string     // server address as the client sees it
	// ExportDir is the exported directory on this host (shared by the
	// servers of a scenario), Pseudo its path in the NFS namespace.
	ExportDir, Pseudo string
	MinPort, MaxPort  int
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
	// Seed of the copied data; default derived from the names.
	Seed uint64
	// Dump lists namespaces whose state a failure report shows.
	Dump []*netlab.NS
}

// runCell runs the client in spec.Client, injects the faults, checks the
// outcome strictly, and records the cell.
func runCell(t *testing.T, spec cellSpec) Cell {
	t.Helper()
	if spec.Bound == 0 {
		spec.Bound = labBound
	}
	if spec.Seed == 0 {
		h := sha256.Sum256([]byte(spec.Scenario + "/" + spec.Policy))
		for _, b := range h[:8] {
			spec.Seed = spec.Seed<<8 | uint64(b)
		}
	}
	name := strings.ToLower(spec.Policy)
	probeDir := "probes-" + name
	if err := os.Mkdir(filepath.Join(spec.ExportDir, probeDir), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := clientConfig{
		Addr: spec.Addr, Policy: spec.Policy, MinPort: spec.MinPort, MaxPort: spec.MaxPort,
		File: path.Join(spec.Pseudo, "copy-"+name), ProbeDir: path.Join(spec.Pseudo, probeDir),
		Size: copySize, Signal: faultAt, Seed: spec.Seed, Bound: spec.Bound, Faults: len(spec.Faults),
		Setup: setupBound,
	}
	cell := Cell{Scenario: spec.Scenario, Policy: spec.Policy, Reconnect: -1, FirstCall: -1, CopyDone: -1}

	res, logPath, err := runChild(t, spec, cfg)
	if err != nil {
		cell.Outcome, cell.Note = Failed, err.Error()
		record(cell)
		t.Fatalf("%v\nclient log %s:\n%s%s", err, logPath, tailFile(logPath, 30), dumps(spec.Dump))
	}
	cell.Ports, cell.Dials, cell.Reconnects, cell.Duplicates = res.Ports, res.Dials, res.Reconnects, res.Duplicates
	if n := len(res.FirstCall); n > 0 {
		cell.FirstCall = res.FirstCall[n-1]
	}
	if n := len(res.Reconnect); n > 0 {
		cell.Reconnect = res.Reconnect[n-1]
	}
	cell.CopyDone = res.CopyDone

	var problems []string
	if res.Recovered {
		cell.Outcome = Recovered
		sum, err := fileSum(filepath.Join(spec.ExportDir, "copy-"+name))
		if err != nil {
			problems = append(problems, err.Error())
		}
		cell.SHA256 = sum
		want := expectedSum(spec.Seed, copySize)
		cell.DataOK = sum == want && res.SHA256 == want && res.Copied == copySize
		if !cell.DataOK {
			problems = append(problems, fmt.Sprintf("data: server has sha256 %s, sent %s (%d bytes), want %s", sum, res.SHA256, res.Copied, want))
		}
		if missing := missingProbes(filepath.Join(spec.ExportDir, probeDir), res.Probes); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("acknowledged MKDIRs missing on the server: %v", missing))
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
	t.Logf("%s × %s: %s, reconnect %v, first call %v, copy done %v, ports %v, dials %d, reconnects %d, duplicates %d %s",
		spec.Scenario, spec.Policy, cell.Outcome, cell.Reconnect, cell.FirstCall, cell.CopyDone, cell.Ports, cell.Dials,
		cell.Reconnects, cell.Duplicates, cell.Note)
	if cell.Outcome == Stuck && spec.StuckOK {
		return cell // the expected result, not a failure
	}
	if cell.Outcome != Recovered {
		t.Errorf("%s × %s: %s: %s\nclient log %s:\n%s%s", spec.Scenario, spec.Policy, cell.Outcome, cell.Note,
			logPath, tailFile(logPath, 30), dumps(spec.Dump))
	}
	return cell
}

// runChild starts the client in its namespace, injects the faults when
// it is ready for them, and returns its result and the path of its log.
func runChild(t *testing.T, spec cellSpec, cfg clientConfig) (clientResult, string, error) {
	var res clientResult
	self, err := os.Executable()
	if err != nil {
		return res, "", err
	}
	env, err := json.Marshal(cfg)
	if err != nil {
		return res, "", err
	}
	logPath := filepath.Join(t.TempDir(), "client.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, logPath, err
	}
	defer logFile.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return res, logPath, err
	}
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		return res, logPath, err
	}
	defer outR.Close()

	cmd := spec.Client.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+string(env))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, logFile
	proc, err := spec.Client.Start(cmd)
	inR.Close()
	outW.Close()
	if err != nil {
		return res, logPath, err
	}
	defer proc.Stop()

	// The reader ends when the child's stdout closes: when it exits or
	// is killed.
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	wait := func(prefix string, d time.Duration) (string, error) {
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					return "", fmt.Errorf("client exited (%v) while the lab waited for %q", proc.Err(), prefix)
				}
				if rest, ok := strings.CutPrefix(line, prefix); ok {
					return rest, nil
				}
				if rest, ok := strings.CutPrefix(line, "lab: result "); ok {
					return "", fmt.Errorf("client ended while the lab waited for %q: %s", prefix, rest)
				}
			case <-timer.C:
				return "", fmt.Errorf("no %q from the client within %v", prefix, d)
			}
		}
	}

	if _, err := wait("lab: ready", setupBound); err != nil {
		return res, logPath, err
	}
	if _, err := wait("lab: fault-point", setupBound); err != nil {
		return res, logPath, err
	}
	for k, inject := range spec.Faults {
		at := inject()
		if _, err := fmt.Fprintf(inW, "fault %d %d\n", k, at.UnixNano()); err != nil {
			return res, logPath, err
		}
		if k < len(spec.Faults)-1 {
			if _, err := wait(fmt.Sprintf("lab: recovered %d", k), spec.Bound); err != nil {
				return res, logPath, fmt.Errorf("fault %d of %d: %w", k+1, len(spec.Faults), err)
			}
		}
	}
	out, err := wait("lab: result ", spec.Bound+15*time.Second)
	if err != nil {
		return res, logPath, err
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return res, logPath, fmt.Errorf("client result %q: %w", out, err)
	}
	return res, logPath, nil
}

// fileSum returns the hex SHA-256 of the file at p.
func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// missingProbes returns the names the client created that dir lacks.
func missingProbes(dir string, names []string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{err.Error()}
	}
	have := make([]string, len(entries))
	for i, e := range entries {
		have[i] = e.Name()
	}
	var missing []string
	for _, n := range names {
		if !slices.Contains(have, n) {
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
