package bench

import (
	"context"
	"testing"
	"time"
)

// smallSize is the test file's size: a few READs and WRITEs of 1 MiB and
// a short one, so that the copy loops' edges are crossed.
const smallSize = 3<<20 + 17

// TestContendersCopyCorrectly runs every available contender once on a
// small file and checks the copy's SHA-256: a benchmark of a client that
// copies wrongly would be meaningless. nfscp is built from the examples
// module beside this one.
func TestContendersCopyCorrectly(t *testing.T) {
	env := Setup(t, smallSize)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := BuildNfscp(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env.Tools["nfscp"] = bin
	ran := map[Workload]int{}
	for i, c := range Contenders() {
		if c.Available != nil {
			if err := c.Available(env); err != nil {
				t.Errorf("%s %s: not available: %v", c.Name, c.Workload, err)
				continue
			}
		}
		target, local := c.Target(env, "test")
		if err := c.Run(ctx, env, target); err != nil {
			t.Errorf("%s %s: %v", c.Name, c.Workload, err)
			continue
		}
		ran[c.Workload]++
		if c.NoOutput {
			continue
		}
		if err := env.Check(local, true); err != nil {
			t.Errorf("%s %s (contender %d): %v", c.Name, c.Workload, i, err)
		}
		if err := removeQuiet(local); err != nil {
			t.Fatal(err)
		}
	}
	if ran[SeqRead] < 3 || ran[SeqWrite] < 3 || ran[Limit] != 3 {
		t.Errorf("contenders run per workload: %v; want at least gonfs, libnfs and vmware for reads and writes, and the three limits", ran)
	}
}

// TestOpsContenders runs each small-operation contender from 8 goroutines
// for a moment: each must complete calls without an error.
func TestOpsContenders(t *testing.T) {
	env := Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range OpsContenders() {
		op, closeFn, err := c.Open(ctx, env)
		if err != nil {
			t.Errorf("%s %s: %v", c.Name, c.Op, err)
			continue
		}
		n, _, err := MeasureOps(ctx, op, 8, 50*time.Millisecond)
		if err != nil || n == 0 {
			t.Errorf("%s %s: %d calls, %v", c.Name, c.Op, n, err)
		}
		if err := closeFn(); err != nil {
			t.Errorf("%s %s: close: %v", c.Name, c.Op, err)
		}
	}
}
