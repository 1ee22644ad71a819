package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

// fileSystem is what a copy needs of its source and destination: the local
// file system (localFS) or one NFS server (nfsFS). Paths are slash-separated;
// errors are *fs.PathError or *os.LinkError, as package os returns them.
// Implementations are safe for concurrent use.
type fileSystem interface {
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	Lstat(ctx context.Context, name string) (fs.FileInfo, error)
	ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error)
	Readlink(ctx context.Context, name string) (string, error)
	// Open opens a regular file for reading.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// CreateTemp creates a new, empty file named like .BASE.nfscp-RANDOM
	// in dir, readable and writable by its owner only, and returns it and
	// its path.
	CreateTemp(ctx context.Context, dir, base string) (io.WriteCloser, string, error)
	Mkdir(ctx context.Context, name string, perm fs.FileMode) error
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
	// Chtimes sets the modification time of name, following symbolic
	// links, and leaves its access time alone.
	Chtimes(ctx context.Context, name string, mtime time.Time) error
	Rename(ctx context.Context, oldname, newname string) error
	Remove(ctx context.Context, name string) error
	Symlink(ctx context.Context, target, name string) error
	// SameFile reports whether a and b are the same file of this file
	// system, as far as it can tell.
	SameFile(a, b fs.FileInfo) bool
}

// tempName returns the name of a temporary file for base: hidden, marked
// as nfscp's, random, and short enough for a 255-byte name limit.
func tempName(base string) string {
	const maxBase = 200
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return fmt.Sprintf(".%s.nfscp-%08x", base, rand.Uint32())
}

// tempAttempts bounds the names CreateTemp tries before giving up.
const tempAttempts = 16

// localFS is the local file system.
type localFS struct{}

func (localFS) Stat(_ context.Context, name string) (fs.FileInfo, error)  { return os.Stat(name) }
func (localFS) Lstat(_ context.Context, name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (localFS) ReadDir(_ context.Context, name string) ([]fs.DirEntry, error) {
	return os.ReadDir(name)
}
func (localFS) Readlink(_ context.Context, name string) (string, error) { return os.Readlink(name) }
func (localFS) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(name)
}

func (localFS) CreateTemp(_ context.Context, dir, base string) (io.WriteCloser, string, error) {
	for range tempAttempts {
		p := path.Join(dir, tempName(base))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return &syncCloser{f}, p, nil
	}
	return nil, "", &fs.PathError{Op: "create", Path: dir, Err: fs.ErrExist}
}

func (localFS) Mkdir(_ context.Context, name string, perm fs.FileMode) error {
	return os.Mkdir(name, perm)
}
func (localFS) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	return os.Chmod(name, mode)
}
func (localFS) Chtimes(_ context.Context, name string, mtime time.Time) error {
	return os.Chtimes(name, time.Time{}, mtime)
}
func (localFS) Rename(_ context.Context, oldname, newname string) error {
	return os.Rename(oldname, newname)
}
func (localFS) Remove(_ context.Context, name string) error { return os.Remove(name) }
func (localFS) Symlink(_ context.Context, target, name string) error {
	return os.Symlink(target, name)
}
func (localFS) SameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

// syncCloser is a local file that reaches stable storage before Close
// returns, so that the rename that follows never exposes a file whose data
// a crash could still lose.
type syncCloser struct{ *os.File }

func (f *syncCloser) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

// nfsFS is one NFS server, through a shared nfs4.Client. Its files are
// *nfs4.File, whose ReadFrom and WriteTo are the pipelined fast paths.
type nfsFS struct{ c *nfs4.Client }

func (n nfsFS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	return n.c.Stat(ctx, name)
}
func (n nfsFS) Lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	return n.c.Lstat(ctx, name)
}
func (n nfsFS) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	return n.c.ReadDir(ctx, name)
}
func (n nfsFS) Readlink(ctx context.Context, name string) (string, error) {
	return n.c.Readlink(ctx, name)
}
func (n nfsFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return n.c.Open(ctx, name)
}

func (n nfsFS) CreateTemp(ctx context.Context, dir, base string) (io.WriteCloser, string, error) {
	for range tempAttempts {
		p := path.Join(dir, tempName(base))
		f, err := n.c.OpenFile(ctx, p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, p, nil
	}
	return nil, "", &fs.PathError{Op: "create", Path: dir, Err: fs.ErrExist}
}

func (n nfsFS) Mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	return n.c.Mkdir(ctx, name, perm)
}
func (n nfsFS) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	return n.c.Chmod(ctx, name, mode)
}
func (n nfsFS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	return n.c.Chtimes(ctx, name, time.Time{}, mtime)
}
func (n nfsFS) Rename(ctx context.Context, oldname, newname string) error {
	return n.c.Rename(ctx, oldname, newname)
}
func (n nfsFS) Remove(ctx context.Context, name string) error { return n.c.Remove(ctx, name) }
func (n nfsFS) Symlink(ctx context.Context, target, name string) error {
	return n.c.Symlink(ctx, target, name)
}

// SameFile compares file IDs and file system IDs, which the server
// returns with every Stat.
func (nfsFS) SameFile(a, b fs.FileInfo) bool {
	aa, ok1 := a.Sys().(*nfs4.Attr)
	ba, ok2 := b.Sys().(*nfs4.Attr)
	return ok1 && ok2 && aa.FileID == ba.FileID && aa.FSID == ba.FSID &&
		aa.Mask.Has(nfs4.AttrFileID) && ba.Mask.Has(nfs4.AttrFileID)
}

// permBits are the mode bits a copy carries over: permissions, setuid,
// setgid and sticky.
func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}
