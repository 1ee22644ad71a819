package ganesha

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// TB is the part of testing.TB that Start and Restart use. *testing.T and
// *testing.B satisfy it; programs that run a server outside a test (make
// demo, the benchmark runner) use a *Program.
type TB interface {
	Helper()
	Name() string
	TempDir() string
	Cleanup(func())
	Logf(format string, args ...any)
	Error(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
}

// A Program is a TB for a program's main goroutine: failures are printed
// to its writer, and Fatal, Fatalf and Skipf run the cleanups and then
// end the program with exit status 1. Close runs the cleanups (stopping
// every server started with it and removing its temporary directories);
// call it before the program exits. A Program is safe for concurrent use,
// but Fatal ends the whole process, so call it only where a failure
// really is the end.
type Program struct {
	name string
	w    io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

var _ TB = (*Program)(nil)

// NewProgram returns a Program named name (used in generated file
// names) that reports to w (os.Stderr if nil).
func NewProgram(name string, w io.Writer) *Program {
	if w == nil {
		w = os.Stderr
	}
	return &Program{name: name, w: w}
}

// Helper does nothing.
func (p *Program) Helper() {}

// Name returns the name given to NewProgram.
func (p *Program) Name() string { return p.name }

// TempDir creates a fresh temporary directory that Close removes. It
// ends the program if the directory cannot be created.
func (p *Program) TempDir() string {
	dir, err := os.MkdirTemp("", "gonfs-"+p.name+"-")
	if err != nil {
		p.Fatal(err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Cleanup registers f to run at Close, after the functions registered
// later.
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	p.cleanups = append(p.cleanups, f)
	p.mu.Unlock()
}

// Logf prints a line.
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Error prints a line and marks the program failed.
func (p *Program) Error(args ...any) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	fmt.Fprintln(p.w, args...)
}

// Fatal prints a line, runs the cleanups and exits with status 1.
func (p *Program) Fatal(args ...any) {
	p.Error(args...)
	p.exit()
}

// Fatalf is Fatal with a format.
func (p *Program) Fatalf(format string, args ...any) {
	p.Fatal(fmt.Sprintf(format, args...))
}

// Skipf is Fatalf: a program cannot skip what it needs.
func (p *Program) Skipf(format string, args ...any) {
	p.Fatal(fmt.Sprintf(format, args...))
}

// Failed reports whether Error or Fatal was called.
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Close runs the registered cleanups, last registered first. It is safe
// to call more than once; each cleanup runs once.
func (p *Program) Close() {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			return
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		f()
	}
}

func (p *Program) exit() {
	p.Close()
	os.Exit(1)
}
