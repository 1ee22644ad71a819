package netlab

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// stopWait bounds how long a process may take to be reaped after SIGKILL.
const stopWait = 10 * time.Second

// A Proc is a process started inside a namespace with NS.Start. It is
// killed with its process group, by PID, when the test ends, when the
// namespace is removed, or when the test process dies (SIGKILL as the
// parent-death signal). Safe for concurrent use.
type Proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the process has been reaped
	err  error         // cmd.Wait's result; written before done is closed
}

// Command returns a command that runs name with args inside the namespace
// (through `ip netns exec`, which execs it, so the PID is the program's).
// Set its Stdin, Stdout, Stderr (nil or *os.File, so that no copying
// goroutine outlives the process) and Env, then pass it to Start.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Start starts cmd, which Command made, in a process group of its own,
// and registers it for removal with the namespace.
func (n *NS) Start(cmd *exec.Cmd) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netlab: start %v in %s: %w", cmd.Args, n.Name, err)
	}
	p := &Proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}

// PID returns the process ID.
func (p *Proc) PID() int { return p.pid }

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns how the process ended (cmd.Wait's error); call it after Done
// is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Stop kills the process group with SIGKILL, unless the process has
// already been reaped, and waits up to 10 s for it to be.
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL) // ESRCH: the group is gone
	select {
	case <-p.done:
		return nil
	case <-time.After(stopWait):
		return errors.New("netlab: process " + fmt.Sprint(p.pid) + " not reaped 10 s after SIGKILL")
	}
}
