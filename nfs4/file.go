package nfs4

import (
	"context"
	"io/fs"
	"sync"
)

// File is a file or directory opened with Client.Open, OpenFile or Create.
//
// A File is safe for concurrent use: ReadAt and WriteAt may run from many
// goroutines at once, and are pipelined on the session; Read, Write and
// Seek share one offset, guarded by a mutex.
type File struct {
	c    *Client
	name string // as given to Open, for errors and FileInfo
	fh   []byte // immutable after open
	dir  bool   // a directory: no open state, ReadDir only

	mu     sync.Mutex // guards offset and closed
	offset int64
	closed bool

	io   fileIO   // open state and write-back; see fileio.go
	list dirState // READDIR cursor of a directory; see dir.go
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Stat returns the file's current attributes from the server.
func (f *File) Stat() (fs.FileInfo, error) {
	if err := f.checkOpen("stat"); err != nil {
		return nil, err
	}
	var attr Attr
	fh := f.fh
	mask := f.c.mask(statMask)
	err := f.c.call(context.Background(), funcRequest{
		b: func(cmp *compound) { cmp.putfh(fh); cmp.getattr(mask) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.getattr(&attr)
		},
	})
	if err != nil {
		return nil, pathError("stat", f.name, err)
	}
	return newFileInfo(f.name, attr), nil
}

// checkOpen returns fs.ErrClosed, wrapped for op, once the file is closed.
func (f *File) checkOpen(op string) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return pathError(op, f.name, fs.ErrClosed)
	}
	return nil
}
