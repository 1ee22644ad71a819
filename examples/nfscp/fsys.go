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
	"path/filepath"
	"strings"
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
	// OpenDir opens the directory name for listing.
	OpenDir(ctx context.Context, name string) (dirReader, error)
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

// dirReader lists a directory a batch at a time, as *os.File and
// *nfs4.File do: ReadDir(n) returns at most n entries, and io.EOF after the
// last.
type dirReader interface {
	ReadDir(n int) ([]fs.DirEntry, error)
	Close() error
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
func (localFS) OpenDir(_ context.Context, name string) (dirReader, error) {
	return os.Open(name)
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

// rootFS is a local destination: the directory the user named and what
// lies below it, reached through an os.Root. The directory's own path is
// resolved as given, symbolic links and all (the user chose it); below it
// no path can leave it, whatever links a previous copy left there or
// another process puts there meanwhile (os.Root resolves each component
// itself and refuses one that escapes). The copier adds the rule that
// links inside the destination are not followed at all (see mkdir).
// Paths are those of the copy's locations, which begin with dir.
type rootFS struct {
	root *os.Root
	dir  string // the root's path as the locations spell it, cleaned
}

// errOutside is returned for a path that is not below the destination
// directory; the copier never makes one.
var errOutside = errors.New("outside the destination directory")

func openRoot(dir string) (rootFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return rootFS{}, err
	}
	return rootFS{root: r, dir: filepath.Clean(dir)}, nil
}

// rel returns name relative to the root.
func (r rootFS) rel(op, name string) (string, error) {
	rel, err := filepath.Rel(r.dir, filepath.Clean(name))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", &fs.PathError{Op: op, Path: name, Err: errOutside}
	}
	return rel, nil
}

func (r rootFS) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	rel, err := r.rel("stat", name)
	if err != nil {
		return nil, err
	}
	return r.root.Stat(rel)
}

func (r rootFS) Lstat(_ context.Context, name string) (fs.FileInfo, error) {
	rel, err := r.rel("lstat", name)
	if err != nil {
		return nil, err
	}
	return r.root.Lstat(rel)
}

func (r rootFS) OpenDir(_ context.Context, name string) (dirReader, error) {
	rel, err := r.rel("open", name)
	if err != nil {
		return nil, err
	}
	return r.root.Open(rel)
}

func (r rootFS) Readlink(_ context.Context, name string) (string, error) {
	rel, err := r.rel("readlink", name)
	if err != nil {
		return "", err
	}
	return r.root.Readlink(rel)
}

func (r rootFS) Open(_ context.Context, name string) (io.ReadCloser, error) {
	rel, err := r.rel("open", name)
	if err != nil {
		return nil, err
	}
	return r.root.Open(rel)
}

func (r rootFS) CreateTemp(_ context.Context, dir, base string) (io.WriteCloser, string, error) {
	for range tempAttempts {
		p := path.Join(dir, tempName(base))
		rel, err := r.rel("create", p)
		if err != nil {
			return nil, "", err
		}
		f, err := r.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

func (r rootFS) Mkdir(_ context.Context, name string, perm fs.FileMode) error {
	rel, err := r.rel("mkdir", name)
	if err != nil {
		return err
	}
	return r.root.Mkdir(rel, perm)
}

func (r rootFS) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	rel, err := r.rel("chmod", name)
	if err != nil {
		return err
	}
	return r.root.Chmod(rel, mode)
}

func (r rootFS) Chtimes(_ context.Context, name string, mtime time.Time) error {
	rel, err := r.rel("chtimes", name)
	if err != nil {
		return err
	}
	return r.root.Chtimes(rel, time.Time{}, mtime)
}

func (r rootFS) Rename(_ context.Context, oldname, newname string) error {
	o, err := r.rel("rename", oldname)
	if err != nil {
		return err
	}
	n, err := r.rel("rename", newname)
	if err != nil {
		return err
	}
	return r.root.Rename(o, n)
}

func (r rootFS) Remove(_ context.Context, name string) error {
	rel, err := r.rel("remove", name)
	if err != nil {
		return err
	}
	return r.root.Remove(rel)
}

func (r rootFS) Symlink(_ context.Context, target, name string) error {
	rel, err := r.rel("symlink", name)
	if err != nil {
		return err
	}
	return r.root.Symlink(target, rel)
}

func (rootFS) SameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

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
// *nfs4.File, whose ReadFrom and WriteTo are the pipelined fast paths,
// opened as views (File.WithContext) whose every call, Close included,
// ends with the ctx they were opened with.
type nfsFS struct{ c *nfs4.Client }

func (n nfsFS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	return n.c.Stat(ctx, name)
}
func (n nfsFS) Lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	return n.c.Lstat(ctx, name)
}

// OpenDir opens name as an *nfs4.File, which reads the directory a
// READDIR page at a time as ReadDir asks for more, each under ctx: a walk
// waiting on a server that is down ends with the run.
func (n nfsFS) OpenDir(ctx context.Context, name string) (dirReader, error) {
	f, err := n.c.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return f.WithContext(ctx), nil
}
func (n nfsFS) Readlink(ctx context.Context, name string) (string, error) {
	return n.c.Readlink(ctx, name)
}
func (n nfsFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := n.c.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return f.WithContext(ctx), nil
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
		return f.WithContext(ctx), p, nil
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
