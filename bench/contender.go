package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Workload names what is measured.
type Workload string

// The throughput workloads.
const (
	// SeqRead copies TestFile from the server to a local file.
	SeqRead Workload = "seq-read"
	// SeqWrite copies Env.Src to a new file on the server.
	SeqWrite Workload = "seq-write"
	// Limit is a machine limit moving Env.Size bytes without NFS.
	Limit Workload = "limit"
)

// A Contender is one way of moving Env.Size bytes: a client's sequential
// read or write, or a machine limit. Its zero value is not usable.
type Contender struct {
	// Name identifies the contender in tables and charts.
	Name string
	// Workload is what it does.
	Workload Workload
	// Ours marks this library's own contenders; the first of a
	// workload is the baseline that peers are compared with.
	Ours bool
	// Note is a remark for the report: protocol version, sink, caveats.
	Note string
	// NoOutput says Run leaves no file to check (a pure transfer).
	NoOutput bool
	// Available reports why the contender cannot run here, or nil.
	// nil means it always can.
	Available func(env *Env) error
	// ToExport says Run creates a file in the export: target is then
	// its name there. Otherwise target is a local path in Env.Scratch.
	// True for every SeqWrite contender.
	ToExport bool
	// Run does the work once: it copies TestFile to the local path
	// target (SeqRead), or Env.Src to the export's file named target
	// (SeqWrite), or does what the limit says.
	Run func(ctx context.Context, env *Env, target string) error
}

// Target returns the target to give Run, made unique by tag, and the
// local path of the file Run produces there (to check and remove).
func (c Contender) Target(env *Env, tag string) (target, local string) {
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(c.Name+"-"+tag))
	if c.ToExport {
		return slug, env.LocalPath(slug)
	}
	p := filepath.Join(env.Scratch, slug)
	return p, p
}

// A Command is a contender that runs a program once per run. Each
// argument may contain these placeholders:
//
//	{host}      the server's address, 127.0.0.1
//	{port}      the NFS port
//	{mountport} the NFSv3 MOUNT port
//	{pseudo}    the export's path, /export
//	{remote}    the file's name in the export (TestFile for reads)
//	{local}     the local file: the destination of a read, the source of a write
//
// The first argument is the program: a key of Env.Tools, or a name looked
// up in PATH.
type Command struct {
	Name     string
	Workload Workload // SeqRead or SeqWrite
	Ours     bool
	Note     string
	Args     []string
}

// Contender returns c as a Contender.
func (c Command) Contender() Contender {
	return Contender{
		Name:     c.Name,
		Workload: c.Workload,
		Ours:     c.Ours,
		Note:     c.Note,
		ToExport: c.Workload == SeqWrite,
		Available: func(env *Env) error {
			_, err := c.program(env)
			return err
		},
		Run: c.run,
	}
}

func (c Command) program(env *Env) (string, error) {
	if len(c.Args) == 0 {
		return "", errors.New("bench: empty command")
	}
	if p, ok := env.Tools[c.Args[0]]; ok {
		return p, nil
	}
	p, err := exec.LookPath(c.Args[0])
	if err != nil {
		return "", fmt.Errorf("bench: %s not found: %w", c.Args[0], err)
	}
	return p, nil
}

// Expand returns c's arguments with the placeholders replaced, the
// program resolved.
func (c Command) Expand(env *Env, target string) ([]string, error) {
	prog, err := c.program(env)
	if err != nil {
		return nil, err
	}
	remote, local := TestFile, target
	if c.Workload == SeqWrite {
		remote, local = target, env.Src
	}
	r := strings.NewReplacer(
		"{host}", env.Host,
		"{port}", strconv.Itoa(env.Port),
		"{mountport}", strconv.Itoa(env.MountPort),
		"{pseudo}", env.Pseudo,
		"{remote}", remote,
		"{local}", local,
	)
	args := []string{prog}
	for _, a := range c.Args[1:] {
		args = append(args, r.Replace(a))
	}
	return args, nil
}

func (c Command) run(ctx context.Context, env *Env, target string) error {
	args, err := c.Expand(env, target)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(lastLines(out.String(), 3)))
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// An OpsContender issues one kind of small operation as fast as it can
// from several goroutines.
type OpsContender struct {
	// Name identifies the client.
	Name string
	// Op is the operation, "GETATTR" or "LOOKUP".
	Op string
	// Ours marks this library; it is the baseline of its Op.
	Ours bool
	// Note is a remark for the report.
	Note string
	// Open connects and returns the operation, safe for concurrent
	// use, and a function that disconnects.
	Open func(ctx context.Context, env *Env) (op func(context.Context) error, closeFn func() error, err error)
}

// MeasureOps calls op from g goroutines for about d (every goroutine
// stops at its first call that starts after d) and returns the number of
// calls completed and the time taken. It stops at the first error.
func MeasureOps(ctx context.Context, op func(context.Context) error, g int, d time.Duration) (int64, time.Duration, error) {
	var (
		n     atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	start := time.Now()
	deadline := start.Add(d)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := op(ctx); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					cancel()
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start), first
}

// removeQuiet removes path, ignoring a missing file.
func removeQuiet(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// CPUTime returns the CPU time, user and system, of this process and of
// its children that have ended and been waited for. Between two calls
// around one contender's run, with nothing else running, it is that
// contender's CPU: the library in process, or the command it ran.
func CPUTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
