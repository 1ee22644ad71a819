package knfsd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

// Pause stops the guest's kernel with SIGSTOP, as a hung server: nfsd's
// threads, the guest's TCP stack and its network driver all live in the
// UML kernel's host process, so nothing is answered and the guest
// acknowledges nothing. It returns once every thread of that process has
// stopped. Resume undoes it; a cleanup registered on tb resumes the guest
// (before Start's cleanup stops it, which kills it either way).
//
// Through Addr, a client still sees its TCP segments acknowledged: its
// peer is the forwarder in the test process, whose host kernel takes what
// the client sends until the forwarder's buffers towards the guest are
// full, then advertises a zero window and answers the client's window
// probes. So the client sees what it sees of a stopped NFS-Ganesha, a
// live path and a server that does not answer, and not a dead path (a
// client dialing GuestAddr from inside NetNS would see that). One
// difference: a new connection to Addr is accepted, and reset when the
// forwarder's dial of the guest gives up (10 s), where a stopped
// Ganesha's listening socket would complete the handshake and then say
// nothing.
//
// While the guest is paused, Exec and the methods that use it
// (RestartNFSD, WriteFile, ReadFile, ...) wait for Resume or their
// context. Do not pause the Shared server: other tests use it.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, err := s.kernelPIDLocked()
	if err != nil {
		tb.Fatalf("knfsd: pause: %v", err)
	}
	// The UML kernel's children are the guest's user processes (nfsd's
	// daemons, the control loop), each traced by the kernel and waiting
	// in a ptrace stop whenever the kernel is not running it: stopping
	// the kernel stops them too. They are not signalled: a SIGSTOP
	// reaching a traced child is reported to the UML kernel, which
	// takes an unexpected signal of its child for a fatal one.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("knfsd: pause: SIGSTOP %d: %v", pid, err)
	}
	tb.Cleanup(s.Resume)
	if err := proc.WaitStopped(pid, 10*time.Second); err != nil {
		tb.Fatalf("knfsd: pause: %v", err)
	}
}

// Resume continues a guest stopped by Pause (SIGCONT to its kernel). It
// does nothing to a guest that is not paused or is gone. The guest's
// clock jumps by the time it was stopped: a pause longer than the lease
// lets nfsd's laundromat find every client's lease expired.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid, err := s.kernelPIDLocked(); err == nil {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// kernelPIDLocked returns the PID of the UML kernel's host process: the
// one child of unshare (see boot). While unshare is alive and not yet
// reaped, its child's PID cannot belong to another process.
func (s *Server) kernelPIDLocked() (int, error) {
	if s.stopped || s.guest == nil || s.guest.Exited() {
		return 0, errors.New("the guest is not running")
	}
	u := s.guest.PID()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", u, u))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("unshare (%d) has children %q; want the UML kernel alone", u, f)
	}
	return strconv.Atoi(f[0])
}
