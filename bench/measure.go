package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonfs/nfs/internal/filehash"
	"github.com/gonfs/nfs/internal/knfsd"
)

// An Output is the copy one run of a contender makes: a local file (in
// Env.Scratch or Ganesha's export), or a file in knfsd's export, reached
// through the guest. Its zero value is not usable; Contender.Target
// makes one.
type Output struct {
	env   *Env
	local string   // the local path; "" for a file in knfsd's export
	guest string   // the name in knfsd's export, when local is ""
	sum   [32]byte // the SHA-256 its content must have
}

// guestPath is o's path in the guest. Target's names need no quoting.
func (o Output) guestPath() string { return knfsd.ExportPath + "/" + o.guest }

// Check compares the copy with its source: its size always, and its
// SHA-256 too if full is set. It returns the storage the copy takes
// (st_blocks × 512). The error says what differs.
func (o Output) Check(ctx context.Context, full bool) (allocated int64, err error) {
	var size int64
	if o.local != "" {
		fi, err := os.Stat(o.local)
		if err != nil {
			return 0, fmt.Errorf("bench: the copy: %w", err)
		}
		size, allocated = fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks*512
	} else {
		out, err := o.env.Knfsd.Exec(ctx, "stat -c '%s %b' "+o.guestPath())
		if err != nil {
			return 0, fmt.Errorf("bench: the copy: %w", err)
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			return 0, fmt.Errorf("bench: stat %s in knfsd's guest: %q", o.guestPath(), out)
		}
		size, err = strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			allocated, err = strconv.ParseInt(f[1], 10, 64)
			allocated *= 512
		}
		if err != nil {
			return 0, fmt.Errorf("bench: stat %s in knfsd's guest: %q", o.guestPath(), out)
		}
	}
	if size != o.env.Size {
		return allocated, fmt.Errorf("bench: %s has %d bytes, want %d", o, size, o.env.Size)
	}
	if !full {
		return allocated, nil
	}
	var got string
	if o.local != "" {
		got, err = filehash.SHA256(o.local)
	} else {
		var out string
		out, err = o.env.Knfsd.Exec(ctx, "sha256sum "+o.guestPath())
		got, _, _ = strings.Cut(out, " ")
	}
	if err != nil {
		return allocated, fmt.Errorf("bench: %w", err)
	}
	if want := hex.EncodeToString(o.sum[:]); got != want {
		return allocated, fmt.Errorf("bench: %s has sha256 %s, want %s", o, got, want)
	}
	return allocated, nil
}

// Remove removes the copy; one that does not exist is no error.
func (o Output) Remove(ctx context.Context) error {
	if o.local != "" {
		return removeQuiet(o.local)
	}
	if _, err := o.env.Knfsd.Exec(ctx, "rm -f "+o.guestPath()); err != nil {
		return fmt.Errorf("bench: removing the copy: %w", err)
	}
	return nil
}

// String names the copy: its local path, or knfsd's and its path there.
func (o Output) String() string {
	if o.local != "" {
		return o.local
	}
	return "knfsd:" + o.guestPath()
}

// Measure runs c once, as round number round (0 and below are warm-up
// rounds), bounded by timeout, and checks what it made: the copy's size
// every round, its SHA-256 in the warm-up rounds and round 1. It records
// the time, the client's CPU, and where the workload calls for them the
// bytes on knfsd's wire and the copy's allocated size. A run that fails,
// or whose copy is wrong, is a Sample with Err set.
func Measure(ctx context.Context, env *Env, c Contender, round int, timeout time.Duration) Sample {
	s := Sample{Workload: string(c.Workload), Contender: c.Name, Ours: c.Ours, Run: round, Unit: c.Workload.Unit()}
	target, out := c.Target(env, "bench")
	if err := s.run(ctx, env, c, target, out, round <= 1, timeout); err != nil {
		s.Err = err.Error()
	}
	if !c.NoOutput {
		if err := out.Remove(ctx); err != nil && s.Err == "" {
			s.Err = err.Error()
			s.Value = 0
		}
	}
	return s
}

// run does Measure's work but the removal of the copy; it sets s.Value
// only if it returns nil.
func (s *Sample) run(ctx context.Context, env *Env, c Contender, target string, out Output, full bool, timeout time.Duration) error {
	if !c.NoOutput {
		if err := out.Remove(ctx); err != nil {
			return err
		}
	}
	// What earlier runs left dirty (a 1 GiB write, a copy just removed)
	// goes to disk first, not while this run is timed: the disk-heavy
	// workloads made the reads after them erratic (one run in five slow
	// by 3×, every client's CPU with it).
	syscall.Sync()
	wire := c.Workload == SameServerCopy
	var to0, from0 int64
	if wire {
		var err error
		if to0, from0, err = env.Knfsd.NetBytes(); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cpu0 := cpuTime(c.Child)
	start := time.Now()
	err := c.Run(rctx, env, target)
	s.Elapsed = time.Since(start)
	s.CPU = cpuTime(c.Child) - cpu0
	if err != nil {
		return err
	}
	if wire {
		to, from, err := env.Knfsd.NetBytes()
		if err != nil {
			return err
		}
		s.Wire = to - to0 + from - from0
	}
	if !c.NoOutput {
		allocated, err := out.Check(ctx, full)
		if err != nil {
			return err
		}
		if c.Workload.Sparse() {
			s.Allocated = allocated
		}
	}
	if c.Workload.Unit() == "s" {
		s.Value = s.Elapsed.Seconds()
	} else {
		s.Value = float64(env.Size) / s.Elapsed.Seconds() / 1e6
	}
	return nil
}
