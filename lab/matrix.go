// Package lab is the fault lab: the failures NFS users meet in the field
// (load-balancer failover, a NAT gateway reboot, floating-IP failback,
// server restarts, resets and long blackholes) reproduced with network
// namespaces and real NFS-Ganesha servers (package internal/netlab), and
// every stock reconnect policy measured against each of them.
//
// The scenarios are the package's tests (go test ./lab/ -run TestLBFailover);
// each runs the client as a separate process inside a client namespace,
// injects its fault in the middle of a copy (64 MiB; 24 MiB in the NFSv4.0
// cells), and checks the outcome
// strictly. This file holds what the tests produce: one Cell per scenario
// and policy, written as a markdown table and as CSV (make lab).
package lab

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outcome is how a cell ended.
type Outcome string

// The outcomes of a cell.
const (
	// Recovered: the copy finished with the right data and calls succeeded
	// again after the fault, within the lab's bound.
	Recovered Outcome = "recovered"
	// Stuck: nothing got through within the lab's bound after the fault.
	// The expected result for SameReservedPort behind stale middlebox
	// state; a failure for any other cell.
	Stuck Outcome = "stuck"
	// Failed: the client gave up with an error, or recovered with wrong
	// data or a duplicated operation.
	Failed Outcome = "failed"
)

// A Cell is the measurement of one policy in one scenario.
type Cell struct {
	Scenario string
	Policy   string
	Outcome  Outcome
	// Reconnect is the time from the (last) fault to the first TCP
	// connection the client made after it; negative if none. It shows
	// the port choice at work even where the NFS layer then fails.
	Reconnect time.Duration
	// FirstCall is the time from the (last) fault to the first successful
	// call issued after it; negative if there was none.
	FirstCall time.Duration
	// CopyDone is the time from the (last) fault to the end of the
	// copy that was running when it hit (its COMMIT and CLOSE included);
	// negative if it did not finish.
	CopyDone time.Duration
	// SHA256 is the hex SHA-256 of the file as the server stored it, ""
	// if it was not read; DataOK says whether it matched what was sent.
	SHA256 string
	DataOK bool
	// Ports are the local ports of the client's connections, oldest first.
	Ports []int
	// Dials counts dial attempts; Reconnects connections after the first.
	Dials      int
	Reconnects uint64
	// Duplicates counts probe MKDIRs answered NFS4ERR_EXIST: a call that
	// ran twice.
	Duplicates int
	// Note explains a failure, briefly.
	Note string
}

// scenarioOrder and policyOrder order the table; unknown names sort last,
// alphabetically.
var (
	scenarioOrder = []string{"lb-failover", "lb-failover-defaults", "lb-failover-idle-defaults", "dns-move-defaults", "nat-reboot/client1", "nat-reboot/client2", "floating-ip", "floating-ip-failback", "server-restart", "server-outage-15s", "server-outage-60s", "server-outage-5m", "reset", "reset-connections4", "reset-v4.0", "lb-failover-v4.0", "lease-blackhole"}
	policyOrder   = []string{"SameReservedPort", "NewReservedPort", "Ephemeral", "Hedged"}
)

// Sort orders cells by scenario, then policy, in the order the report lists them.
func Sort(cells []Cell) {
	rank := func(order []string, s string) int {
		if i := slices.Index(order, s); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(cells, func(a, b Cell) int {
		if d := rank(scenarioOrder, a.Scenario) - rank(scenarioOrder, b.Scenario); d != 0 {
			return d
		}
		if d := strings.Compare(a.Scenario, b.Scenario); d != 0 {
			return d
		}
		if d := rank(policyOrder, a.Policy) - rank(policyOrder, b.Policy); d != 0 {
			return d
		}
		return strings.Compare(a.Policy, b.Policy)
	})
}

// seconds formats d in seconds with one decimal, or "—" when negative.
func seconds(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
}

func ports(p []int) string {
	s := make([]string, len(p))
	for i, v := range p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, " ")
}

// WriteMarkdown writes cells as a markdown table, one row per cell, with
// the first clause of each note.
func WriteMarkdown(w io.Writer, cells []Cell) error {
	var b strings.Builder
	b.WriteString("| scenario | policy | result | fault → reconnect (s) | fault → first call (s) | fault → copy done (s) | sha256 | local ports | dials | reconnects | duplicates | note |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---|\n")
	for _, c := range cells {
		sum := "—"
		if c.SHA256 != "" {
			sum = "`" + c.SHA256[:min(12, len(c.SHA256))] + "`"
			if c.DataOK {
				sum += " ok"
			} else {
				sum += " WRONG"
			}
		}
		note := strings.NewReplacer("|", `\|`, "\n", " ").Replace(shortNote(c.Note))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %s |\n",
			c.Scenario, c.Policy, c.Outcome, seconds(c.Reconnect), seconds(c.FirstCall), seconds(c.CopyDone), sum,
			ports(c.Ports), c.Dials, c.Reconnects, c.Duplicates, note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shortNote returns the first clause of a note, at most 100 bytes; the
// CSV keeps it whole.
func shortNote(note string) string {
	if i := strings.Index(note, "; "); i >= 0 {
		note = note[:i]
	}
	if len(note) > 100 {
		note = note[:97] + "..."
	}
	return note
}

// WriteCSV writes cells as CSV with a header line; durations in seconds
// with millisecond precision, empty when there was none.
func WriteCSV(w io.Writer, cells []Cell) error {
	cw := csv.NewWriter(w)
	dur := func(d time.Duration) string {
		if d < 0 {
			return ""
		}
		return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	}
	if err := cw.Write([]string{"scenario", "policy", "result", "reconnect_s", "first_call_s", "copy_done_s", "sha256", "data_ok",
		"local_ports", "dials", "reconnects", "duplicates", "note"}); err != nil {
		return err
	}
	for _, c := range cells {
		if err := cw.Write([]string{c.Scenario, c.Policy, string(c.Outcome), dur(c.Reconnect), dur(c.FirstCall), dur(c.CopyDone),
			c.SHA256, strconv.FormatBool(c.DataOK), ports(c.Ports), strconv.Itoa(c.Dials),
			strconv.FormatUint(c.Reconnects, 10), strconv.Itoa(c.Duplicates), c.Note}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
