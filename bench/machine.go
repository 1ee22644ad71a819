package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a run took place, for the report.
type Machine struct {
	CPU       string  // model name from /proc/cpuinfo
	Cores     int     // logical CPUs
	MemoryGiB float64 // MemTotal
	Kernel    string  // uname -r
	OS        string  // PRETTY_NAME from /etc/os-release
	Ganesha   string  // ganesha.nfsd -v
	Libnfs    string  // Debian package version of libnfs-utils
	Go        string  // runtime.Version
	Start     time.Time
	End       time.Time
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute
	// averages when the run started and ended.
	LoadStart, LoadEnd string
}

// DescribeMachine fills in everything but End and LoadEnd; Finish sets
// those. Facts it cannot find are left "".
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{
		Cores:     runtime.NumCPU(),
		Go:        runtime.Version(),
		Start:     time.Now(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		LoadStart: loadAvg(),
	}
	m.CPU = field(readFile("/proc/cpuinfo"), "model name", ":")
	if kb, err := strconv.ParseFloat(strings.Fields(field(readFile("/proc/meminfo"), "MemTotal", ":") + " 0")[0], 64); err == nil {
		m.MemoryGiB = kb / (1 << 20)
	}
	m.OS = strings.Trim(field(readFile("/etc/os-release"), "PRETTY_NAME", "="), `"`)
	m.Ganesha = firstLine(output(ctx, "ganesha.nfsd", "-v"))
	m.Libnfs = firstLine(output(ctx, "dpkg-query", "-W", "-f", "${Version}", "libnfs-utils"))
	return m
}

// Finish records the end of the run.
func (m *Machine) Finish() {
	m.End = time.Now()
	m.LoadEnd = loadAvg()
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// field returns the value of the first line of s of the form
// "key SEP value" (spaces around key ignored).
func field(s, key, sep string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// output runs a command for a few seconds at most and returns its output,
// "" on failure.
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return ""
	}
	return out.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}
