package bench

import (
	"bufio"
	"fmt"
	"image/color"
	"io"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// A Report is everything REPORT.md shows.
type Report struct {
	Machine Machine
	// Runs is the number of interleaved rounds counted, Warmup the
	// number run before them and not counted; Size the file's size.
	Runs, Warmup int
	Size         int64
	// SparseData is the bytes of data in the sparse file (of Size bytes).
	SparseData int64
	// Conditions describes the load on the machine during the run, in
	// the words of whoever ran it ("shared by 4 agents", "quiet").
	Conditions string
	// Throughput and Ops are the summaries of the two halves.
	Throughput, Ops []Summary
	// Notes are remarks per contender, keyed by Workload+" "+Name (for
	// small operations, Op+" "+Name).
	Notes map[string]string
	// CopyServer describes the same-server copy's server (Env.CopyServer),
	// "" if it did not run.
	CopyServer string
	// Unavailable lists contenders that could not run, with the reason.
	Unavailable []Unavailable
	// Micro are the go test -bench results, if any.
	Micro []Micro
	// Lab is the fault lab's latest CSV (header first), nil if absent;
	// LabPath is where it was read from.
	Lab     [][]string
	LabPath string
	// Chart is the chart's file name, relative to the report.
	Chart string
}

// Unavailable is a contender that could not run, and why.
type Unavailable struct {
	Workload, Contender, Reason string
}

// WriteMarkdown writes the report.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	m := r.Machine
	p("# Benchmarks: gonfs against its peers, side by side\n\n")
	p("Run of %s, %d interleaved rounds (every contender once per round, each workload's contenders back to back, in an order that changes each round so that each of them runs first, and right after each of the others, equally often) "+
		"after %d warm-up round(s) not counted, file of %s. Each table shows the median of the rounds and the range (min–max).\n\n",
		m.Start.UTC().Format("2006-01-02 15:04 MST"), r.Runs, r.Warmup, sizeString(r.Size))
	p("**Load during this run:** %s. Load average (1/5/15 min) %s at the start, %s at the end. "+
		"Absolute numbers drift with load on a shared machine; the ratios between contenders, "+
		"measured in the same rounds, are what to read.\n\n", orDash(r.Conditions), orDash(m.LoadStart), orDash(m.LoadEnd))
	if r.Chart != "" {
		p("![median throughput](%s)\n\n", r.Chart)
	}

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s, %d logical cores |\n| memory | %.1f GiB |\n| kernel | Linux %s |\n| OS | %s |\n",
		orDash(m.CPU), m.Cores, m.MemoryGiB, orDash(m.Kernel), orDash(m.OS))
	p("| NFS server | %s (Debian nfs-ganesha, VFS FSAL, export on the local disk), on 127.0.0.1 |\n", orDash(m.Ganesha))
	if r.CopyServer != "" {
		p("| same-server copy's server | %s |\n", r.CopyServer)
	}
	p("| libnfs | %s |\n| Go | %s |\n| duration | %s |\n\n", orDash(m.Libnfs), m.Go, m.End.Sub(m.Start).Round(time.Second))

	r.headlines(p)
	r.throughputTables(p)
	r.copyTables(p)
	r.opsTables(p)
	r.microTables(p)
	r.labTable(p)
	r.method(p)
	return bw.Flush()
}

// find returns the summary of contender on workload, or nil.
func find(ss []Summary, workload, contender string) *Summary {
	for i := range ss {
		if ss[i].Workload == workload && ss[i].Contender == contender {
			return &ss[i]
		}
	}
	return nil
}

