package ganesha

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` puts its namespace handles.
const netnsDir = "/run/netns"

// dialIn opens a TCP connection to addr from inside the network namespace
// named ns, as `ip netns` names them; "" means this process's own. A
// socket belongs to the namespace it was created in, so the connection
// stays inside ns however it is used afterwards.
func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	var d net.Dialer
	if ns == "" {
		return d.DialContext(ctx, "tcp", addr)
	}
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return nil, fmt.Errorf("ganesha: network namespace %q: %w", ns, err)
	}
	defer target.Close()

	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		// setns changes only the calling thread. The thread stays locked
		// to this goroutine, and so ends with it, unless it is back in its
		// own namespace.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("ganesha: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("ganesha: enter network namespace %q: %w", ns, err)}
			return
		}
		// A literal address dials on this goroutine: the socket is
		// created on this thread, inside ns.
		c, err := d.DialContext(ctx, "tcp", addr)
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{c: c, err: err}
	}()
	r := <-res
	return r.c, r.err
}

// pickPorts returns n distinct TCP ports that were free on host (an IP
// address) when chosen. Each is found by listening on port 0; all the
// listeners are held until the last is chosen, so no port is returned
// twice. Another process may still take a port before its user binds it.
func pickPorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("ganesha: pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listening reports whether process pid holds a listening TCP socket
// (IPv4 or IPv6) on every one of ports, in its own network namespace.
// A successful connect alone could reach another program that holds a
// port Ganesha failed to bind.
func listening(pid int, ports []int) (bool, error) {
	inodes := make(map[string]int) // socket inode → port, for listeners on ports
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			return false, fmt.Errorf("ganesha: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A is TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if i < 0 {
				continue
			}
			port, err := strconv.ParseUint(f[1][i+1:], 16, 16)
			if err != nil {
				continue
			}
			if slices.Contains(ports, int(port)) {
				inodes[f[9]] = int(port)
			}
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, fmt.Errorf("ganesha: %w", err)
	}
	found := make(map[int]bool)
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue // closed meanwhile, or not a socket
		}
		if port, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]; ok {
			found[port] = true
		}
	}
	return len(found) == len(ports), nil
}
