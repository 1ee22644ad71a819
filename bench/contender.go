package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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
	// SameServerCopy copies TestFile to a new file on the same server,
	// Env.Knfsd, which has NFSv4.2 COPY.
	SameServerCopy Workload = "same-server-copy"
	// SparseDown copies SparseFile from the server to a local file.
	SparseDown Workload = "sparse-down"
	// SparseUp copies Env.SparseSrc to a new file on the server.
	SparseUp Workload = "sparse-up"
)

// Workloads lists every throughput workload, in the report's order.
var Workloads = []Workload{SeqRead, SeqWrite, Limit, SameServerCopy, SparseDown, SparseUp}

// Sparse reports whether w copies the sparse file, whose copies are
// timed in seconds rather than MB/s (its logical size is mostly holes)
// and whose allocated size is measured.
func (w Workload) Sparse() bool { return w == SparseDown || w == SparseUp }

// Unit is the unit of w's Sample.Value: "s" for the sparse copies, "MB/s"
// for the others.
func (w Workload) Unit() string {
	if w.Sparse() {
		return "s"
	}
	return "MB/s"
}

// A Contender is one way of moving Env.Size bytes: a client's sequential
// read or write, its copy within one server or of the sparse file, or a
// machine limit. Its zero value is not usable.
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
	// Child says Run runs a program: the client's CPU is then the
	// child's alone, without this process's (which relays knfsd's
	// connections).
	Child bool
	// Available reports why the contender cannot run here, or nil.
	// nil means it always can.
	Available func(env *Env) error
	// ToExport says Run creates a file in Ganesha's export: target is
	// then its name there. Otherwise target is a local path in
	// Env.Scratch, or for SameServerCopy a name in knfsd's export. True
	// for every SeqWrite and SparseUp contender.
	ToExport bool
	// Run does the work once: it copies TestFile to the local path
	// target (SeqRead), or Env.Src to the export's file named target
	// (SeqWrite), or TestFile to the file named target in knfsd's export
	// (SameServerCopy), or SparseFile and Env.SparseSrc as SeqRead and
	// SeqWrite do TestFile and Env.Src (SparseDown, SparseUp), or does
	// what the limit says.
	Run func(ctx context.Context, env *Env, target string) error
}

// Target returns the target to give Run, made unique by tag, and the
// copy Run makes there (to check and remove).
func (c Contender) Target(env *Env, tag string) (string, Output) {
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(c.Name+"-"+tag))
	out := Output{env: env, sum: env.Sum}
	if c.Workload.Sparse() {
		out.sum = env.SparseSum
	}
	switch {
	case c.Workload == SameServerCopy:
		out.guest = slug
		return slug, out
	case c.ToExport:
		out.local = env.LocalPath(slug)
		return slug, out
	}
	out.local = filepath.Join(env.Scratch, slug)
	return out.local, out
}

// A Command is a contender that runs a program once per run. Each
// argument may contain these placeholders:
//
//	{host}      the server's address, 127.0.0.1
//	{port}      the NFS port
//	{mountport} the NFSv3 MOUNT port
//	{pseudo}    the export's path: /export on Ganesha, "" on knfsd (whose
//	            export is the NFSv4 root)
//	{remote}    the file's name in the export: the source of a read or a
//	            same-server copy, the destination of a write
//	{local}     the local file: the destination of a read, the source of a write
//	{copy}      the destination's name in the export, of a same-server copy
//
// The server is Env.Knfsd for SameServerCopy, Ganesha for the others. The
// first argument is the program: a key of Env.Tools, or a name looked up
// in PATH.
type Command struct {
	Name     string
	Workload Workload // not Limit
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
		Child:    true,
		ToExport: c.Workload == SeqWrite || c.Workload == SparseUp,
		Available: func(env *Env) error {
			if c.Workload == SameServerCopy && env.Knfsd == nil {
				return env.knfsdMissing()
			}
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
	host, port, pseudo := env.Host, env.Port, env.Pseudo
	remote, local, dest := TestFile, target, ""
	switch c.Workload {
	case SeqWrite:
		remote, local = target, env.Src
	case SparseDown:
		remote = SparseFile
	case SparseUp:
		remote, local = target, env.SparseSrc
	case SameServerCopy:
		if env.Knfsd == nil {
			return nil, env.knfsdMissing()
		}
		var p string
		host, p, err = net.SplitHostPort(env.Knfsd.Addr())
		if err == nil {
			port, err = strconv.Atoi(p)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: knfsd's address %q: %w", env.Knfsd.Addr(), err)
		}
		pseudo, local, dest = "", "", target
	}
	r := strings.NewReplacer(
		"{host}", host,
		"{port}", strconv.Itoa(port),
		"{mountport}", strconv.Itoa(env.MountPort),
		"{pseudo}", pseudo,
		"{remote}", remote,
		"{local}", local,
		"{copy}", dest,
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

// cpuTime returns the CPU time, user and system, of this process's
// children that have ended and been waited for, and of this process too
// unless childrenOnly. Between two calls around one contender's run, with
// nothing else running, it is that contender's CPU: the library in
// process, or the command it ran (childrenOnly: this process relays
// knfsd's connections meanwhile).
func cpuTime(childrenOnly bool) time.Duration {
	who := []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN}
	if childrenOnly {
		who = who[1:]
	}
	var total time.Duration
	for _, w := range who {
		var ru syscall.Rusage
		if syscall.Getrusage(w, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
