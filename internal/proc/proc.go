// Package proc starts and stops the child processes of tests (NFS-Ganesha,
// rpcbind, the fault lab's clients) so that none outlives its test: each
// runs in a process group of its own, is killed with that group, and gets
// SIGKILL as its parent-death signal should the test binary die. Processes
// are found and killed by PID, never by name.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KillWait bounds how long Stop waits for a process to be reaped after
// SIGKILL. Only a process stuck in uninterruptible sleep takes longer.
const KillWait = 10 * time.Second

// A Process is one child process started with Start, and reaped by a
// goroutine that ends when the process does. Safe for concurrent use.
type Process struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the process has been reaped
	err  error         // cmd.Wait's result; written before done is closed
}

// Start starts cmd in a process group of its own, with SIGKILL as its
// parent-death signal. It sets cmd.SysProcAttr. cmd.Stdout and cmd.Stderr
// should be nil or *os.File, so that no copying goroutine outlives the
// process.
func Start(cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own, so that signals reach the whole tree
		// (ip netns exec, sh, the daemon) and a terminal's ^C does not.
		Setpgid: true,
		// An interrupted test binary leaves no orphan behind.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		spawnerRelease()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process ID.
func (p *Process) PID() int { return p.pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits until the process has been reaped and returns how it ended,
// as exec.Cmd.Wait does: nil for exit status 0, an *exec.ExitError for
// another status or a signal.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process's group, unless the process has already
// been reaped (its PID may then belong to someone else).
func (p *Process) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	// ESRCH only means the group is already gone.
	_ = syscall.Kill(-p.pid, sig)
}

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL and waits up to KillWait for it to be
// reaped. A zero grace kills at once. It returns an error only if the
// process has not been reaped by then.
func (p *Process) Stop(grace time.Duration) error {
	if grace > 0 {
		p.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return nil
		case <-t.C:
		}
	}
	p.Signal(syscall.SIGKILL)
	t := time.NewTimer(KillWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("proc: process %d (%s) not reaped %v after SIGKILL", p.pid, p.cmd.Path, KillWait)
	}
}

// Kill sends SIGKILL to the process pid, for processes this package did not
// start (those found inside a network namespace, say). A process that no
// longer exists is not an error.
func Kill(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("proc: refusing to kill pid %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("proc: kill %d: %w", pid, err)
	}
	return nil
}

// Alive reports whether a process with this PID exists.
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// The kernel sends a parent-death signal when the *thread* that forked the
// child exits, not the process (prctl(2); go.dev/issue/27505). The Go
// runtime ends a thread when a goroutine locked to it returns without
// unlocking, which tests that switch network namespaces do. Children are
// therefore forked from one goroutine that holds its thread locked for as
// long as any child it started is alive, so no other goroutine can run on
// (and end) that thread. When the last child is reaped the goroutine
// unlocks and returns, leaving no goroutine behind.
var spawner struct {
	mu   sync.Mutex
	reqs chan spawnReq // nil while no spawner goroutine runs
	live int           // children started through reqs and not yet reaped
	gone chan struct{} // closed when the current spawner goroutine has returned
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan<- error
}

// spawn runs cmd.Start on the spawner's thread.
func spawn(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	if spawner.reqs == nil {
		spawner.reqs = make(chan spawnReq)
		spawner.gone = make(chan struct{})
		go runSpawner(spawner.reqs, spawner.gone)
	}
	reqs := spawner.reqs
	spawner.live++ // keeps reqs open until this child is accounted for
	spawner.mu.Unlock()

	errc := make(chan error, 1)
	reqs <- spawnReq{cmd: cmd, errc: errc}
	if err := <-errc; err != nil {
		spawnerRelease()
		return fmt.Errorf("proc: start %v: %w", cmd.Args, err)
	}
	return nil
}

// spawnerRelease accounts for one child that has been reaped (or never
// started). The last one stops the spawner and waits until it has returned.
func spawnerRelease() {
	spawner.mu.Lock()
	spawner.live--
	if spawner.live > 0 {
		spawner.mu.Unlock()
		return
	}
	close(spawner.reqs)
	gone := spawner.gone
	spawner.reqs, spawner.gone = nil, nil
	spawner.mu.Unlock()
	<-gone
}

func runSpawner(reqs <-chan spawnReq, gone chan<- struct{}) {
	defer close(gone)
	runtime.LockOSThread()
	for r := range reqs {
		r.errc <- r.cmd.Start()
	}
	// Every child of this thread has been reaped: the thread may now
	// serve other goroutines, and end, without killing anyone.
	runtime.UnlockOSThread()
}

// WaitStopped waits, at most bound, until every thread of process pid is
// stopped (state T or t in /proc) or exiting. SIGSTOP returns before the
// threads stop: one busy in the kernel stops only on its way out, and
// could still answer a request sent meanwhile.
func WaitStopped(pid int, bound time.Duration) error {
	const poll = time.Millisecond
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	for i := 0; i < int(bound/poll); i++ {
		ents, err := os.ReadDir(tasks)
		if err != nil {
			return fmt.Errorf("proc: %w", err)
		}
		running := 0
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(tasks, e.Name(), "stat"))
			if err != nil {
				continue // the thread exited
			}
			// The state follows the command name, which is in parentheses
			// and may itself hold spaces or parentheses.
			st := string(b)
			j := strings.LastIndexByte(st, ')')
			if j < 0 || j+2 >= len(st) || !strings.ContainsRune("TtZX", rune(st[j+2])) {
				running++ // not stopped, nor exiting
			}
		}
		if running == 0 {
			return nil
		}
		time.Sleep(poll)
	}
	return fmt.Errorf("proc: threads of process %d still running %v after SIGSTOP", pid, bound)
}
