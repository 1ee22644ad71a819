package tcpfwd

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testutil"
)

// TestMain checks for goroutine leaks once, after every test;
// TestCloseWhilePaused also checks its own, which is what it asserts.
func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }

// echoServer answers each line with its name and the line.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(name + ":" + line))
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func ask(t *testing.T, c net.Conn, line string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

func TestMoveResetPause(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	f := Start(t, a)

	c1, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if got, err := ask(t, c1, "x"); got != "a:x" {
		t.Fatalf("first answer %q, %v; want a:x", got, err)
	}

	// Moving the target keeps the old connection on a, until reset.
	f.SetTarget(b)
	if got, err := ask(t, c1, "y"); got != "a:y" {
		t.Fatalf("after SetTarget the old connection answered %q, %v; want a:y", got, err)
	}
	f.ResetAll()
	if _, err := ask(t, c1, "z"); err == nil {
		t.Fatal("a reset connection still answers")
	}
	c2, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := ask(t, c2, "x"); got != "b:x" {
		t.Fatalf("new connection answered %q, %v; want b:x", got, err)
	}

	// Paused: nothing comes back, nothing fails; resumed: the answer
	// arrives.
	f.Pause()
	c2.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c2.Write([]byte("p\n"))
	buf := make([]byte, 16)
	if n, err := c2.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read while paused: %d bytes, %v; want a timeout", n, err)
	}
	f.Resume()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	s, err := bufio.NewReader(c2).ReadString('\n')
	if strings.TrimSpace(s) != "b:p" {
		t.Fatalf("after Resume: %q, %v; want b:p", s, err)
	}
	if f.Accepted() != 2 {
		t.Errorf("Accepted() = %d, want 2", f.Accepted())
	}
}

// Close while paused ends every goroutine (CheckLeaks).
func TestCloseWhilePaused(t *testing.T) {
	testutil.CheckLeaks(t)
	f := Start(t, echoServer(t, "a"))
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.Pause()
	c.Write([]byte("x\n"))
	f.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 4)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// TestFlipAfter: exactly the byte asked for arrives with a bit flipped,
// and only once; what clients send is never touched.
func TestFlipAfter(t *testing.T) {
	f := Start(t, echoServer(t, "a"))
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.FlipAfter(2) // "a:hello": the h turns into i
	if got, err := ask(t, c, "hello"); got != "a:iello" {
		t.Fatalf("got %q, %v; want a:iello", got, err)
	}
	if got, err := ask(t, c, "hello"); got != "a:hello" {
		t.Fatalf("second answer %q, %v; want it untouched", got, err)
	}
}
