package ganesha

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gonfs/nfs/internal/proc"
)

const (
	// rpcbindAddr is where Ganesha registers its NFSv3 and MOUNT services;
	// it refuses to start serving NFSv3 if no rpcbind answers there.
	rpcbindAddr = "127.0.0.1:111"
	// rpcbindPort is rpcbindAddr's port.
	rpcbindPort = 111
	// rpcbindReady bounds how long a new rpcbind may take to listen.
	rpcbindReady = 10 * time.Second
	// rpcbindStop bounds how long rpcbind may take to exit on SIGTERM.
	rpcbindStop = 5 * time.Second
	// rpcbindLockPath is the lock file that serializes, across all
	// processes of the host, the moments an rpcbind must not vanish.
	rpcbindLockPath = "/run/lock/gonfs-rpcbind.lock"
	// rpcbindLockWait bounds the wait for that lock; its holders keep
	// it for one server start (readyTimeout at most).
	rpcbindLockWait = 2 * readyTimeout
)

// lockRPCBind takes the host-wide rpcbind lock. Several test binaries
// (go test runs packages in parallel) may share the host's rpcbind, and
// the one that started it stops it when its own last server stops. A
// Ganesha that registers with an rpcbind stopped under it fails to start,
// so a server start that registers holds the lock until the server is
// ready, and stopping an rpcbind waits for it. Once registered, Ganesha
// no longer needs rpcbind: clients are given the ports.
func lockRPCBind() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(rpcbindLockPath), 0o755); err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	f, err := os.OpenFile(rpcbindLockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	deadline := time.Now().Add(rpcbindLockWait)
	for range rpcbindLockWait / pollInterval {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	f.Close()
	return nil, fmt.Errorf("ganesha: lock %s: %w", rpcbindLockPath, err)
}

// rpcbinds counts the users of each rpcbind this process started, by
// network namespace ("" is the host's). An rpcbind found already running
// is used and never stopped.
var rpcbinds = struct {
	mu sync.Mutex
	m  map[string]*rpcbindRef
}{m: make(map[string]*rpcbindRef)}

type rpcbindRef struct {
	p     *proc.Process
	users int
}

// acquireRPCBind makes sure an rpcbind answers on 127.0.0.1:111 in the
// network namespace ns, starting one if none does. The returned release
// stops that rpcbind when its last user has released it, if this process
// started it; call it exactly once, and not while holding lockRPCBind's
// lock. The caller should hold that lock until its server has
// registered.
func acquireRPCBind(ns string) (release func(), err error) {
	rpcbinds.mu.Lock()
	defer rpcbinds.mu.Unlock()
	if ref := rpcbinds.m[ns]; ref != nil {
		if !ref.p.Exited() {
			ref.users++
			return releaser(ns, ref), nil
		}
		delete(rpcbinds.m, ns)
	}
	if rpcbindAnswers(ns) {
		return func() {}, nil
	}
	if _, err := exec.LookPath("rpcbind"); err != nil {
		return nil, fmt.Errorf("ganesha: NFSv3 needs rpcbind (Debian package rpcbind): %w", err)
	}
	p, err := proc.Start(rpcbindCommand(ns))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(rpcbindReady)
	for range rpcbindReady / pollInterval {
		if ok, _ := listening(p.PID(), []int{rpcbindPort}); ok {
			ref := &rpcbindRef{p: p, users: 1}
			rpcbinds.m[ns] = ref
			return releaser(ns, ref), nil
		}
		if p.Exited() || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	if p.Exited() {
		if rpcbindAnswers(ns) {
			// Another rpcbind won the race for the port: use it.
			return func() {}, nil
		}
		return nil, fmt.Errorf("ganesha: rpcbind did not start: %w", exitError(p))
	}
	return nil, errors.Join(
		fmt.Errorf("ganesha: rpcbind (pid %d) not listening on %s after %v", p.PID(), rpcbindAddr, rpcbindReady),
		p.Stop(rpcbindStop))
}

// rpcbindCommand runs rpcbind in the foreground, in ns if it is not "".
// In a namespace it gets a private /run, like Ganesha, so that its lock
// file and socket do not collide with the host's rpcbind; Ganesha reaches
// it over TCP.
func rpcbindCommand(ns string) *exec.Cmd {
	if ns == "" {
		return exec.Command("rpcbind", "-f")
	}
	return exec.Command("ip", "netns", "exec", ns,
		"sh", "-c", `mount -t tmpfs rpcbind-run /run && exec rpcbind -f`)
}

func rpcbindAnswers(ns string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := dialIn(ctx, ns, rpcbindAddr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func releaser(ns string, ref *rpcbindRef) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			rpcbinds.mu.Lock()
			ref.users--
			last := ref.users == 0
			if last && rpcbinds.m[ns] == ref {
				delete(rpcbinds.m, ns)
			}
			rpcbinds.mu.Unlock()
			if !last {
				return
			}
			// Best effort: a stuck rpcbind is reported by nobody, but
			// it is SIGKILLed and cannot outlive this process. Without
			// the lock, stop it all the same: it dies with this
			// process anyway.
			if unlock, err := lockRPCBind(); err == nil {
				defer unlock()
			}
			_ = ref.p.Stop(rpcbindStop)
		})
	}
}
