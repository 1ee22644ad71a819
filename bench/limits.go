package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// The machine's limits, measured in the same run as the clients: how fast
// Env.Size bytes cross loopback TCP with nothing else to do, and how fast
// the exported file is copied locally to the same scratch directory the
// read contenders copy to.

// LoopbackTCP sends Env.Size bytes from one goroutine to another over a
// loopback TCP connection, 1 MiB per write and per read (the rsize and
// wsize the NFS clients use), the receiver discarding them. It is the
// ceiling of any NFS transfer over loopback on this machine; an NFS copy
// also pays for the server, the protocol and the file on each side.
func LoopbackTCP() Contender {
	return Contender{
		Name: "loopback TCP", Workload: Limit, NoOutput: true,
		Note: "Go sender → receiver on 127.0.0.1, 1 MiB writes and reads, data discarded",
		Run: func(ctx context.Context, env *Env, _ string) error {
			return tcpPipe(ctx, env.Size)
		},
	}
}

func tcpPipe(ctx context.Context, size int64) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		buf := make([]byte, copyBuf)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				got <- err
				return
			}
		}
		if n != size {
			got <- fmt.Errorf("bench: received %d bytes of %d", n, size)
			return
		}
		got <- nil
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, copyBuf)
	for left := size; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			c.Close()
			<-got
			return fmt.Errorf("bench: %w", err)
		}
		left -= k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		c.Close()
		<-got
		return fmt.Errorf("bench: %w", err)
	}
	err = <-got
	return errors.Join(err, c.Close())
}

// LocalRead copies the exported file, as the server sees it, to the
// scratch directory with read(2) and write(2) of 1 MiB: what a read
// contender does minus NFS.
func LocalRead() Contender {
	return Contender{
		Name: "local read", Workload: Limit,
		Note: "the exported file (in the page cache) copied to the scratch directory, 1 MiB read/write",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			in, err := os.Open(env.LocalPath(TestFile))
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer in.Close()
			out, err := os.Create(target)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer func() { err = errors.Join(err, out.Close()) }()
			return copyLoop(ctx, out, in)
		},
	}
}

// LocalWrite copies Env.Src into the exported directory with read(2) and
// write(2) of 1 MiB and then fsync(2)s it: the disk-bound ceiling of an
// NFS write that ends in a COMMIT, which makes the server fsync too.
func LocalWrite() Contender {
	return Contender{
		Name: "local write+fsync", Workload: Limit, ToExport: true,
		Note: "Env.Src copied into the exported directory, 1 MiB read/write, then fsync: the disk's ceiling for committed writes",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			in, err := os.Open(env.Src)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer in.Close()
			out, err := os.Create(env.LocalPath(target))
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer func() { err = errors.Join(err, out.Close()) }()
			if err := copyLoop(ctx, out, in); err != nil {
				return err
			}
			return out.Sync()
		},
	}
}
