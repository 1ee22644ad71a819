// Command benchrun runs the macro comparison of package bench: it starts an
// NFS-Ganesha on loopback, creates the test file, runs every contender
// -runs times, interleaved, and writes REPORT.md, results.csv and
// throughput.png to -out.
//
//	go run ./bench/cmd/benchrun -runs 5 -out bench/results
//
// It needs root (Ganesha's VFS backend does) and Debian's nfs-ganesha,
// nfs-ganesha-vfs, rpcbind and libnfs-utils (make deps installs them).
// A contender that cannot run here (nfscp not built yet, nfs-cp missing)
// is reported as not available rather than failing the run.
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
		opsOnly    = flag.Bool("ops-only", false, "run the small operations alone, no copies (use a small -size)")
		profile    = flag.String("cpuprofile", "", "directory for a CPU profile of each counted run of the library in process (gonfs), per workload and round")
	)
	flag.Parse()
	gs, err := parseInts(*goroutines)
	if err != nil || *runs < 1 || *warmup < 0 || *sizeMiB < 1 {
		fmt.Fprintln(os.Stderr, "benchrun: bad flags:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config{
		runs: *runs, warmup: *warmup, size: *sizeMiB << 20, out: *out, micro: *microPath, lab: *labPath,
		opsTime: *opsTime, goroutines: gs, conditions: *conditions, runTimeout: *runTimeout, opsOnly: *opsOnly,
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
	opsOnly    bool
	profile    string // directory for CPU profiles of the library's runs; "" for none
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

	rep := &bench.Report{Runs: cfg.runs, Warmup: cfg.warmup, Size: cfg.size, Conditions: cfg.conditions,
		Notes: map[string]string{}, LabPath: cfg.lab, Chart: "throughput.png"}
	if bin, err := bench.BuildNfscp(ctx, p.TempDir()); err == nil {
		env.Tools["nfscp"] = bin
	}
	var contenders []bench.Contender
	for _, c := range bench.Contenders() {
		rep.Notes[string(c.Workload)+" "+c.Name] = c.Note
		if c.Available != nil {
			if err := c.Available(env); err != nil {
				if c.Name == bench.NfscpName {
					_, err = bench.BuildNfscp(ctx, p.TempDir())
				}
				rep.Unavailable = append(rep.Unavailable, fmt.Sprintf("%s (%s): %v", c.Name, c.Workload, err))
				continue
			}
		}
		contenders = append(contenders, c)
	}
	if cfg.opsOnly {
		contenders = nil
	}
	ops := bench.OpsContenders()
	for _, o := range ops {
		rep.Notes[o.Op+" "+o.Name] = o.Note
	}

	var thr, small []bench.Sample
	for round := 1 - cfg.warmup; round <= cfg.runs; round++ {
		// Each round starts one contender later than the one before, so
		// that no contender always follows the same one (a 1 GiB write
		// with fsync leaves the machine busy for a while).
		start := (round - 1 + cfg.warmup) % max(1, len(contenders))
		for i := range contenders {
			c := contenders[(start+i)%len(contenders)]
			if err := ctx.Err(); err != nil {
				return err
			}
			stopProfile := startProfile(cfg.profile, c, round)
			s := runOne(ctx, env, c, round, cfg.runTimeout)
			stopProfile()
			logf("round %d/%d %-9s %-22s %s", round, cfg.runs, c.Workload, c.Name, show(s))
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
				logf("round %d/%d %-9s %-22s %s", round, cfg.runs, s.Workload, o.Name, show(s))
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

// runOne runs c once and checks what it produced.
func runOne(ctx context.Context, env *bench.Env, c bench.Contender, round int, timeout time.Duration) bench.Sample {
	s := bench.Sample{Workload: string(c.Workload), Contender: c.Name, Ours: c.Ours, Run: round, Unit: "MB/s"}
	target, local := c.Target(env, "bench")
	defer os.Remove(local)
	if err := os.Remove(local); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.Err = err.Error()
		return s
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cpu0 := bench.CPUTime()
	start := time.Now()
	err := c.Run(rctx, env, target)
	s.Elapsed = time.Since(start)
	s.CPU = bench.CPUTime() - cpu0
	if err == nil && !c.NoOutput {
		err = env.Check(local, round <= 1)
	}
	if err != nil {
		s.Err = err.Error()
		return s
	}
	s.Value = float64(env.Size) / s.Elapsed.Seconds() / 1e6
	return s
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
	if len(rep.Throughput) == 0 {
		rep.Chart = "" // -ops-only: nothing to chart
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
	return fmt.Sprintf("%8.0f %s (%v)", s.Value, s.Unit, s.Elapsed.Round(time.Millisecond))
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
