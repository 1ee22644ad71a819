package bench

import (
	"fmt"
	"strings"
)

// The report's same-server and sparse copies: a headline and a table
// each. Their baseline is nfscp (the first of ours, with COPY in the
// same-server copy); the same-server copy
// is in MB/s with the bytes on the wire, the sparse copies in seconds
// with the copy's allocated size.

// copyWorkloads are the workloads this file reports, in order.
var copyWorkloads = []Workload{SameServerCopy, SparseDown, SparseUp}

// ran reports whether any contender ran w.
func (r *Report) ran(w Workload) bool {
	for _, s := range r.Throughput {
		if s.Workload == string(w) {
			return true
		}
	}
	return false
}

// baseline returns w's baseline: its first contender of ours, or nil.
func (r *Report) baseline(w Workload) *Summary {
	for i := range r.Throughput {
		if s := &r.Throughput[i]; s.Workload == string(w) && s.Ours {
			return s
		}
	}
	return nil
}

// unavailable returns why w's contenders that could not run could not,
// "" if all could.
func (r *Report) unavailable(w Workload) string {
	var why []string
	for _, u := range r.Unavailable {
		if u.Workload == string(w) && !contains(why, u.Reason) {
			why = append(why, u.Reason)
		}
	}
	return strings.Join(why, "; ")
}

// copyTitle is w's section title.
func (r *Report) copyTitle(w Workload) string {
	switch w {
	case SameServerCopy:
		return fmt.Sprintf("Same-server copy (%s within one Linux kernel NFS server: NFSv4.2 COPY against streaming)", sizeString(r.Size))
	case SparseDown:
		return fmt.Sprintf("Sparse file down (%s holding %s of data: NFS → local file on tmpfs)", sizeString(r.Size), iec(float64(r.SparseData)))
	}
	return "Sparse file up (the same file: local file on tmpfs → NFS)"
}

// copyResult is what a headline says of s: its medians, and as the
// workload measures them the bytes on the wire or the copy's size.
func copyResult(s Summary) string {
	if s.Unit == "s" {
		return fmt.Sprintf("%s s, its copy taking %s", secs(s.Median), iecOr(s.Allocated))
	}
	return fmt.Sprintf("%.0f MB/s (%s s), %s on the wire", s.Median, secs(s.Seconds), iecOr(s.Wire))
}

// copyHeadline writes w's line of the headlines, if w ran or could not.
func (r *Report) copyHeadline(p func(string, ...any), w Workload) {
	base := r.baseline(w)
	if base == nil {
		if why := r.unavailable(w); why != "" {
			p("- **%s**: not available in this run: %s\n", w, why)
		}
		return
	}
	if base.N == 0 {
		p("- **%s**: %s has no successful run.\n", w, base.Contender)
		return
	}
	p("- **%s**: %s, median %s", w, base.Contender, copyResult(*base))
	var parts []string
	for _, s := range r.Throughput {
		if s.Workload != string(w) || s.Contender == base.Contender || s.N == 0 || s.Ratio == 0 {
			continue
		}
		// How many times better the baseline did, per round: more
		// MB/s, or fewer seconds.
		factor := 1 / s.Ratio
		if s.Unit == "s" {
			factor = s.Ratio
		}
		verdict := "ahead"
		if factor <= 1 {
			verdict = "**behind**"
		}
		parts = append(parts, fmt.Sprintf("%.2f× %s (%s; %s)", factor, s.Contender, verdict, copyResult(s)))
	}
	if len(parts) > 0 {
		p(" = %s", strings.Join(parts, ", "))
	}
	p(".\n")
}

// copyTables writes the tables of the same-server and sparse copies that
// ran, and says which could not.
func (r *Report) copyTables(p func(string, ...any)) {
	for _, w := range copyWorkloads {
		if !r.ran(w) {
			if why := r.unavailable(w); why != "" {
				p("## %s\n\nNot available in this run: %s\n\n", r.copyTitle(w), why)
			}
			continue
		}
		p("## %s\n\n", r.copyTitle(w))
		if w.Sparse() {
			p("| contender | median s | min–max s | runs | time ÷ %s's (per round) | client CPU s | copy's allocated size | how |\n"+
				"|---|---:|---:|---:|---:|---:|---:|---|\n", NfscpName)
		} else {
			p("| contender | median MB/s | min–max | runs | ÷ %s (per round) | median s | client CPU s/GiB | on the wire | how |\n"+
				"|---|---:|---:|---:|---:|---:|---:|---:|---|\n", NfscpName)
		}
		for _, s := range r.Throughput {
			if s.Workload != string(w) {
				continue
			}
			note := r.Notes[s.Workload+" "+s.Contender]
			if w.Sparse() {
				p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Contender, secsOf(s.Median, s.N), secsRange(s), runsOf(s),
					ratio(s.Ratio), secsOf(s.CPU, s.N), iecOr(s.Allocated), note)
			} else {
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Contender, num(s.Median, s.N), rangeOf(s), runsOf(s),
					ratio(s.Ratio), secsOf(s.Seconds, s.N), cpuOf(s), iecOr(s.Wire), note)
			}
		}
		p("\n")
	}
}

// secs formats seconds with three significant digits.
func secs(v float64) string { return fmt.Sprintf("%.3g", v) }

// secsOf is secs(v), "failed" if no run succeeded, "—" for 0 (not
// measured).
func secsOf(v float64, n int) string {
	switch {
	case n == 0:
		return "failed"
	case v <= 0:
		return "—"
	}
	return secs(v)
}

func secsRange(s Summary) string {
	if s.N == 0 {
		return "—"
	}
	return secs(s.Min) + "–" + secs(s.Max)
}

// iec formats a byte count in B, KiB, MiB or GiB.
func iec(n float64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%.0f B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", n/(1<<30))
}

// iecOr is iec(n), "—" for 0 (not measured).
func iecOr(n float64) string {
	if n <= 0 {
		return "—"
	}
	return iec(n)
}