func (r *Report) headlines(p func(string, ...any)) {
	p("## Headlines and goals\n\n")
	p("Ratios are medians of per-round ratios (each round runs every contender once, back to back), which cancels most of the machine's drift.\n\n")
	tcp := find(r.Throughput, string(Limit), "loopback TCP")
	local := map[Workload]*Summary{
		SeqRead:  find(r.Throughput, string(Limit), "local read"),
		SeqWrite: find(r.Throughput, string(Limit), "local write+fsync"),
	}
	for _, w := range []Workload{SeqRead, SeqWrite} {
		us := find(r.Throughput, string(w), GonfsName)
		if us == nil {
			continue // not run (benchrun -only)
		}
		if us.N == 0 {
			p("- %s: this library has no successful run.\n", w)
			continue
		}
		var parts []string
		for _, s := range r.Throughput {
			if s.Workload != string(w) || s.Ours || s.N == 0 || s.Ratio == 0 {
				continue
			}
			verdict := "ahead"
			if s.Ratio >= 1 {
				verdict = "**behind**"
			}
			parts = append(parts, fmt.Sprintf("%.2f× %s (%s)", 1/s.Ratio, s.Contender, verdict))
		}
		p("- **%s**: gonfs %.0f MB/s median = %s.", w, us.Median, strings.Join(parts, ", "))
		if lib := find(r.Throughput, string(w), LibnfsName); lib != nil && lib.Ratio > 0 {
			ok := "met"
			if 1/lib.Ratio < 1.5 {
				ok = "**not met**"
			}
			p(" Goal ≥ 1.5× libnfs: %s.", ok)
		}
		// The ceiling a Ganesha on loopback allows is the lower of the
		// network's (raw TCP) and the storage's (the local copy).
		ceiling, what := 0.0, ""
		if tcp != nil && tcp.N > 0 {
			ceiling, what = tcp.Median, "raw loopback TCP"
		}
		if l := local[w]; l != nil && l.N > 0 && (ceiling == 0 || l.Median < ceiling) {
			ceiling, what = l.Median, l.Contender
		}
		if ceiling > 0 {
			ok := "met"
			if us.Median < 0.7*ceiling {
				ok = "**not met**"
			}
			p(" %.0f%% of the loopback ceiling, here %s at %.0f MB/s (goal ≥ 70%%: %s).", 100*us.Median/ceiling, what, ceiling, ok)
			if what != "raw loopback TCP" && tcp != nil && tcp.N > 0 {
				p(" Against raw loopback TCP alone: %.0f%%.", 100*us.Median/tcp.Median)
			}
		}
		if lib := find(r.Throughput, string(w), LibnfsName); lib != nil && CPURatio(us, lib) > 0 {
			cpu := CPURatio(us, lib)
			ok := "met"
			if cpu > 1 {
				ok = "**not met**"
			}
			p(" Client CPU %.2f s/GiB (median) against libnfs's %.2f: %.2f× libnfs's in the same round (median; goal ≤ 1: %s",
				us.CPUPerGiB, lib.CPUPerGiB, cpu, ok)
			if b := find(r.Throughput, string(w), NfscpName); b != nil && CPURatio(b, lib) > 0 {
				p("; the nfscp binary, a program like nfs-cp, %.2f s/GiB, %.2f×", b.CPUPerGiB, CPURatio(b, lib))
			}
			p("; where it goes and why: docs/bench.md, \"CPU per byte\").")
		}
		p("\n")
	}
	for _, w := range copyWorkloads {
		r.copyHeadline(p, w)
	}
	r.opsHeadline(p)
	for _, mi := range r.Micro {
		if mi.Name == "rpc.NullRoundTrip/callers=1" {
			ok := "met"
			if mi.AllocsPerOp > 2 {
				ok = "**not met**"
			}
			p("- Allocations per steady-state call (NULL over the reconnect-capable transport, 1 caller): %.0f (goal ≤ 2: %s); "+
				"bench's TestReconnectAddsNoAllocation asserts that the same call over a plain connection allocates no less.\n",
				mi.AllocsPerOp, ok)
		}
	}
	var slow []string
	seen := false
	for _, mi := range r.Micro {
		if name, ok := strings.CutPrefix(mi.Name, "bench.ReconnectByPolicy/"); ok {
			seen = true
			if mi.NsPerOp >= 0.1e9 {
				slow = append(slow, name)
			}
		}
	}
	if seen {
		if len(slow) == 0 {
			p("- Reconnect to a live in-process server, every stock policy, RST or FIN: under 100 ms (goal: well under a second) — see the micro-benchmarks.\n")
		} else {
			p("- Reconnect to a live in-process server took 100 ms or more for: %s.\n", strings.Join(slow, ", "))
		}
	}
	p("\n")
}

func (r *Report) throughputTables(p func(string, ...any)) {
	titles := map[Workload]string{
		SeqRead:  "Sequential read (NFS → local file on tmpfs)",
		SeqWrite: "Sequential write (local file on tmpfs → NFS, committed to stable storage)",
		Limit:    "The machine's limits, same rounds",
	}
	for _, w := range []Workload{SeqRead, SeqWrite, Limit} {
		if !r.ran(w) {
			continue
		}
		p("## %s\n\n| contender | median MB/s | min–max | runs | ÷ gonfs (per round) | client CPU s/GiB | how |\n|---|---:|---:|---:|---:|---:|---|\n", titles[w])
		for _, s := range r.Throughput {
			if s.Workload != string(w) {
				continue
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", s.Contender, num(s.Median, s.N), rangeOf(s), runsOf(s),
				ratio(s.Ratio), cpuOf(s), r.Notes[s.Workload+" "+s.Contender])
		}
		p("\n")
	}
}

