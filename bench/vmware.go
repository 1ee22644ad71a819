package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	vmnfs "github.com/vmware/go-nfs-client/nfs"
	vmrpc "github.com/vmware/go-nfs-client/nfs/rpc"
	vmxdr "github.com/vmware/go-nfs-client/nfs/xdr"
)

// Contenders built on github.com/vmware/go-nfs-client, the NFSv3 client
// named in this project's design. What it is, seen from here:
//
//   - It finds the MOUNT and NFS ports through the portmapper on port 111
//     (hence Setup's NFSv3 and rpcbind) and, as root, dials from a random
//     port below 1024.
//   - One call at a time: Call writes the request and then reads the next
//     reply on the connection, with no XID matching across callers, so it
//     is not safe for concurrent use. The small-operation benchmark shares
//     one mount behind a mutex.
//   - File.Read issues one READ per call of at most the server's preferred
//     read size; File.Write one FILE_SYNC WRITE per preferred write size,
//     each waiting for its reply. No pipelining.
//   - Its RPC layer panics on some malformed replies; runs recover from
//     that and report an error.
//
// The copy loops here use a 1 MiB buffer: io.Copy would hand vmware's
// File 32 KiB at a time (os.File's WriteTo falls back to a 32 KiB copy),
// which would measure io.Copy, not the client.

// VMwareName is the name of the vmware/go-nfs-client contenders.
const VMwareName = "vmware/go-nfs-client"

// copyBuf is the buffer size of the copy loops for clients without
// io.ReaderFrom or io.WriterTo.
const copyBuf = 1 << 20

// vmMount mounts env's export over NFSv3 with AUTH_SYS as this process.
func vmMount(env *Env) (t *vmnfs.Target, auth vmrpc.Auth, closeFn func() error, err error) {
	defer recoverPanic(&err)
	m, err := vmnfs.DialMount(env.Host)
	if err != nil {
		return nil, auth, nil, fmt.Errorf("bench: vmware: dial MOUNT: %w", err)
	}
	auth = vmrpc.NewAuthUnix("gonfs-bench", uint32(os.Getuid()), uint32(os.Getgid())).Auth()
	t, err = m.Mount(env.Pseudo, auth)
	if err != nil {
		m.Close()
		return nil, auth, nil, fmt.Errorf("bench: vmware: mount %s: %w", env.Pseudo, err)
	}
	return t, auth, func() error { return errors.Join(t.Close(), m.Unmount(), m.Close()) }, nil
}

// recoverPanic turns a panic in vmware's client into *err.
func recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("bench: vmware: panic: %v", r)
	}
}

// VMwareRead reads TestFile with File.Read into a local file.
func VMwareRead() Contender {
	return Contender{
		Name: VMwareName, Workload: SeqRead,
		Note: "NFSv3, in-process, File.Read with a 1 MiB buffer, one READ in flight",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			defer recoverPanic(&err)
			t, _, closeFn, err := vmMount(env)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, closeFn()) }()
			f, err := t.Open(TestFile)
			if err != nil {
				return fmt.Errorf("bench: vmware: open: %w", err)
			}
			out, err := os.Create(target)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer func() { err = errors.Join(err, out.Close()) }()
			return copyLoop(ctx, out, f)
		},
	}
}

// VMwareWrite writes Env.Src with File.Write; Close sends a COMMIT.
func VMwareWrite() Contender {
	return Contender{
		Name: VMwareName, Workload: SeqWrite, ToExport: true,
		Note: "NFSv3, in-process, File.Write with a 1 MiB buffer, FILE_SYNC WRITEs one at a time (its only mode)",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			defer recoverPanic(&err)
			t, _, closeFn, err := vmMount(env)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, closeFn()) }()
			in, err := os.Open(env.Src)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer in.Close()
			f, err := t.OpenFile(target, 0o644)
			if err != nil {
				return fmt.Errorf("bench: vmware: create: %w", err)
			}
			if err := copyLoop(ctx, f, in); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
}

// copyLoop copies r to w through a copyBuf buffer, checking ctx between
// chunks. Unlike io.Copy it never uses ReaderFrom or WriterTo.
func copyLoop(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, copyBuf)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("bench: write: %w", werr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bench: read: %w", err)
		}
	}
}

// VMwareOps returns vmware/go-nfs-client's small-operation contenders,
// each one mount shared behind a mutex, since the client is not safe for
// concurrent use. LOOKUP is Target.Lookup of TestFile (one LOOKUP: the
// file is at the export's root). The client has no GETATTR method; it is
// sent through the client's own public Call and XDR decoder, the way its
// methods send theirs.
func VMwareOps() []OpsContender {
	open := func(call func(t *vmnfs.Target, auth vmrpc.Auth, fh []byte) error) func(context.Context, *Env) (func(context.Context) error, func() error, error) {
		return func(_ context.Context, env *Env) (func(context.Context) error, func() error, error) {
			t, auth, closeFn, err := vmMount(env)
			if err != nil {
				return nil, nil, err
			}
			_, fh, err := t.Lookup(TestFile)
			if err != nil {
				closeFn()
				return nil, nil, fmt.Errorf("bench: vmware: lookup: %w", err)
			}
			var mu sync.Mutex
			op := func(context.Context) (err error) {
				defer recoverPanic(&err)
				mu.Lock()
				defer mu.Unlock()
				return call(t, auth, fh)
			}
			return op, closeFn, nil
		}
	}
	return []OpsContender{
		{
			Name: VMwareName, Op: "GETATTR",
			Note: "NFSv3 GETATTR through its Call; one call at a time (mutex)",
			Open: open(vmGetattr),
		},
		{
			Name: VMwareName, Op: "LOOKUP",
			Note: "Target.Lookup (NFSv3 LOOKUP); one call at a time (mutex)",
			Open: open(func(t *vmnfs.Target, _ vmrpc.Auth, _ []byte) error {
				_, _, err := t.Lookup(TestFile)
				return err
			}),
		},
	}
}

// nfsProc3Getattr is NFSv3's GETATTR procedure (RFC 1813).
const nfsProc3Getattr = 1

// vmGetattr sends one NFSv3 GETATTR for fh with vmware's client.
func vmGetattr(t *vmnfs.Target, auth vmrpc.Auth, fh []byte) error {
	type getattrArgs struct {
		vmrpc.Header
		FH []byte
	}
	res, err := t.Call(&getattrArgs{
		Header: vmrpc.Header{
			Rpcvers: 2,
			Prog:    vmnfs.Nfs3Prog,
			Vers:    vmnfs.Nfs3Vers,
			Proc:    nfsProc3Getattr,
			Cred:    auth,
			Verf:    vmrpc.AuthNull,
		},
		FH: fh,
	})
	if err != nil {
		return fmt.Errorf("bench: vmware: GETATTR: %w", err)
	}
	status, err := vmxdr.ReadUint32(res)
	if err != nil {
		return fmt.Errorf("bench: vmware: GETATTR: %w", err)
	}
	if err := vmnfs.NFS3Error(status); err != nil {
		return fmt.Errorf("bench: vmware: GETATTR: %w", err)
	}
	var attr vmnfs.Fattr
	if err := vmxdr.Read(res, &attr); err != nil {
		return fmt.Errorf("bench: vmware: GETATTR: %w", err)
	}
	return nil
}
