package bench

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Sample is one measurement: one run of one contender on one workload.
type Sample struct {
	// Workload is the workload's name: a Workload, or for small
	// operations the operation and the goroutines, as "GETATTR/g=8".
	Workload string
	// Contender is the contender's name.
	Contender string
	// Ours marks this library's contenders.
	Ours bool
	// Run counts from 1.
	Run int
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// CPU is the client's CPU time in the run, user and system: the
	// contender's process, or this process for the library in process.
	// 0 where not measured (small operations).
	CPU time.Duration
	// Value is the rate: MB/s (10^6 bytes per second) for throughput,
	// operations per second for small operations; for the sparse
	// copies, the seconds the copy took. 0 if Err is set.
	Value float64
	// Unit is "MB/s", "ops/s" or "s".
	Unit string
	// Wire is the bytes the run put on the network, both ways, counted
	// by knfsd's tap device (SameServerCopy); 0 where not measured.
	Wire int64
	// Allocated is the storage the copy takes, st_blocks × 512 (the
	// sparse copies); 0 where not measured.
	Allocated int64
	// Err is why the run failed, "" if it did not.
	Err string
}

// A Summary is the samples of one contender on one workload.
type Summary struct {
	Workload, Contender, Unit string
	Ours                      bool
	// N counts the successful runs; Failed the failed ones, and
	// FirstErr is the first failure's message.
	N, Failed int
	FirstErr  string
	// Median, Min and Max are over the successful runs, and so is
	// Seconds, the median time a run took.
	Median, Min, Max, Seconds float64
	// CPUPerGiB is the median of the client's CPU seconds per GiB moved
	// over the successful runs that measured it; 0 if none did. CPU is
	// the median of its CPU seconds per run, the same way.
	CPUPerGiB, CPU float64
	// CPUByRound holds the CPU seconds of each successful run that
	// measured them, by round, for ratios paired by round (CPURatio).
	CPUByRound map[int]float64
	// Wire and Allocated are the medians of the successful runs' Wire
	// and Allocated, in bytes; 0 where not measured.
	Wire, Allocated float64
	// Ratio compares the contender with the baseline, this library's
	// first contender on the workload: the median, over the rounds in
	// which both succeeded, of the contender's value divided by the
	// baseline's in the same round. Pairing by round cancels most of the
	// drift of a shared machine. 0 if they share no round. Above 1 the
	// contender is faster than us.
	Ratio float64
}

// Summarize groups samples by workload and contender, keeping the order
// of first appearance, and computes the medians and the per-round ratios
// to the baseline of each workload: its first contender marked Ours.
func Summarize(samples []Sample, size int64) []Summary {
	type key struct{ w, c string }
	var order []key
	vals := map[key][]float64{}
	elapsed := map[key][]float64{}
	cpus := map[key][]float64{}   // CPU seconds per GiB
	perRun := map[key][]float64{} // CPU seconds per run
	wire := map[key][]float64{}
	allocated := map[key][]float64{}
	sums := map[key]*Summary{}
	baseline := map[string]string{} // workload → contender
	type round struct {
		w   string
		run int
	}
	base := map[round]float64{} // the baseline's value per round
	// The baseline is the library in process (GonfsName) where it ran,
	// else the first of ours.
	for _, s := range samples {
		if s.Ours && (s.Contender == GonfsName || baseline[s.Workload] == "") {
			if baseline[s.Workload] != GonfsName {
				baseline[s.Workload] = s.Contender
			}
		}
	}
	for _, s := range samples {
		k := key{s.Workload, s.Contender}
		sum := sums[k]
		if sum == nil {
			sum = &Summary{Workload: s.Workload, Contender: s.Contender, Unit: s.Unit, Ours: s.Ours}
			sums[k] = sum
			order = append(order, k)
		}
		if s.Err != "" {
			if sum.Failed == 0 {
				sum.FirstErr = s.Err
			}
			sum.Failed++
			continue
		}
		vals[k] = append(vals[k], s.Value)
		elapsed[k] = append(elapsed[k], s.Elapsed.Seconds())
		if s.CPU > 0 {
			if sum.CPUByRound == nil {
				sum.CPUByRound = map[int]float64{}
			}
			sum.CPUByRound[s.Run] = s.CPU.Seconds()
			perRun[k] = append(perRun[k], s.CPU.Seconds())
			if size > 0 {
				cpus[k] = append(cpus[k], s.CPU.Seconds()/(float64(size)/(1<<30)))
			}
		}
		if s.Wire > 0 {
			wire[k] = append(wire[k], float64(s.Wire))
		}
		if s.Allocated > 0 {
			allocated[k] = append(allocated[k], float64(s.Allocated))
		}
		if baseline[s.Workload] == s.Contender {
			base[round{s.Workload, s.Run}] = s.Value
		}
	}
	ratios := map[key][]float64{}
	for _, s := range samples {
		if b := base[round{s.Workload, s.Run}]; s.Err == "" && b > 0 {
			k := key{s.Workload, s.Contender}
			ratios[k] = append(ratios[k], s.Value/b)
		}
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		sum := sums[k]
		if v := vals[k]; len(v) > 0 {
			sum.N = len(v)
			sum.Median = median(v)
			sum.Min, sum.Max = slices.Min(v), slices.Max(v)
		}
		if r := ratios[k]; len(r) > 0 {
			sum.Ratio = median(r)
		}
		sum.Seconds = medianOr0(elapsed[k])
		sum.CPUPerGiB = medianOr0(cpus[k])
		sum.CPU = medianOr0(perRun[k])
		sum.Wire = medianOr0(wire[k])
		sum.Allocated = medianOr0(allocated[k])
		out = append(out, *sum)
	}
	return out
}

