package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
)

// runStats counts what a run copied.
type runStats struct {
	files   int
	links   int
	dirs    int
	bytes   int64
	holes   int64 // of bytes, holes left unwritten
	server  int64 // of bytes, copied by the server (COPY, CLONE)
	elapsed time.Duration
}

// printStats writes --stats: what was copied, then for each server the
// transport and recovery counters of its client, one "key: value" line
// each so that scripts can read them.
func printStats(w io.Writer, rs runStats, cs *conns) {
	fmt.Fprintf(w, "copied: %s, %s, %s, %s in %s", count(rs.files, "file"), count(rs.links, "symlink"),
		count(rs.dirs, "directory"), formatBytes(rs.bytes), roundDuration(rs.elapsed))
	if s := rs.elapsed.Seconds(); s > 0 && rs.bytes > 0 {
		fmt.Fprintf(w, " (%s/s)", formatBytes(int64(float64(rs.bytes)/s)))
	}
	var of []string
	if rs.server > 0 {
		of = append(of, formatBytes(rs.server)+" of it copied by the server")
	}
	if rs.holes > 0 {
		of = append(of, formatBytes(rs.holes)+" holes")
	}
	if len(of) > 0 {
		fmt.Fprintf(w, "; %s", strings.Join(of, ", "))
	}
	fmt.Fprintln(w)
	cs.mu.Lock()
	all := append([]*conn(nil), cs.order...)
	cs.mu.Unlock()
	for _, cn := range all {
		<-cn.ready
		if cn.c == nil {
			fmt.Fprintf(w, "server %s: not connected\n", cn.ep.host)
			continue
		}
		writeServerStats(w, cn.ep, cn.sec, cn.c.Stats())
	}
}

// writeServerStats writes one server's counters.
func writeServerStats(w io.Writer, ep *endpoint, sec string, st nfs4.Stats) {
	s := ep.settings
	mode := "hard"
	if s.Soft {
		mode = "soft"
	}
	t := st.Transport
	if s.XprtSec != "none" {
		mode += ", xprtsec=" + s.XprtSec
	}
	if sec != "sys" {
		mode += ", sec=" + sec
	}
	fmt.Fprintf(w, "server %s (%s, policy %s, %s):\n", ep.host, ep.addr, s.Policy, mode)
	line := func(k, format string, args ...any) {
		fmt.Fprintf(w, "  %-18s "+format+"\n", append([]any{k + ":"}, args...)...)
	}
	line("connects", "%d", t.Connects)
	line("reconnects", "%d", t.Reconnects)
	line("local ports", "%s", joinInts(t.LastPorts))
	line("disconnected", "%s", roundDuration(t.Disconnected))
	line("failed dials", "%s", failedDials(t.FailedAttempts))
	if s.XprtSec != "none" {
		line("TLS handshakes", "%d (%s in all, last %s)", t.Handshakes, roundDuration(t.HandshakeTime), roundDuration(t.LastHandshake))
	}
	line("rpc calls", "%d", st.RPC.Calls)
	line("retransmits", "%d", st.RPC.Retransmits)
	line("major timeouts", "%d", st.RPC.MajorTimeouts)
	r := st.Recovery
	line("session resets", "%d", r.SessionResets)
	line("client ID resets", "%d", r.ClientIDResets)
	line("reclaims", "%d", r.Reclaims)
	line("reopens", "%d", r.Reopens)
	line("resent bytes", "%s", formatBytes(int64(r.ResentBytes)))
	if r.Time.Count > 0 {
		line("recovery time", "%s (min %s, max %s, %d recoveries)", roundDuration(r.Time.Median),
			roundDuration(r.Time.Min), roundDuration(r.Time.Max), r.Time.Count)
	}
	if r.LostFiles > 0 {
		line("lost files", "%d", r.LostFiles)
	}
	line("bytes sent", "%s", formatBytes(int64(t.BytesSent)))
	line("bytes received", "%s", formatBytes(int64(t.BytesReceived)))
	line("rsize/wsize", "%s/%s", formatBytes(int64(st.RSize)), formatBytes(int64(st.WSize)))
}

// failedDials formats the failed dial attempts by cause: "3 (connection
// refused 3)", or "0".
func failedDials(by [policy.NumCauses]uint64) string {
	var total uint64
	var parts []string
	for c, n := range by {
		if n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", policy.Cause(c), n))
		}
	}
	if total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// count gives n and the noun, in the plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func joinInts(v []int) string {
	if len(v) == 0 {
		return "none"
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " ")
}

// formatBytes gives n in binary units: "512 B", "1.5 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
