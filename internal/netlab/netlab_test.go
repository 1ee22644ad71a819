package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
	"github.com/gonfs/nfs/internal/testutil"
)

// TestMain checks for goroutine leaks once, after every test; the
// interrupt handler's goroutine, started first, lives on.
func TestMain(m *testing.M) {
	TrapInterrupts()
	testutil.VerifyMain(m.Run)
}

func nsExists(name string) bool {
	_, err := os.Stat(netnsDir + "/" + name)
	return err == nil
}

// TestLinkFilterAndCleanup builds two namespaces joined by a veth pair,
// checks that TCP flows across it until an nftables ruleset drops it,
// and that everything (namespaces, a process inside one) is gone once
// the subtest that made them has ended.
func TestLinkFilterAndCleanup(t *testing.T) {
	var names []string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		a, b := l.NS("a"), l.NS("b")
		names = []string{a.Name, b.Name}
		if a.Name == b.Name || !strings.HasPrefix(a.Name, Prefix) {
			t.Fatalf("names %q and %q", a.Name, b.Name)
		}
		aDev, _ := l.Link(a, "10.77.1.1/24", b, "10.77.1.2/24")
		a.Shape(aDev, "100mbit")

		ln, err := b.Listen("10.77.1.2:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, err = io.WriteString(c, "hello")
				c.Close()
			}
			accepted <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := a.Dial(ctx, "10.77.1.2:7000")
		if err != nil {
			t.Fatalf("dial across the link: %v\n%s%s", err, a.Dump(), b.Dump())
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "hello" {
			t.Fatalf("read %q, %v", got, err)
		}
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}

		// A silent blackhole: the SYN is dropped, the dial times out.
		b.Nft(`table inet lab {
			chain in { type filter hook input priority 0; policy accept; tcp dport 7000 drop; }
		}`)
		if !strings.Contains(b.Ruleset(), "dport 7000 drop") {
			t.Fatalf("ruleset not applied:\n%s", b.Ruleset())
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel2()
		if c, err := a.Dial(ctx2, "10.77.1.2:7000"); err == nil {
			c.Close()
			t.Fatal("dial through a drop rule succeeded")
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("dial through a drop rule: %v, want a timeout (silence, not a reset)", err)
		}

		// A process inside b, killed at cleanup.
		p, err := b.Start(b.Command("sleep", "600"))
		if err != nil {
			t.Fatal(err)
		}
		pid = p.PID()
		waitInNS(t, pid, b.Name)
	})
	for _, name := range names {
		if nsExists(name) {
			t.Errorf("namespace %s still exists after its test", name)
		}
	}
	if pid != 0 && proc.Alive(pid) {
		t.Errorf("process %d still alive after its test", pid)
	}
}

// TestSweep checks that Sweep deletes a namespace named for a process that
// no longer exists, with the process inside it, and leaves this process's
// own namespaces alone.
func TestSweep(t *testing.T) {
	l := New(t)
	mine := l.NS("mine")

	// A PID that is certainly not alive: a child that has exited and been
	// reaped.
	dead := l.NS("helper").Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-1-old", Prefix, dead.Process.Pid)
	if proc.Alive(dead.Process.Pid) {
		t.Skipf("PID %d was reused at once", dead.Process.Pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if _, err := command(ctx, nil, "ip", "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteNS(stale) })
	// A process in the leftover namespace, as an interrupted run leaves.
	orphan, err := proc.Start((&NS{Name: stale}).Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := orphan.Stop(0); err != nil {
			t.Error(err)
		}
	})
	waitInNS(t, orphan.PID(), stale)

	deleted, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(deleted, " "), stale) {
		t.Errorf("Sweep deleted %v, not %s", deleted, stale)
	}
	if nsExists(stale) {
		t.Errorf("%s still exists", stale)
	}
	if !nsExists(mine.Name) {
		t.Errorf("Sweep deleted this process's namespace %s", mine.Name)
	}
	select {
	case <-orphan.Done():
	case <-time.After(10 * time.Second):
		t.Errorf("process %d in the swept namespace was not killed", orphan.PID())
	}
}

// waitInNS waits until process pid has entered the namespace called name.
func waitInNS(t *testing.T, pid int, name string) {
	t.Helper()
	for range 100 {
		out, _ := command(context.Background(), nil, "ip", "netns", "identify", fmt.Sprint(pid))
		if strings.TrimSpace(string(out)) == name {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d did not enter namespace %s", pid, name)
}

func TestNames(t *testing.T) {
	for role, ok := range map[string]bool{"client": true, "lb2": true, "": false, "Client": false, "a-b": false, "elevenchars": false} {
		if validRole(role) != ok {
			t.Errorf("validRole(%q) = %v", role, !ok)
		}
	}
	for name, want := range map[string]int{Prefix + "123-4-lb": 123, Prefix + "x-1-a": 0, "other-1-2-a": 0, Prefix + "77": 0} {
		got, ok := ownerPID(name)
		if got != want || ok != (want != 0) {
			t.Errorf("ownerPID(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}
