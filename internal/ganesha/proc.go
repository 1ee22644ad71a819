package ganesha

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// killWait bounds how long a process may take to be reaped after SIGKILL.
// Only a process stuck in uninterruptible sleep takes longer.
const killWait = 10 * time.Second

// A process is one child process, started in its own process group with
// SIGKILL as its parent-death signal, and reaped by a goroutine that ends
// when the process does. Safe for concurrent use.
type process struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the process has been reaped
	err  error         // cmd.Wait's result; written before done is closed
}

// startProcess starts cmd. It sets cmd.SysProcAttr; cmd.Stdout and
// cmd.Stderr should be nil or *os.File, so that no copying goroutine
// outlives the process.
func startProcess(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own, so that signals reach the whole tree
		// (ip netns exec, sh, the daemon) and a terminal's ^C does not.
		Setpgid: true,
		// An interrupted test binary leaves no orphan daemon behind.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		spawnerRelease()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's group, unless the process has
// already been reaped (its pid may then belong to someone else).
func (p *process) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	// ESRCH only means the group is already gone.
	_ = syscall.Kill(-p.pid, sig)
}

// stop sends SIGTERM, waits up to grace for the process to exit, then
// sends SIGKILL and waits for it to be reaped. A zero grace kills at once.
func (p *process) stop(grace time.Duration) error {
	if grace > 0 {
		p.signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return nil
		case <-t.C:
		}
	}
	p.signal(syscall.SIGKILL)
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("ganesha: process %d not reaped %v after SIGKILL", p.pid, killWait)
	}
}

// exitError describes how the process ended; call it only after done.
func (p *process) exitError() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("ganesha: process %d exited: %v", p.pid, ee.ProcessState)
	}
	if p.err != nil {
		return fmt.Errorf("ganesha: process %d: %w", p.pid, p.err)
	}
	return fmt.Errorf("ganesha: process %d exited with status 0", p.pid)
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
		return fmt.Errorf("ganesha: start %s: %w", cmd.Path, err)
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

// epochs hands out Ganesha boot epochs (ganesha.nfsd -E). Ganesha puts its
// epoch in every client ID and stateid, and by default uses its start time
// in seconds, so two servers started in the same second could mistake one
// another's state. Each start in this process gets a distinct epoch, at
// least the current Unix time and larger than any handed out before.
var epochs struct {
	mu   sync.Mutex
	last uint32
}

func nextEpoch() uint32 {
	epochs.mu.Lock()
	defer epochs.mu.Unlock()
	e := max(uint32(time.Now().Unix()), epochs.last+1)
	epochs.last = e
	return e
}
