package lab

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

func TestWriters(t *testing.T) {
	cells := []Cell{
		{Scenario: "reset", Policy: "Hedged", Outcome: Recovered, Reconnect: 2 * time.Millisecond,
			FirstCall: 1500 * time.Millisecond, CopyDone: 4 * time.Second, SHA256: strings.Repeat("ab", 32), DataOK: true,
			Ports: []int{880, 880}, Dials: 2, Reconnects: 1},
		{Scenario: "lb-failover", Policy: "SameReservedPort", Outcome: Stuck, Reconnect: -1, FirstCall: -1, CopyDone: -1,
			Ports: []int{700}, Dials: 8, Note: "stuck: a | b; probe errors: x"},
		{Scenario: "lb-failover", Policy: "Hedged", Outcome: Failed, Reconnect: 3 * time.Second, FirstCall: -1, CopyDone: -1},
	}
	Sort(cells)
	if cells[0].Policy != "SameReservedPort" || cells[1].Policy != "Hedged" || cells[2].Scenario != "reset" {
		t.Fatalf("order: %+v", cells)
	}

	var md strings.Builder
	if err := WriteMarkdown(&md, cells); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("markdown has %d lines, want header, rule and 3 rows:\n%s", len(lines), md.String())
	}
	for _, want := range []string{
		"| lb-failover | SameReservedPort | stuck | — | — | — | — | 700 | 8 | 0 | 0 | stuck: a \\| b |",
		"| reset | Hedged | recovered | 0.0 | 1.5 | 4.0 | `abababababab` ok | 880 880 | 2 | 1 | 0 |  |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}

	var out strings.Builder
	if err := WriteCSV(&out, cells); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0][0] != "scenario" {
		t.Fatalf("csv: %q", recs)
	}
	if got := recs[3]; got[2] != "recovered" || got[3] != "0.002" || got[4] != "1.500" || got[7] != "true" || got[8] != "880 880" {
		t.Errorf("csv row %q", got)
	}
	if got := recs[1]; got[3] != "" || got[12] != "stuck: a | b; probe errors: x" {
		t.Errorf("csv row %q: want empty durations and the whole note", got)
	}
}
