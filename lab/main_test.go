package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/internal/testutil"
)

// resultsEnv names a directory; when set (make lab sets it), the run
// writes its matrix there as latest.md and latest.csv.
const resultsEnv = "GONFS_LAB_RESULTS"

func TestMain(m *testing.M) {
	if env := os.Getenv(clientEnv); env != "" {
		os.Exit(runClient(env))
	}
	if os.Geteuid() == 0 {
		deleted, err := netlab.Sweep()
		if len(deleted) > 0 {
			fmt.Fprintf(os.Stderr, "lab: deleted %d namespaces left by an interrupted run: %s\n", len(deleted), strings.Join(deleted, " "))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab: sweep:", err)
		}
	}
	netlab.TrapInterrupts()
	// Goroutine leaks are checked once, after every test: the cells run
	// as parallel subtests, where a per-test check would see its
	// siblings' goroutines.
	testutil.VerifyMain(func() int {
		code := m.Run()
		if dir := os.Getenv(resultsEnv); dir != "" {
			if err := writeResults(dir); err != nil {
				fmt.Fprintln(os.Stderr, "lab:", err)
				code = 1
			}
		}
		return code
	})
}

// writeResults writes the cells of this run to dir/latest.md and
// dir/latest.csv.
func writeResults(dir string) error {
	results.Lock()
	cells := append([]Cell(nil), results.cells...)
	results.Unlock()
	Sort(cells)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		"latest.md":  func(f *os.File) error { return WriteMarkdown(f, cells) },
		"latest.csv": func(f *os.File) error { return WriteCSV(f, cells) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "lab: wrote %d cells to %s\n", len(cells), dir)
	return nil
}

// startServer starts a Ganesha in ns, listening on bind:2049 and exporting
// the host directory export at /export.
func startServer(t *testing.T, ns *netlab.NS, bind, export string, cfg ganesha.Config) *ganesha.Server {
	t.Helper()
	cfg.NetNS, cfg.BindAddr, cfg.Port, cfg.ExportDir = ns.Name, bind, 2049, export
	return ganesha.Start(t, cfg)
}

// forEachPolicy runs one subtest per stock policy, in parallel, each in
// namespaces of its own. Each gets its own range of reserved ports.
func forEachPolicy(t *testing.T, f func(t *testing.T, pol string, minPort, maxPort int)) {
	forPolicies(t, policies, f)
}

// forPolicies is forEachPolicy for some of the stock policies; each keeps
// the port range it has in forEachPolicy.
func forPolicies(t *testing.T, pols []string, f func(t *testing.T, pol string, minPort, maxPort int)) {
	for _, pol := range pols {
		i := slices.Index(policies, pol)
		if i < 0 {
			t.Fatalf("lab: no stock policy %q", pol)
		}
		t.Run(pol, func(t *testing.T) {
			t.Parallel()
			f(t, pol, 700+60*i, 700+60*i+59)
		})
	}
}
