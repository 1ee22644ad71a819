package netlab

import (
	"fmt"
	"os/exec"

	"github.com/gonfs/nfs/internal/proc"
)

// Command returns a command that runs name with args inside the namespace
// (through `ip netns exec`, which execs it, so the PID is the program's).
// Set its Stdin, Stdout, Stderr (nil or *os.File, so that no copying
// goroutine outlives the process) and Env, then pass it to Start.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Start starts cmd, which Command made, with proc.Start (a process group
// of its own, SIGKILL as its parent-death signal), and registers it with
// the namespace: it is killed with its group when the test ends or the
// namespace is removed.
func (n *NS) Start(cmd *exec.Cmd) (*proc.Process, error) {
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("netlab: in %s: %w", n.Name, err)
	}
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}
