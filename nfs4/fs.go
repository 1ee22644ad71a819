package nfs4

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
)

// FS returns a file system rooted at the server directory root, for code
// written against io/fs. It implements fs.StatFS, fs.ReadDirFS,
// fs.ReadFileFS and fs.SubFS, and is safe for concurrent use. Its methods
// take no context: they run with context.Background(), so with a hard
// client (the default) they wait through outages; use FSContext, a soft
// Config, or the Client's own methods where that matters.
func (c *Client) FS(root string) fs.FS {
	return c.FSContext(context.Background(), root)
}

// FSContext is FS with every call under ctx: its methods, the Files it
// opens (as File.WithContext(ctx) would give them) and the file systems
// Sub returns give up when ctx ends, with ctx's error.
func (c *Client) FSContext(ctx context.Context, root string) fs.FS {
	if ctx == nil {
		panic("nfs4: Client.FSContext with a nil Context")
	}
	return &fsys{c: c, ctx: ctx, root: path.Clean("/" + root)}
}

type fsys struct {
	c    *Client
	ctx  context.Context
	root string
}

var (
	_ fs.StatFS     = (*fsys)(nil)
	_ fs.ReadDirFS  = (*fsys)(nil)
	_ fs.ReadFileFS = (*fsys)(nil)
	_ fs.SubFS      = (*fsys)(nil)
)

// full maps a valid fs.FS name to a server path, or returns an error for op.
func (f *fsys) full(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return path.Join(f.root, name), nil
}

// rename replaces the server path in a *fs.PathError by the fs.FS name.
func rename(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

func (f *fsys) Open(name string) (fs.File, error) {
	p, err := f.full("open", name)
	if err != nil {
		return nil, err
	}
	file, err := f.c.Open(f.ctx, p)
	if err != nil {
		return nil, rename(err, name)
	}
	file.name = name
	return file.WithContext(f.ctx), nil
}

func (f *fsys) Stat(name string) (fs.FileInfo, error) {
	p, err := f.full("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.c.Stat(f.ctx, p)
	if err != nil {
		return nil, rename(err, name)
	}
	return fi, nil
}

func (f *fsys) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.full("readdir", name)
	if err != nil {
		return nil, err
	}
	ents, err := f.c.ReadDir(f.ctx, p)
	if err != nil {
		return nil, rename(err, name)
	}
	return ents, nil
}

// readFileSizeHint bounds the buffer ReadFile allocates up front from the
// file's size attribute, so that a size of 2^63-1 costs nothing until the
// data is there: a larger file grows the buffer as it is read.
const readFileSizeHint = 16 << 20

// ReadFile reads the whole file name, as os.ReadFile does: to the end of
// file the server reports, within the bound File.Read explains.
func (f *fsys) ReadFile(name string) ([]byte, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrIsDir}
	}
	// The size is the server's word: it sizes the first buffer only up
	// to readFileSizeHint, and the buffer grows as data arrives.
	buf := make([]byte, 0, min(fi.Size(), readFileSizeHint)+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
		n, err := file.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, rename(err, name)
		}
	}
}

func (f *fsys) Sub(dir string) (fs.FS, error) {
	p, err := f.full("sub", dir)
	if err != nil {
		return nil, err
	}
	return &fsys{c: f.c, ctx: f.ctx, root: p}, nil
}
