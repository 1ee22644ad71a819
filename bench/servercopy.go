package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/nfs4"
)

// The same-server copy: TestFile copied to a new file on the server that
// holds it, which NFSv4.2 lets a client leave to the server (CLONE where
// its file system shares blocks, else COPY). NFS-Ganesha 4.3 answers both
// with NFS4ERR_NOTSUPP, so this workload runs on the Linux kernel's NFS
// server in a user-mode Linux guest (internal/knfsd), booted once per
// run. Its contenders are Commands.

// knfsdMemoryMiB is the guest's memory: knfsd's default, named here for
// the report. A 1 GiB file does not fit, so the server reads it from its
// disk image, which the host's page cache holds.
const knfsdMemoryMiB = 512

// StartKnfsd boots the server of the same-server copy, sets Env.Knfsd and
// Env.CopyServer, and writes TestFile (from Env.Src) to the server's root
// with this library; call it before any contender runs. The caller must
// stop the server (Env.Knfsd.Stop). On failure
// Env.Knfsd stays nil, and the same-server contenders give the error as
// why they are not available.
func (e *Env) StartKnfsd(ctx context.Context, logf func(format string, args ...any)) (err error) {
	defer func() {
		if err != nil {
			e.knfsdErr = err
		}
	}()
	srv, err := knfsd.Boot(knfsd.Config{MemoryMiB: knfsdMemoryMiB, DiskSize: max(4<<30, 3*e.Size)}, logf)
	if err != nil {
		return err
	}
	kernel, err := srv.Exec(ctx, "uname -r")
	if err == nil {
		err = writeKnfsd(ctx, srv.Addr(), e.Src)
	}
	if err != nil {
		return errors.Join(err, srv.Stop())
	}
	e.Knfsd = srv
	e.CopyServer = fmt.Sprintf("Linux %s nfsd (knfsd) in a user-mode Linux guest of 1 CPU and %d MiB, "+
		"its export ext4 on a disk image in the host's temporary directory, behind a forwarder on 127.0.0.1 in benchrun's process",
		strings.TrimSpace(kernel), knfsdMemoryMiB)
	return nil
}

// writeKnfsd copies the local file src to TestFile at the root of the
// server at addr, committed.
func writeKnfsd(ctx context.Context, addr, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer in.Close()
	c, err := nfs4.Dial(ctx, addr, nfs4.Config{})
	if err != nil {
		return fmt.Errorf("bench: knfsd: %w", err)
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	f, err := c.Create(ctx, "/"+TestFile)
	if err != nil {
		return fmt.Errorf("bench: knfsd: %w", err)
	}
	if _, err := f.ReadFrom(in); err != nil {
		f.Close()
		return fmt.Errorf("bench: knfsd: writing %s: %w", TestFile, err)
	}
	return f.Close()
}

// knfsdMissing says why Env.Knfsd is nil.
func (e *Env) knfsdMissing() error {
	if e.knfsdErr != nil {
		return e.knfsdErr
	}
	return errors.New("bench: knfsd was not started (Env.StartKnfsd)")
}
