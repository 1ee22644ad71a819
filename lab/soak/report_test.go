package soak

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// report is what a run found, for the test's verdict and the markdown
// report.
type report struct {
	Seed               uint64
	Duration           time.Duration // asked for; 0: one round
	Workers            int
	Start, End         time.Time
	LoadStart, LoadEnd string
	Faults             []fault
	Result             *clientResult
	DiskFiles          int      // files compared on the server's disk
	DiskProblems       []string // differences between the disk and the model
}

// check fails t for every finding: an error returned by the hard
// client, wrong data, a name present or absent against the model, a
// re-execution on a surviving session, a leak.
func (r *report) check(t *testing.T) {
	t.Helper()
	res := r.Result
	if res.Err != "" {
		t.Errorf("client: %s", res.Err)
	}
	for _, f := range res.Findings {
		t.Errorf("finding at %s: %s", f.Start.Format(timeOfDay), f.Msg)
	}
	for _, p := range r.DiskProblems {
		t.Errorf("server's disk: %s", p)
	}
	if res.Stalled {
		return // nothing was measured after the workload
	}
	if res.GoroutineLeak != "" {
		t.Errorf("goroutines: %d before the dial, %d after Close:\n%s", res.GoroutinesBefore, res.GoroutinesAfter, res.GoroutineLeak)
	}
	if res.HeapAfter > res.HeapBefore+heapSlack {
		t.Errorf("heap after Close: %s, before the dial %s: more than %s retained",
			mib(res.HeapAfter), mib(res.HeapBefore), mib(heapSlack))
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	res := r.Result
	length := "one round of every fault"
	if r.Duration > 0 {
		length = r.Duration.String()
	}
	p("# Soak run")
	p("")
	p("- seed %d (`SOAK_SEED=%d` replays the schedule and the choices, not the timing); asked for: %s; ran %s",
		r.Seed, r.Seed, length, r.End.Sub(r.Start).Round(time.Second))
	p("- %s; %d CPUs; load average %s at the start, %s at the end; race detector %s",
		conditions(), runtime.NumCPU(), r.LoadStart, r.LoadEnd, onOff(raceEnabled))
	p("- %d workers on one client; %d faults; %s written and acknowledged, %s read back and compared",
		r.Workers, len(r.Faults), mib(uint64(res.Written)), mib(uint64(res.Read)))
	p("")

	p("## Faults")
	p("")
	p("| fault | injected | survived | recovery median (s) | recovery max (s) | reconnects | session resets | client ID resets |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, kind := range faultKinds {
		var n, ok int
		var rec []time.Duration
		var reconn, sess, cid uint64
		for _, f := range r.Faults {
			if f.Kind != kind {
				continue
			}
			n++
			reconn += f.Reconnects
			sess += f.SessionResets
			cid += f.ClientIDResets
			if f.Recovered {
				ok++
				rec = append(rec, f.Recovery)
			}
		}
		med, mx := "—", "—"
		if len(rec) > 0 {
			slices.Sort(rec)
			med = fmt.Sprintf("%.1f", rec[len(rec)/2].Seconds())
			mx = fmt.Sprintf("%.1f", rec[len(rec)-1].Seconds())
		}
		p("| %s | %d | %d | %s | %s | %d | %d | %d |", kind, n, ok, med, mx, reconn, sess, cid)
	}
	p("")
	p("Recovery: from the end of the injection to the end of the first operation issued after it.")
	p("")

	p("## Operations")
	p("")
	p("| operation | succeeded and checked | allowed by the protocol | findings | longest (s) |")
	p("|---|---:|---:|---:|---:|")
	for _, kind := range opKinds {
		c := res.Ops[kind]
		if c == nil {
			continue
		}
		p("| %s | %d | %d | %d | %.1f |", kind, c.OK, c.Allowed, c.Failures, res.Latency[kind].Seconds())
	}
	p("")
	if len(res.Allowed) > 0 {
		var reasons []string
		for _, o := range res.Allowed {
			if !slices.Contains(reasons, o.Reason) {
				reasons = append(reasons, o.Reason)
			}
		}
		for _, why := range reasons {
			n := 0
			for _, o := range res.Allowed {
				if o.Reason == why {
					n++
				}
			}
			p("Allowed by the protocol (%d): %s.", n, why)
			p("")
			for _, o := range res.Allowed {
				if o.Reason == why {
					p("- %s %s at %s (took %.1f s, during %s): %s", o.Op, o.Name, o.Start.Format(timeOfDay), o.Took.Seconds(),
						r.during(o.Start, o.Start.Add(o.Took)), o.Err)
				}
			}
			p("")
		}
	}

	p("## Findings")
	p("")
	if res.Err != "" {
		p("- client: %s", res.Err)
	}
	for _, f := range res.Findings {
		p("- at %s (during %s): %s", f.Start.Format(timeOfDay), r.during(f.Start, f.End), f.Msg)
	}
	for _, d := range r.DiskProblems {
		p("- server's disk: %s", d)
	}
	if res.Err == "" && len(res.Findings) == 0 && len(r.DiskProblems) == 0 {
		p("None: no error reached a caller, every read matched the model, every listing held exactly the model's names,")
		p("and the exported directory holds exactly the %d files the client acknowledged, with the acknowledged content.", r.DiskFiles)
	}
	p("")

	st := res.Stats
	p("## Client")
	p("")
	p("- RPC: %d calls, %d retransmitted on a new connection, %d major timeouts, %d replies matching no call",
		st.RPC.Calls, st.RPC.Retransmits, st.RPC.MajorTimeouts, st.RPC.UnknownXIDs)
	p("- transport: %d reconnects; local ports of the last connections %v", st.Transport.Reconnects, st.Transport.LastPorts)
	rs := st.Recovery
	p("- recovery: %d rebinds, %d session resets, %d client ID resets, %d calls re-driven, %d reclaims, %d re-opens, %d grace waits, %d files lost, %s re-sent; recovery time median %v, max %v",
		rs.Rebinds, rs.SessionResets, rs.ClientIDResets, rs.Redriven, rs.Reclaims, rs.Reopens, rs.GraceWaits, rs.LostFiles,
		mib(rs.ResentBytes), rs.Time.Median.Round(time.Millisecond), rs.Time.Max.Round(time.Millisecond))
	p("- goroutines: %d before the dial, %d after Close (%v)", res.GoroutinesBefore, res.GoroutinesAfter, res.ClosedIn.Round(time.Millisecond))
	p("- heap after GC: %s before the dial, %s at the end with the client open (peak sampled during the run %s), %s after Close",
		mib(res.HeapBefore), mib(res.HeapAtEnd), mib(res.HeapPeak), mib(res.HeapAfter))
	return b.String()
}

// during names the faults whose time, from taking effect to the client's
// recovery, overlaps [start, end].
func (r *report) during(start, end time.Time) string {
	var names []string
	for i, f := range r.Faults {
		if !f.At.After(end) && !f.Lifted.Add(max(f.Recovery, 0)).Before(start) {
			names = append(names, fmt.Sprintf("fault %d, %s", i+1, f.Kind))
		}
	}
	if len(names) == 0 {
		return "no fault"
	}
	return strings.Join(names, "; ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// conditions names the kernel and the NFS-Ganesha version.
func conditions() string {
	kernel, _ := exec.Command("uname", "-r").Output()
	ganesha, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", "nfs-ganesha").Output()
	return fmt.Sprintf("Linux %s, NFS-Ganesha %s", strings.TrimSpace(string(kernel)), strings.TrimSpace(string(ganesha)))
}
