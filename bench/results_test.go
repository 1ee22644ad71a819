package bench

import (
	"bytes"
	"encoding/csv"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSummarize: medians, ranges, failures and the ratio to this
// library's median, per workload, in the order contenders first appeared.
func TestSummarize(t *testing.T) {
	var samples []Sample
	for run, v := range []float64{100, 300, 200, 400} {
		samples = append(samples,
			Sample{Workload: "seq-read", Contender: "gonfs", Ours: true, Run: run + 1, Value: v, Unit: "MB/s", CPU: time.Duration(run+1) * time.Second},
			Sample{Workload: "seq-read", Contender: "peer", Run: run + 1, Value: v / 2, Unit: "MB/s"})
	}
	samples = append(samples, Sample{Workload: "seq-read", Contender: "peer", Run: 5, Err: "boom", Unit: "MB/s"})
	got := Summarize(samples, 2<<30)
	if len(got) != 2 || got[0].Contender != "gonfs" || got[1].Contender != "peer" {
		t.Fatalf("Summarize = %+v", got)
	}
	us, peer := got[0], got[1]
	if us.Median != 250 || us.Min != 100 || us.Max != 400 || us.N != 4 || us.Ratio != 1 || us.CPUPerGiB != 1.25 {
		t.Errorf("gonfs: %+v, want median 250 (even count: mean of the middle two), 100–400, ratio 1, 1.25 CPU s per GiB (1–4 s for 2 GiB)", us)
	}
	if peer.Median != 125 || peer.Ratio != 0.5 || peer.Failed != 1 || peer.FirstErr != "boom" || peer.CPUPerGiB != 0 {
		t.Errorf("peer: %+v, want median 125, ratio 0.5, one failure, no CPU measured", peer)
	}
	// Ratios pair rounds: a peer at 2× ours in every round is 2× however
	// much both drift between rounds.
	drift := Summarize([]Sample{
		{Workload: "w", Contender: "gonfs", Ours: true, Run: 1, Value: 100},
		{Workload: "w", Contender: "peer", Run: 1, Value: 200},
		{Workload: "w", Contender: "gonfs", Ours: true, Run: 2, Value: 10},
		{Workload: "w", Contender: "peer", Run: 2, Value: 20},
		{Workload: "w", Contender: "gonfs", Ours: true, Run: 3, Value: 50},
		{Workload: "w", Contender: "peer", Run: 3, Value: 100},
	}, 0)
	if r := drift[1].Ratio; r != 2 {
		t.Errorf("per-round ratio under drift = %v, want 2", r)
	}
	// The library in process is the baseline even when another of ours
	// (the nfscp binary) ran first in a round.
	mixed := Summarize([]Sample{
		{Workload: "w", Contender: "nfscp", Ours: true, Run: 1, Value: 300},
		{Workload: "w", Contender: "gonfs", Ours: true, Run: 1, Value: 100},
		{Workload: "w", Contender: "peer", Run: 1, Value: 50},
	}, 0)
	if mixed[0].Ratio != 3 || mixed[1].Ratio != 1 || mixed[2].Ratio != 0.5 {
		t.Errorf("ratios with nfscp first: %+v; want 3, 1, 0.5 against gonfs", mixed)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, samples); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != len(samples)+1 || rows[len(rows)-1][7] != "boom" {
		t.Errorf("CSV: %d rows, %v; want a header and one row per sample with its error", len(rows), err)
	}
}

// TestParseMicro: go test -bench output of several packages and runs is
// summarized per benchmark, with medians.
func TestParseMicro(t *testing.T) {
	out := `goos: linux
pkg: github.com/gonfs/nfs/rpc
BenchmarkNullRoundTrip/callers=1-2   	   30000	     40000 ns/op	       0 B/op	       0 allocs/op
BenchmarkNullRoundTrip/callers=1-2   	   30000	     44000 ns/op	       0 B/op	       0 allocs/op
BenchmarkNullRoundTrip/callers=1-2   	   30000	     90000 ns/op	       8 B/op	       1 allocs/op
PASS
pkg: github.com/gonfs/nfs/bench
BenchmarkGanesha/READ/size=64KiB-2 	     200	    357418 ns/op	 183.36 MB/s	    1400 B/op	       2 allocs/op
ok  	github.com/gonfs/nfs/bench	1.096s
`
	got, err := ParseMicro(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("ParseMicro = %+v, want 2 benchmarks", got)
	}
	if m := got[0]; m.Name != "rpc.NullRoundTrip/callers=1" || m.Runs != 3 || m.NsPerOp != 44000 ||
		m.MinNsPerOp != 40000 || m.MaxNsPerOp != 90000 || m.AllocsPerOp != 0 || m.MBPerS != 0 {
		t.Errorf("first: %+v", m)
	}
	if m := got[1]; m.Name != "bench.Ganesha/READ/size=64KiB" || m.MBPerS != 183.36 || m.AllocsPerOp != 2 {
		t.Errorf("second: %+v", m)
	}
}

// TestReportFindsMicro: the report's headlines find the benchmarks they
// quote under the names go test -bench gives them, this package's taken
// from the benchmark functions themselves so that a rename breaks the test.
func TestReportFindsMicro(t *testing.T) {
	fn := runtime.FuncForPC(reflect.ValueOf(BenchmarkReconnectByPolicy).Pointer()).Name()
	_, reconnect, _ := strings.Cut(fn[strings.LastIndexByte(fn, '/')+1:], ".")
	bench := `pkg: github.com/gonfs/nfs/rpc
BenchmarkNullRoundTrip/callers=1-2   	   30000	     40000 ns/op	       0 B/op	       0 allocs/op
pkg: github.com/gonfs/nfs/bench
` + reconnect + `/policy=Hedged/fault=reset-2   	   100	   5000000 ns/op	   9000 B/op	      40 allocs/op
`
	micro, err := ParseMicro(strings.NewReader(bench))
	if err != nil {
		t.Fatal(err)
	}
	out := markdown(t, &Report{Micro: micro})
	for _, want := range []string{
		"Allocations per steady-state call (NULL over the reconnect-capable transport, 1 caller): 0 (goal ≤ 2: met)",
		"Reconnect to a live in-process server, every stock policy, RST or FIN: under 100 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestCommandExpand: placeholders are filled in for reads and writes, and
// the program comes from Env.Tools before PATH.
func TestCommandExpand(t *testing.T) {
	env := &Env{Host: "127.0.0.1", Port: 2050, MountPort: 2051, Pseudo: "/export", Src: "/src",
		Tools: map[string]string{"nfscp": "/tmp/bin/nfscp"}}
	for _, tc := range []struct {
		cmd    Command
		target string
		want   string
	}{
		{Command{Workload: SeqRead, Args: []string{"nfscp", "-q", "nfs://{host}:{port}{pseudo}/{remote}", "{local}"}},
			"/shm/out", "/tmp/bin/nfscp -q nfs://127.0.0.1:2050/export/big /shm/out"},
		{Command{Workload: SeqWrite, Args: []string{"nfscp", "{local}", "nfs://{host}{pseudo}/{remote}?nfsport={port}&mountport={mountport}"}},
			"w", "/tmp/bin/nfscp /src nfs://127.0.0.1/export/w?nfsport=2050&mountport=2051"},
	} {
		args, err := tc.cmd.Expand(env, tc.target)
		if err != nil || strings.Join(args, " ") != tc.want {
			t.Errorf("Expand = %q, %v; want %q", args, err, tc.want)
		}
	}
	env.SparseSrc = "/sparse-src"
	for _, tc := range []struct {
		cmd    Command
		target string
		want   string
	}{
		{Command{Workload: SparseDown, Args: []string{"nfscp", "nfs://{host}:{port}{pseudo}/{remote}", "{local}"}},
			"/shm/out", "/tmp/bin/nfscp nfs://127.0.0.1:2050/export/sparse /shm/out"},
		{Command{Workload: SparseUp, Args: []string{"nfscp", "{local}", "nfs://{host}:{port}{pseudo}/{remote}"}},
			"up", "/tmp/bin/nfscp /sparse-src nfs://127.0.0.1:2050/export/up"},
	} {
		args, err := tc.cmd.Expand(env, tc.target)
		if err != nil || strings.Join(args, " ") != tc.want {
			t.Errorf("Expand = %q, %v; want %q", args, err, tc.want)
		}
	}
	if _, err := (Command{Workload: SameServerCopy, Args: []string{"nfscp", "{remote}", "{copy}"}}).Expand(env, "x"); err == nil {
		t.Error("a same-server copy expanded without knfsd")
	}
	if _, err := (Command{Args: []string{"no-such-program-gonfs"}}).Expand(env, "x"); err == nil {
		t.Error("a missing program expanded without an error")
	}
}

// TestCopyReport: the same-server and sparse copies get a headline and a
// table each, against nfscp per round: the same-server copy in MB/s with
// its seconds and the bytes on the wire, the sparse copies in seconds
// (a ratio above 1 is a slower peer) with the copy's allocated size; and
// a knfsd that did not start is said to be unavailable, in the headlines
// and in place of its table. Workloads that did not run get no table.
func TestCopyReport(t *testing.T) {
	const gib = 1 << 30
	var samples []Sample
	for run := 1; run <= 3; run++ {
		d := time.Duration(run) * time.Second // drift: the ratios hold
		samples = append(samples,
			Sample{Workload: "same-server-copy", Contender: NfscpName, Ours: true, Run: run, Unit: "MB/s",
				Elapsed: 4 * d, Value: 1000 / float64(run), CPU: 50 * time.Millisecond, Wire: 30 << 10},
			Sample{Workload: "same-server-copy", Contender: NfscpStreamName, Ours: true, Run: run, Unit: "MB/s",
				Elapsed: 8 * d, Value: 500 / float64(run), CPU: 2 * time.Second, Wire: 2200 << 20},
			Sample{Workload: "sparse-down", Contender: NfscpName, Ours: true, Run: run, Unit: "s",
				Elapsed: d / 10, Value: 0.1 * float64(run), CPU: 20 * time.Millisecond, Allocated: 10 << 20},
			Sample{Workload: "sparse-down", Contender: LibnfsName, Run: run, Unit: "s",
				Elapsed: 3 * d, Value: 3 * float64(run), CPU: 700 * time.Millisecond, Allocated: gib})
	}
	rep := &Report{Size: gib, SparseData: 10 << 20, Throughput: Summarize(samples, gib), Notes: map[string]string{
		"sparse-down " + LibnfsName: "inflates",
	}}
	out := markdown(t, rep)
	for _, want := range []string{
		"- **same-server-copy**: nfscp, median 500 MB/s (8 s), 30.0 KiB on the wire = 2.00× nfscp --nfs-version 4.1 (ahead; 250 MB/s (16 s), 2.15 GiB on the wire).\n",
		"- **sparse-down**: nfscp, median 0.2 s, its copy taking 10.0 MiB = 30.00× libnfs nfs-cp (ahead; 6 s, its copy taking 1.00 GiB).\n",
		"## Same-server copy (1 GiB within one Linux kernel NFS server: NFSv4.2 COPY against streaming)\n\n" +
			"| contender | median MB/s | min–max | runs | ÷ nfscp (per round) | median s | client CPU s/GiB | on the wire | how |\n",
		"| nfscp --nfs-version 4.1 | 250 | 167–500 | 3 | 0.50× | 16 | 2.00 | 2.15 GiB |  |\n",
		"## Sparse file down (1 GiB holding 10.0 MiB of data: NFS → local file on tmpfs)\n\n" +
			"| contender | median s | min–max s | runs | time ÷ nfscp's (per round) | client CPU s | copy's allocated size | how |\n",
		"| libnfs nfs-cp | 6 | 3–9 | 3 | 30.00× | 0.7 | 1.00 GiB | inflates |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"## Sequential read", "## Sparse file up", "- **sparse-up**", "seq-read"} {
		if strings.Contains(out, absent) {
			t.Errorf("report has %q for a workload that did not run:\n%s", absent, out)
		}
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, samples[:4]); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 5 || strings.Join(rows[0][9:], ",") != "wire_bytes,allocated_bytes" ||
		strings.Join(rows[1][9:], ",") != "30720," || strings.Join(rows[4][4:], ",") != "3.0000,3.0000,s,,0.700,,1073741824" {
		t.Errorf("CSV: %q, %v; want the bytes on the wire and the copy's allocated size where measured, seconds to the 0.1 ms", rows, err)
	}

	why := "knfsd: no tun/tap device"
	rep = &Report{Size: gib, Unavailable: []Unavailable{
		{Workload: "same-server-copy", Contender: NfscpName, Reason: why},
		{Workload: "same-server-copy", Contender: NfscpStreamName, Reason: why},
	}}
	out = markdown(t, rep)
	for _, want := range []string{
		"- **same-server-copy**: not available in this run: " + why + "\n",
		"## Same-server copy (1 GiB within one Linux kernel NFS server: NFSv4.2 COPY against streaming)\n\nNot available in this run: " + why + "\n",
		"- Not available in this run: nfscp --nfs-version 4.1 (same-server-copy): " + why + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report without knfsd lacks %q:\n%s", want, out)
		}
	}
}

// TestReportCPUGoal: the headline of each copy workload says whether this
// library took no more client CPU per GiB than libnfs.
func TestReportCPUGoal(t *testing.T) {
	const gib = 1 << 30
	var samples []Sample
	for run := 1; run <= 3; run++ {
		samples = append(samples,
			Sample{Workload: string(SeqRead), Contender: GonfsName, Ours: true, Run: run, Unit: "MB/s", Value: 1000, CPU: time.Second},
			Sample{Workload: string(SeqRead), Contender: LibnfsName, Run: run, Unit: "MB/s", Value: 800, CPU: 500 * time.Millisecond},
			Sample{Workload: string(SeqWrite), Contender: GonfsName, Ours: true, Run: run, Unit: "MB/s", Value: 300, CPU: 400 * time.Millisecond},
			Sample{Workload: string(SeqWrite), Contender: LibnfsName, Run: run, Unit: "MB/s", Value: 200, CPU: 500 * time.Millisecond},
			Sample{Workload: string(SeqRead), Contender: NfscpName, Ours: true, Run: run, Unit: "MB/s", Value: 1000, CPU: 400 * time.Millisecond})
	}
	rep := &Report{Size: gib, Throughput: Summarize(samples, gib), Notes: map[string]string{}}
	out := markdown(t, rep)
	for _, want := range []string{
		"Client CPU 1.00 s/GiB (median) against libnfs's 0.50: 2.00× libnfs's in the same round (median; goal ≤ 1: **not met**; the nfscp binary, a program like nfs-cp, 0.40 s/GiB, 0.80×;",
		"Client CPU 0.40 s/GiB (median) against libnfs's 0.50: 0.80× libnfs's in the same round (median; goal ≤ 1: met;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// The small operations' headline says whether one caller's Stat calls,
// cached, reach 1.5× the NFSv3 peer's rate, and what they do uncached.
func TestReportOpsGoal(t *testing.T) {
	var ops []Sample
	for run := 1; run <= 3; run++ {
		for _, op := range []string{"GETATTR/g=1", "LOOKUP/g=1"} {
			ops = append(ops,
				Sample{Workload: op, Contender: GonfsName, Ours: true, Run: run, Unit: "ops/s", Value: 100000},
				Sample{Workload: op, Contender: GonfsNoACName, Ours: true, Run: run, Unit: "ops/s", Value: 9000},
				Sample{Workload: op, Contender: VMwareName, Run: run, Unit: "ops/s", Value: 10000})
		}
	}
	rep := &Report{Ops: Summarize(ops, 0), Notes: map[string]string{}}
	out := markdown(t, rep)
	for _, want := range []string{
		"File.Stat 100000/s = 10× its GETATTR (cache off, Config.NoAC: 0.90×)",
		"Client.Stat 100000/s = 10× its LOOKUP (cache off, Config.NoAC: 0.90×)",
		"Goal ≥ 1.5× with the metadata cache on (the default): met.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}

// The machine's drift moves every contender's CPU together: the CPU
// ratio pairs the runs of one round, as the throughput ratio does, and is
// not the ratio of the medians.
func TestCPURatioPairsRounds(t *testing.T) {
	var samples []Sample
	for i, cpu := range []struct{ us, lib time.Duration }{
		{1000 * time.Millisecond, 900 * time.Millisecond},
		{2000 * time.Millisecond, 2200 * time.Millisecond},
		{4000 * time.Millisecond, 3600 * time.Millisecond},
	} {
		samples = append(samples,
			Sample{Workload: string(SeqRead), Contender: GonfsName, Ours: true, Run: i + 1, Unit: "MB/s", Value: 1000, CPU: cpu.us},
			Sample{Workload: string(SeqRead), Contender: LibnfsName, Run: i + 1, Unit: "MB/s", Value: 800, CPU: cpu.lib})
	}
	sums := Summarize(samples, 1<<30)
	us, lib := find(sums, string(SeqRead), GonfsName), find(sums, string(SeqRead), LibnfsName)
	if got, want := CPURatio(us, lib), 1000.0/900; math.Abs(got-want) > 1e-9 {
		t.Errorf("CPURatio = %.4f, want the median of the rounds' ratios, %.4f (the medians' ratio is %.4f)", got, want, us.CPUPerGiB/lib.CPUPerGiB)
	}
}

// markdown renders r as the report's Markdown.
func markdown(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