// opsHeadline writes the line of the headlines for the small operations
// of one caller: the library's File.Stat and Client.Stat against the
// NFSv3 peer's GETATTR and LOOKUP, with the metadata cache on (the goal:
// ≥ 1.5×) and off.
func (r *Report) opsHeadline(p func(string, ...any)) {
	var parts []string
	met := true
	for _, op := range []struct{ op, call string }{{"GETATTR", "File.Stat"}, {"LOOKUP", "Client.Stat"}} {
		w := op.op + "/g=1"
		us, peer, noac := find(r.Ops, w, GonfsName), find(r.Ops, w, VMwareName), find(r.Ops, w, GonfsNoACName)
		if us == nil || peer == nil || us.N == 0 || peer.N == 0 || peer.Ratio == 0 {
			continue
		}
		part := fmt.Sprintf("%s %.0f/s = %.0f× its %s", op.call, us.Median, 1/peer.Ratio, op.op)
		if noac != nil && noac.N > 0 {
			part += fmt.Sprintf(" (cache off, Config.NoAC: %.2f×)", noac.Median/peer.Median)
		}
		parts = append(parts, part)
		met = met && 1/peer.Ratio >= 1.5
	}
	if len(parts) == 0 {
		return
	}
	ok := "met"
	if !met {
		ok = "**not met**"
	}
	p("- **Small operations, one caller**, against %s: %s. Goal ≥ 1.5× with the metadata cache on (the default): %s. "+
		"Cached, a call is answered without the server while the attributes are valid; with the cache off the ratio is of medians.\n",
		VMwareName, strings.Join(parts, "; "), ok)
}

func (r *Report) opsTables(p func(string, ...any)) {
	if len(r.Ops) == 0 {
		return
	}
	p("## Small operations (calls per second)\n\n")
	p("Each cell: median [min–max] over the rounds, and ÷ gonfs. One client, one connection, g goroutines calling as fast as they can for a fixed time.\n\n")
	for _, op := range []string{"GETATTR", "LOOKUP"} {
		var gs []string
		var names []string
		for _, s := range r.Ops {
			o, g, _ := strings.Cut(s.Workload, "/")
			if o != op {
				continue
			}
			if !contains(gs, g) {
				gs = append(gs, g)
			}
			if !contains(names, s.Contender) {
				names = append(names, s.Contender)
			}
		}
		if len(names) == 0 {
			continue
		}
		p("### %s\n\n| client |", op)
		for _, g := range gs {
			p(" %s |", g)
		}
		p(" how |\n|---|")
		for range gs {
			p("---:|")
		}
		p("---|\n")
		for _, n := range names {
			p("| %s |", n)
			for _, g := range gs {
				s := find(r.Ops, op+"/"+g, n)
				if s == nil {
					p(" — |")
					continue
				}
				cell := num(s.Median, s.N)
				if s.N > 0 {
					cell += fmt.Sprintf(" [%.0f–%.0f]", s.Min, s.Max)
					if s.Contender != GonfsName {
						cell += " " + ratio(s.Ratio)
					}
				}
				p(" %s |", cell)
			}
			p(" %s |\n", r.Notes[op+" "+n])
		}
		p("\n")
	}
}

func (r *Report) microTables(p func(string, ...any)) {
	if len(r.Micro) == 0 {
		return
	}
	p("## Micro-benchmarks (go test -bench, medians)\n\n")
	p("`bench.*` are this package's (micro_test.go); the others are the library's own package benchmarks. " +
		"`bench.ReconnectByPolicy/*` is the time from the server dropping the connection (RST or FIN) to the first successful call after it, " +
		"against an in-process responder; its allocations are the new connection's buffers.\n\n")
	p("| benchmark | runs | ns/op (min–max) | MB/s | B/op | allocs/op |\n|---|---:|---:|---:|---:|---:|\n")
	for _, mi := range r.Micro {
		mbs := "—"
		if mi.MBPerS > 0 {
			mbs = fmt.Sprintf("%.0f", mi.MBPerS)
		}
		p("| %s | %d | %s (%s–%s) | %s | %s | %s |\n", mi.Name, mi.Runs, dur(mi.NsPerOp), dur(mi.MinNsPerOp), dur(mi.MaxNsPerOp),
			mbs, optNum(mi.BytesPerOp), optNum(mi.AllocsPerOp))
	}
	p("\n")
}