// CPURatio is the median, over the rounds in which both measured it, of
// a's CPU divided by b's in the same round; 0 if they share no round.
// Like Ratio, pairing by round cancels most of the machine's drift, which
// moves every contender's CPU with it.
func CPURatio(a, b *Summary) float64 {
	var r []float64
	for run, ca := range a.CPUByRound {
		if cb := b.CPUByRound[run]; cb > 0 {
			r = append(r, ca/cb)
		}
	}
	return medianOr0(r)
}

// median returns the median of v, which must not be empty: the middle
// value, or the mean of the two middle values.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOr0 is the median of v, 0 if v is empty.
func medianOr0(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return median(v)
}

// csvHeader is the first line WriteCSV writes. wire_bytes and
// allocated_bytes are empty where not measured.
var csvHeader = []string{"workload", "contender", "ours", "run", "seconds", "value", "unit", "error", "cpu_seconds", "wire_bytes", "allocated_bytes"}

// WriteCSV writes every sample as a CSV row, after a header line.
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, s := range samples {
		row := []string{
			s.Workload, s.Contender, strconv.FormatBool(s.Ours), strconv.Itoa(s.Run),
			strconv.FormatFloat(s.Elapsed.Seconds(), 'f', 4, 64),
			formatValue(s), s.Unit, s.Err,
			strconv.FormatFloat(s.CPU.Seconds(), 'f', 3, 64),
			optInt(s.Wire), optInt(s.Allocated),
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// formatValue formats s.Value: to the tenth of a unit, or of a
// millisecond in seconds.
func formatValue(s Sample) string {
	prec := 1
	if s.Unit == "s" {
		prec = 4
	}
	return strconv.FormatFloat(s.Value, 'f', prec, 64)
}

// optInt formats n, or "" for 0 (not measured).
func optInt(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// A Micro is one go test benchmark, summarized over its -count runs.
type Micro struct {
	// Name is the package's last element and the benchmark's name
	// without "Benchmark" and the GOMAXPROCS suffix, "rpc.NullRoundTrip/callers=1".
	Name string
	// Runs is how many result lines there were.
	Runs int
	// NsPerOp, MBPerS, BytesPerOp and AllocsPerOp are medians; a
	// metric the benchmark does not report is 0 (MBPerS) or -1.
	NsPerOp, MBPerS, BytesPerOp, AllocsPerOp float64
	// MinNsPerOp and MaxNsPerOp bound the runs.
	MinNsPerOp, MaxNsPerOp float64
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// ParseMicro reads go test -bench output (several packages, -count runs)
// and summarizes each benchmark, in order of first appearance.
func ParseMicro(r io.Reader) ([]Micro, error) {
	type acc struct{ ns, mbs, bop, allocs []float64 }
	var order []string
	accs := map[string]*acc{}
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndex(p, "/")+1:]
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := pkg + "." + m[1]
		a := accs[name]
		if a == nil {
			a = &acc{}
			accs[name] = a
			order = append(order, name)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				a.ns = append(a.ns, v)
			case "MB/s":
				a.mbs = append(a.mbs, v)
			case "B/op":
				a.bop = append(a.bop, v)
			case "allocs/op":
				a.allocs = append(a.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: reading benchmark output: %w", err)
	}
	out := make([]Micro, 0, len(order))
	for _, name := range order {
		a := accs[name]
		m := Micro{Name: name, Runs: len(a.ns), BytesPerOp: -1, AllocsPerOp: -1}
		if len(a.ns) > 0 {
			m.NsPerOp = median(a.ns)
			m.MinNsPerOp, m.MaxNsPerOp = minMax(a.ns)
		}
		if len(a.mbs) > 0 {
			m.MBPerS = median(a.mbs)
		}
		if len(a.bop) > 0 {
			m.BytesPerOp = median(a.bop)
		}
		if len(a.allocs) > 0 {
			m.AllocsPerOp = median(a.allocs)
		}
		out = append(out, m)
	}
	return out, nil
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
