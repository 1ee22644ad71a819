// Command benchrun runs the macro comparison of package bench: it starts an
// NFS-Ganesha on loopback, creates the test files, boots the Linux kernel's
// NFS server for the same-server copy (once, stopped by PID at the end),
// runs every contender -runs times, interleaved, and writes REPORT.md,
// results.csv and throughput.png to -out.
//
//	go run ./bench/cmd/benchrun -runs 5 -out bench/results
//	go run ./bench/cmd/benchrun -only same-server-copy,sparse-down -size 64 -runs 1 -out /tmp/bench
//
// It needs root (Ganesha's VFS backend and knfsd's network namespace do),
// Debian's nfs-ganesha, nfs-ganesha-vfs, rpcbind and libnfs-utils (make
// deps installs them) and knfsd's guest (make knfsd-image builds it once;
// a first boot without it builds it, for about 10 minutes). A contender
// that cannot run here (nfscp not built yet, nfs-cp missing, knfsd not
// starting) is reported as not available rather than failing the run.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonfs/nfs/bench"
	"github.com/gonfs/nfs/internal/ganesha"
)

func main() {
	var (
		runs       = flag.Int("runs", 5, "interleaved rounds; the report shows their median and range")
		warmup     = flag.Int("warmup", 1, "rounds run first and not counted (caches, connections, CPU frequency)")
		sizeMiB    = flag.Int64("size", 1024, "test file size in MiB")
		out        = flag.String("out", "bench/results", "directory for REPORT.md, results.csv and throughput.png")
		microPath  = flag.String("micro", "", "go test -bench output to include in the report (optional)")
		labPath    = flag.String("lab", "lab/results/latest.csv", "the fault lab's CSV, included if it exists")
		opsTime    = flag.Duration("ops-time", time.Second, "how long each small-operation measurement runs")
		goroutines = flag.String("goroutines", "1,8,64", "goroutine counts for the small operations")
		conditions = flag.String("conditions", "", "the load on the machine during the run, in words, for the report")
		runTimeout = flag.Duration("run-timeout", 10*time.Minute, "bound on one contender's run")
		opsOnly    = flag.Bool("ops-only", false, "run the small operations alone, no copies (use a small -size); the same as -only ops")
		only       = flag.String("only", "", "run only these, comma-separated: the workloads "+strings.Join(workloadNames(), ", ")+", and ops (the small operations); default all. knfsd boots only for same-server-copy")
		profile    = flag.String("cpuprofile", "", "directory for a CPU profile of each counted run of the library in process (gonfs), per workload and round")
	)
	flag.Parse()
	gs, err := parseInts(*goroutines)
	sel := *only
	if *opsOnly {
		sel = "ops"
	}
	var selected map[string]bool
	if err == nil {
		selected, err = parseOnly(sel)
	}
	if err != nil || *runs < 1 || *warmup < 0 || *sizeMiB < 1 {
		fmt.Fprintln(os.Stderr, "benchrun: bad flags:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config{
		runs: *runs, warmup: *warmup, size: *sizeMiB << 20, out: *out, micro: *microPath, lab: *labPath,
		opsTime: *opsTime, goroutines: gs, conditions: *conditions, runTimeout: *runTimeout, selected: selected,
		profile: *profile,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

type config struct {
	runs       int
	warmup     int
	size       int64
	out        string
	micro, lab string
	opsTime    time.Duration
	goroutines []int
	conditions string
	runTimeout time.Duration
	selected   map[string]bool // the workloads to run, "ops" for the small operations; nil for all
	profile    string          // directory for CPU profiles of the library's runs; "" for none
}

// selects reports whether the workload (or "ops") was selected.
func (c config) selects(workload string) bool { return c.selected == nil || c.selected[workload] }

// workloadNames lists the throughput workloads by name.
func workloadNames() []string {
	var names []string
	for _, w := range bench.Workloads {
		names = append(names, string(w))
	}
	return names
}

// parseOnly parses -only: nil (everything) for "".
func parseOnly(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	known := append(workloadNames(), "ops")
	m := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("-only: %q is none of %s", f, strings.Join(known, ", "))
		}
		m[f] = true
	}
	return m, nil
}

func run(ctx context.Context, cfg config) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	p := ganesha.NewProgram("bench", os.Stderr)
	defer p.Close()
	machine := bench.DescribeMachine(ctx)
	logf("starting Ganesha and writing the %d MiB test file", cfg.size>>20)
	env := bench.Setup(p, cfg.size)

	rep := &bench.Report{Runs: cfg.runs, Warmup: cfg.warmup, Size: cfg.size, SparseData: env.SparseData, Conditions: cfg.conditions,
		Notes: map[string]string{}, LabPath: cfg.lab, Chart: "throughput.png"}
	var (
		contenders []bench.Contender
		nfscpErr   error // why nfscp could not be built
	)
	for _, c := range bench.Contenders() {
		if cfg.selects(string(c.Workload)) {
			contenders = append(contenders, c)
		}
	}
	if len(contenders) > 0 {
		bin, err := bench.BuildNfscp(ctx, p.TempDir())
		if err != nil {
			nfscpErr = err
		} else {
			env.Tools["nfscp"] = bin
		}
	}
	if cfg.selects(string(bench.SameServerCopy)) {
		logf("starting knfsd (the Linux kernel's NFS server in a user-mode Linux guest) and writing the test file into it")
		if err := env.StartKnfsd(ctx, logf); err != nil {
			logf("the same-server copy is not available: %v", err)
		} else {
			// Stopped by PID at the end, on an error and on an
			// interrupt alike: Close runs the cleanups, and so does a
			// fatal error of the Program.
			p.Cleanup(func() {
				if err := env.Knfsd.Stop(); err != nil {
					logf("stopping knfsd: %v", err)
				}
			})
			rep.CopyServer = env.CopyServer
			logf("knfsd at %s, booted in %v", env.Knfsd.Addr(), env.Knfsd.BootTime().Round(time.Millisecond))
		}
	}
	available := contenders[:0]
	for _, c := range contenders {
		rep.Notes[string(c.Workload)+" "+c.Name] = c.Note
		if c.Available != nil {
			if err := c.Available(env); err != nil {
				if nfscpErr != nil && strings.HasPrefix(c.Name, bench.NfscpName) {
					err = nfscpErr
				}
				rep.Unavailable = append(rep.Unavailable, bench.Unavailable{Workload: string(c.Workload), Contender: c.Name, Reason: err.Error()})
				continue
			}
		}
		available = append(available, c)
	}
	contenders = available
	var ops []bench.OpsContender
	if cfg.selects("ops") {
		ops = bench.OpsContenders()
	}
	for _, o := range ops {
		rep.Notes[o.Op+" "+o.Name] = o.Note
	}

	var thr, small []bench.Sample
	for round := 1 - cfg.warmup; round <= cfg.runs; round++ {
		for _, c := range bench.RoundOrder(contenders, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			stopProfile := startProfile(cfg.profile, c, round)
			s := bench.Measure(ctx, env, c, round, cfg.runTimeout)
			stopProfile()
			logf("round %d/%d %-16s %-24s %s", round, cfg.runs, c.Workload, c.Name, show(s))
			if round > 0 {
				thr = append(thr, s)
			}
		}
		for _, o := range ops {
			for _, g := range cfg.goroutines {
				if err := ctx.Err(); err != nil {
					return err
				}
				s := runOps(ctx, env, o, g, round, cfg.opsTime)
				logf("round %d/%d %-16s %-24s %s", round, cfg.runs, s.Workload, o.Name, show(s))
				if round > 0 {
					small = append(small, s)
				}
			}
		}
	}
	machine.Finish()
	rep.Machine = machine
	// Tables list the contenders in line-up order, whatever order the
	// rounds ran them in.
	pos := map[string]int{}
	for i, c := range contenders {
		pos[string(c.Workload)+"\x00"+c.Name] = i
	}
	slices.SortStableFunc(thr, func(a, b bench.Sample) int {
		return pos[a.Workload+"\x00"+a.Contender] - pos[b.Workload+"\x00"+b.Contender]
	})
	rep.Throughput = bench.Summarize(thr, env.Size)
	rep.Ops = bench.Summarize(small, 0)
	if cfg.micro != "" {
		f, err := os.Open(cfg.micro)
		if err != nil {
			return err
		}
		rep.Micro, err = bench.ParseMicro(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	rep.Lab = readLab(cfg.lab)
	return write(cfg.out, rep, append(thr, small...))
}

// runOps measures o at g goroutines on a connection of its own.
func runOps(ctx context.Context, env *bench.Env, o bench.OpsContender, g, round int, d time.Duration) bench.Sample {
	s := bench.Sample{Workload: fmt.Sprintf("%s/g=%d", o.Op, g), Contender: o.Name, Ours: o.Ours, Run: round, Unit: "ops/s"}
	op, closeFn, err := o.Open(ctx, env)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	n, elapsed, err := bench.MeasureOps(ctx, op, g, d)
	err = errors.Join(err, closeFn())
	s.Elapsed = elapsed
	if err != nil {
		s.Err = err.Error()
		return s
	}
	s.Value = float64(n) / elapsed.Seconds()
	return s
}

func write(dir string, rep *bench.Report, samples []bench.Sample) error {
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	if err := errors.Join(bench.WriteCSV(f, samples), f.Close()); err != nil {
		return err
	}
	if !bench.Charted(rep.Throughput) {
		rep.Chart = "" // -only without the sequential workloads: nothing to chart
	} else if err := bench.WriteChart(filepath.Join(dir, rep.Chart),
		fmt.Sprintf("gonfs and its peers, a %d MiB file over loopback, %d rounds", rep.Size>>20, rep.Runs), rep.Throughput); err != nil {
		return err
	}
	f, err = os.Create(filepath.Join(dir, "REPORT.md"))
	if err != nil {
		return err
	}
	if err := errors.Join(rep.WriteMarkdown(f), f.Close()); err != nil {
		return err
	}
	logf("wrote %s", filepath.Join(dir, "REPORT.md"))
	return nil
}

// readLab returns the lab's CSV, or nil if there is none or it does not
// parse.
func readLab(path string) [][]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		logf("ignoring %s: %v", path, err)
		return nil
	}
	return rows
}

func show(s bench.Sample) string {
	if s.Err != "" {
		return "FAILED: " + s.Err
	}
	var more string
	if s.Wire > 0 {
		more += fmt.Sprintf(", %d bytes on the wire", s.Wire)
	}
	if s.Allocated > 0 {
		more += fmt.Sprintf(", the copy takes %d bytes", s.Allocated)
	}
	if s.Unit == "s" {
		return fmt.Sprintf("%8.3f s%s", s.Value, more)
	}
	return fmt.Sprintf("%8.0f %s (%v%s)", s.Value, s.Unit, s.Elapsed.Round(time.Millisecond), more)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad goroutine count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// startProfile starts a CPU profile of c's run in round, written to dir
// when the returned function is called, if dir is set and c is the
// library in process in a counted round; otherwise it does nothing.
func startProfile(dir string, c bench.Contender, round int) func() {
	if dir == "" || c.Name != bench.GonfsName || round < 1 {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-round%d.pprof", c.Workload, round))
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		logf("cpu profile %s: %v", path, err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			logf("cpu profile %s: %v", path, err)
		}
	}
}