func (r *Report) labTable(p func(string, ...any)) {
	p("## Reconnect latency per policy per fault (the fault lab)\n\n")
	if len(r.Lab) < 2 {
		p("No fault-lab results were found at `%s` when this report was made; `make lab` writes them. "+
			"The micro-benchmarks above give the reconnect cost against a live in-process server.\n\n", orDash(r.LabPath))
		return
	}
	p("From `%s`, as the lab wrote it:\n\n|", r.LabPath)
	for _, h := range r.Lab[0] {
		p(" %s |", h)
	}
	p("\n|")
	for range r.Lab[0] {
		p("---|")
	}
	p("\n")
	for _, row := range r.Lab[1:] {
		p("|")
		for _, c := range row {
			p(" %s |", strings.ReplaceAll(c, "|", "\\|"))
		}
		p("\n")
	}
	p("\n")
}

func (r *Report) method(p func(string, ...any)) {
	p("## How this was measured\n\n")
	p("- One NFS-Ganesha on 127.0.0.1 serves the same export over NFSv4 (4.2, 4.1, 4.0) and NFSv3 (with rpcbind and MOUNT) to every client. " +
		"`bench/cmd/benchrun` starts it, creates the file (pseudo-random, incompressible), and runs the rounds.\n")
	p("- Page cache, honestly: the server's copy of the file is in the server machine's page cache for every contender alike " +
		"(it was just written, and 24 GiB of memory hold it), so reads measure the client, the protocol and Ganesha, not the disk. " +
		"Writes end with a COMMIT (or FILE_SYNC WRITEs), so they include Ganesha's fsync to the local disk.\n")
	p("- Reads copy to a fresh file on tmpfs (/dev/shm), writes read their source from tmpfs; every copy is checked " +
		"(size every round, SHA-256 in the first round) and removed. A contender whose copy is wrong is reported as failed, not timed.\n")
	p("- Each in-process contender dials and mounts in every round, as a program copying one file would; the command-line ones start a process per round.\n")
	p("- libnfs's nfs-cp reads over NFSv4 but writes over NFSv3: its NFSv4 write fails in Debian 12's libnfs 4.0.0 " +
		"(`Failed to write to dest file`, exit status 10, leaving an empty file).\n")
	p("- vmware/go-nfs-client is NFSv3 only and makes one call at a time (it has no XID matching between callers, so it is not safe for " +
		"concurrent use: the small-operation runs share one mount behind a mutex, and its numbers at 8 and 64 goroutines are those of one caller). " +
		"Its writes are FILE_SYNC, one at a time; it has no GETATTR method, so GETATTR is sent through its public Call and XDR decoder.\n")
	p("- The loopback ceiling of a goal is the lower of the network's (raw loopback TCP) and the storage's (the local read, or the local write+fsync) " +
		"medians: a Ganesha on this machine can serve neither faster than its network nor faster than its disk.\n")
	p("- MB/s is 10^6 bytes per second. \"÷ gonfs\" is the median over the rounds of the contender's result divided by this library's in the same round: below 1 it is slower than gonfs.\n")
	if r.ran(SameServerCopy) || r.unavailable(SameServerCopy) != "" {
		p("- The same-server copy (nfs://srv/big → nfs://srv/copy) runs on the Linux kernel's NFS server: NFS-Ganesha 4.3 answers COPY and CLONE with NFS4ERR_NOTSUPP. "+
			"`benchrun` boots it once (internal/knfsd: a user-mode Linux guest of one CPU), writes the file into it with this library, and stops it by PID at the end. "+
			"The guest has %d MiB of memory: a larger file is read by the server from its disk image, which is in the host's page cache. Either way the copy ends with a COMMIT. "+
			"Clients reach it through knfsd's forwarder, a relay on 127.0.0.1 in benchrun's own process, so a command's client CPU is its own process's alone. "+
			"Each copy is checked in the guest (its size every round, sha256sum in the first) and removed. "+
			"\"On the wire\" is the bytes the guest's tap device carried during the run, both ways, Ethernet and TCP/IP headers included (its counters in /proc/PID/net/dev, read before and after).\n",
			knfsdMemoryMiB)
		p("- libnfs nfs-cp has no same-server row: knfsd serves NFSv4 alone, and libnfs 4.0.0's NFSv4 write fails " +
			"(`Failed to write to dest file`, exit status 10), so it cannot copy within it.\n")
	}
	if r.ran(SparseDown) || r.ran(SparseUp) {
		p("- The sparse file is %s of which %s are data: ten extents of pseudo-random bytes, one at the start of each tenth of the file, holes between them and at the end. "+
			"It is created in Ganesha's export (on the host's ext4) for the download and on tmpfs for the upload. "+
			"Its copies are timed in seconds, not MB/s: the logical size over the time would credit a client for holes it did not have to move. "+
			"\"Allocated\" is the copy's st_blocks × 512 after the run (on tmpfs down, in Ganesha's export directory up): about the data's size when the copy kept the holes, the whole size when they were written as zeros. "+
			"Client CPU is seconds per copy. Their ratio is of times, per round: above 1 the contender took longer than nfscp.\n", sizeString(r.Size), iec(float64(r.SparseData)))
	}
	for _, u := range r.Unavailable {
		p("- Not available in this run: %s (%s): %s\n", u.Contender, u.Workload, u.Reason)
	}
	p("\nReproduce with `make bench` (root, Debian; installs Ganesha, rpcbind and libnfs-utils when missing, and builds knfsd's guest once).\n")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func num(v float64, n int) string {
	if n == 0 {
		return "failed"
	}
	return fmt.Sprintf("%.0f", v)
}

// cpuOf is s's client CPU per GiB, "—" where it was not measured.
func cpuOf(s Summary) string {
	if s.CPUPerGiB <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", s.CPUPerGiB)
}

func rangeOf(s Summary) string {
	if s.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f–%.0f", s.Min, s.Max)
}

func runsOf(s Summary) string {
	if s.Failed == 0 {
		return fmt.Sprint(s.N)
	}
	return fmt.Sprintf("%d (%d failed: %s)", s.N, s.Failed, strings.ReplaceAll(s.FirstErr, "|", "\\|"))
}

// ratio formats a ratio with two decimals, or two significant digits
// below 0.1 (an uncached call against the metadata cache's answer is
// 0.0020×, not 0.00×).
func ratio(r float64) string {
	switch {
	case r == 0:
		return "—"
	case r < 0.1:
		return fmt.Sprintf("%.2g×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func optNum(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

// dur formats nanoseconds with three or four significant digits.
func dur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.1f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Charted reports whether WriteChart has anything of ss to draw: a
// sequential read or write, or a machine limit.
func Charted(ss []Summary) bool {
	for _, s := range ss {
		if charted(Workload(s.Workload)) {
			return true
		}
	}
	return false
}

func charted(w Workload) bool { return w == SeqRead || w == SeqWrite || w == Limit }

// WriteChart draws the median throughput of every contender as grouped
// bars — sequential read, sequential write, and the machine's limits —
// with the min–max range as error bars, and saves it as a PNG at path.
func WriteChart(path, title string, ss []Summary) error {
	var names []string
	for _, s := range ss {
		if charted(Workload(s.Workload)) && !contains(names, s.Contender) {
			names = append(names, s.Contender)
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "MB/s (median, min–max)"
	p.Y.Min = 0
	series := []struct {
		w     Workload
		label string
		c     color.RGBA
	}{
		{SeqRead, "sequential read", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{SeqWrite, "sequential write", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
		{Limit, "machine limit", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}},
	}
	// Bars of a group are a quarter of a category apart, in data units,
	// so that the error bars can be placed on them; about 24 points at
	// this size, so bars 18 points wide do not touch.
	const step = 0.25
	width := vg.Points(18)
	for i, se := range series {
		vals := make(plotter.Values, len(names))
		var errs errPoints
		shift := float64(i-1) * step
		for j, n := range names {
			if s := find(ss, string(se.w), n); s != nil && s.N > 0 {
				vals[j] = s.Median
				errs = append(errs, errPoint{x: float64(j) + shift, y: s.Median, lo: s.Median - s.Min, hi: s.Max - s.Median})
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("bench: chart: %w", err)
		}
		bars.Color = se.c
		bars.LineStyle.Width = 0
		bars.XMin = shift
		p.Add(bars)
		p.Legend.Add(se.label, bars)
		if len(errs) > 0 {
			eb, err := plotter.NewYErrorBars(errs)
			if err != nil {
				return fmt.Errorf("bench: chart: %w", err)
			}
			p.Add(eb)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(60)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	if err := p.Save(9*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// errPoint is one error bar: at (x, y), from y-lo to y+hi.
type errPoint struct{ x, y, lo, hi float64 }

type errPoints []errPoint

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) { return e[i].lo, e[i].hi }
