package bench

import (
	"context"
	"testing"
	"time"
)

// smallSize is the test file's size: a few READs and WRITEs of 1 MiB and
// a short one, so that the copy loops' edges are crossed.
const smallSize = 3<<20 + 17

// TestContendersCopyCorrectly measures every available contender once on
// a small file, as benchrun does, which checks the copy's SHA-256: a
// benchmark of a client that copies wrongly would be meaningless. nfscp
// is built from the examples module beside this one. The sparse copies
// must show which client keeps the holes. The same-server copies need
// knfsd, which these tests do not boot; benchrun checks their copies the
// same way.
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
	for _, c := range Contenders() {
		if c.Workload == SameServerCopy {
			if err := c.Available(env); err == nil {
				t.Errorf("%s %s: available without knfsd", c.Name, c.Workload)
			}
			continue
		}
		if c.Available != nil {
			if err := c.Available(env); err != nil {
				t.Errorf("%s %s: not available: %v", c.Name, c.Workload, err)
				continue
			}
		}
		s := Measure(ctx, env, c, 1, time.Minute)
		if s.Err != "" {
			t.Errorf("%s %s: %s", c.Name, c.Workload, s.Err)
			continue
		}
		ran[c.Workload]++
		if c.Workload.Sparse() {
			// Holes are whole pages; 64 KiB of slack for the file
			// systems' allocation.
			const slack = 64 << 10
			if c.Name == NfscpName && s.Allocated > env.SparseData+slack {
				t.Errorf("%s %s: the copy takes %d bytes; want about %d, its data", c.Name, c.Workload, s.Allocated, env.SparseData)
			}
			if c.Name == LibnfsName && s.Allocated < env.Size-slack {
				t.Errorf("%s %s: the copy takes %d bytes; want about %d, the holes written as zeros", c.Name, c.Workload, s.Allocated, env.Size)
			}
		}
	}
	if ran[SeqRead] < 3 || ran[SeqWrite] < 3 || ran[Limit] != 3 || ran[SparseDown] != 2 || ran[SparseUp] != 2 {
		t.Errorf("contenders run per workload: %v; want at least gonfs, libnfs and vmware for reads and writes, "+
			"the three limits, and nfscp and libnfs for each sparse copy", ran)
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
