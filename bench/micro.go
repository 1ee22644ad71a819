package bench

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

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
