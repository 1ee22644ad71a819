package proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
)

// The spawner goroutine and the reapers must be gone once every child
// has been reaped.
func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }

// start starts name with args and stops it when t ends.
func start(t *testing.T, name string, args ...string) *Process {
	t.Helper()
	p, err := Start(exec.Command(name, args...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(0); err != nil {
			t.Error(err)
		}
	})
	return p
}

// TestOutlivesSpawningThread: a child started from a goroutine whose OS
// thread then ends (a goroutine that locks its thread and returns without
// unlocking, as a test that enters a network namespace does) is not killed
// by its parent-death signal.
func TestOutlivesSpawningThread(t *testing.T) {
	// Keep this goroutine's thread, which may be the main thread (one the
	// runtime never ends), away from the goroutine below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type started struct {
		p   *Process
		err error
	}
	res := make(chan started, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		p, err := Start(exec.Command("sleep", "60"))
		res <- started{p, err}
	}()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = r.p.Stop(0) })
	select {
	case <-r.p.Done():
		t.Fatalf("the child died with the thread of the goroutine that started it: %v", r.p.Wait())
	case <-time.After(500 * time.Millisecond):
	}
}

// TestStopKillsTheGroup: Stop reaches the whole process group, the
// child's own children included, and SIGKILLs a process that ignores
// SIGTERM once the grace period is over.
func TestStopKillsTheGroup(t *testing.T) {
	p := start(t, "sh", "-c", `trap "" TERM; sleep 60 & wait`)
	grandchild := waitChild(t, p.PID())
	began := time.Now()
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Errorf("Stop returned after %v, before the grace period was over, although the shell ignores SIGTERM", d)
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Wait = %v, want death by SIGKILL", err)
	}
	for deadline := time.Now().Add(5 * time.Second); running(grandchild); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the child's child %d outlived Stop", grandchild)
		}
	}
	if !p.Exited() {
		t.Error("Exited is false after Stop")
	}
	p.Signal(syscall.SIGKILL) // reaped: a no-op, not a signal to a reused PID
}

// TestStopGraceful: a process that exits on SIGTERM is not killed, and
// Wait reports its exit.
func TestStopGraceful(t *testing.T) {
	p := start(t, "sh", "-c", `trap "exit 3" TERM; while :; do sleep 0.05; done`)
	time.Sleep(100 * time.Millisecond) // let the shell install its trap
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3 from the shell's trap", err)
	}
}

func TestStartFailure(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/program")); err == nil || !strings.Contains(err.Error(), "/nonexistent/program") {
		t.Errorf("Start of a missing program: %v, want an error naming it", err)
	}
	// The failed start released the spawner: TestMain's leak check sees
	// to that.
}

func TestKillByPID(t *testing.T) {
	if err := Kill(1); err == nil {
		t.Error("Kill(1) succeeded")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) {
		t.Fatalf("Alive(%d) = false for a running child", pid)
	}
	if err := Kill(pid); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if Alive(pid) {
		t.Errorf("Alive(%d) = true after Kill and Wait", pid)
	}
	if err := Kill(pid); err != nil {
		t.Errorf("Kill of a process that is gone: %v, want nil", err)
	}
}

// waitChild waits until process ppid has a child and returns its PID.
func waitChild(t *testing.T, ppid int) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out, err := exec.Command("pgrep", "-P", strconv.Itoa(ppid)).Output()
		if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no child of %d", ppid)
	return 0
}

// running reports whether process pid exists and is not a zombie (an
// orphan waits as one until init reaps it).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestWaitStopped: a process that is merely asleep is not stopped; after
// SIGSTOP it is, and after SIGCONT it runs again.
func TestWaitStopped(t *testing.T) {
	p := start(t, "sleep", "60")
	if err := WaitStopped(p.PID(), 50*time.Millisecond); err == nil {
		t.Fatal("WaitStopped of a sleeping process succeeded")
	}
	p.Signal(syscall.SIGSTOP)
	if err := WaitStopped(p.PID(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGCONT)
	if err := WaitStopped(p.PID(), 50*time.Millisecond); err == nil {
		t.Error("WaitStopped succeeded after SIGCONT")
	}
}

// TestTail: the last lines of a log for a failure message, and the reason
// when there is no log.
func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(p, 2); got != "two\nthree\n" {
		t.Errorf("Tail(2) = %q, want the last two lines", got)
	}
	if got := Tail(p+"-none", 2); !strings.Contains(got, "no such file") {
		t.Errorf("Tail of a missing file = %q, want the reason", got)
	}
}
