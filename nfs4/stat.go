package nfs4

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strconv"
	"time"
)

// Reading and changing a named file's attributes: Stat and Lstat (a path
// walk ending in GETATTR), and Chmod, Chown, Chtimes and Truncate (SETATTR).

// Stat returns the FileInfo of name, following symbolic links. Its Sys
// method returns the *Attr the server sent. Errors are *fs.PathError.
func (c *Client) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	_, attr, err := c.lookup(ctx, name, true)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return newFileInfo(name, attr), nil
}

// Lstat is Stat without following a final symbolic link.
func (c *Client) Lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	_, attr, err := c.lookup(ctx, name, false)
	if err != nil {
		return nil, pathError("lstat", name, err)
	}
	return newFileInfo(name, attr), nil
}

// fileInfo is the fs.FileInfo of a file: its name and NFS attributes.
type fileInfo struct {
	name string
	attr Attr
}

func (fi *fileInfo) Name() string { return fi.name }

// Size returns the file's size; a size past what an int64 holds (which no
// real file has) is reported as math.MaxInt64.
func (fi *fileInfo) Size() int64        { return int64(min(fi.attr.Size, math.MaxInt64)) }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.attr.FileMode() }
func (fi *fileInfo) ModTime() time.Time { return fi.attr.ModTime }
func (fi *fileInfo) IsDir() bool        { return fi.attr.Type == TypeDirectory }

// Sys returns the file's attributes as a *nfs4.Attr.
func (fi *fileInfo) Sys() any { return &fi.attr }

// newFileInfo names a FileInfo after the last element of name ("." for
// ".", "/" for the root).
func newFileInfo(name string, attr Attr) *fileInfo {
	return &fileInfo{name: path.Base(name), attr: attr}
}

// Changing attributes by path: Chmod, Chown, Chtimes and Truncate. Each
// resolves the name, following symbolic links as the os functions of the
// same names do, then sends one SETATTR with the anonymous stateid. The
// anonymous stateid is enough for a size change too: the server checks
// the caller's write permission as for a WRITE without open state
// (RFC 8881 §8.2.3, §18.30.3), and NFS-Ganesha accepts it.

// setattrPath sets the attributes in s on name; op names the operation in
// errors. With s nil it only checks that name resolves, for the calls
// that change nothing (Chown(-1, -1), Chtimes with two zero times), so
// that a missing file still reports its error as os would.
func (c *Client) setattrPath(ctx context.Context, op, name string, s *sattr) error {
	for try := 0; ; try++ {
		fh, _, err := c.lookup(ctx, name, true)
		if err != nil || s == nil {
			return pathError(op, name, err)
		}
		err = c.setattrFH(ctx, fh, s)
		if try == 0 && c.cache.retryStale(err, fh, nil) {
			continue
		}
		return pathError(op, name, err)
	}
}

// setattrFH sets the attributes in s on the file fh.
func (c *Client) setattrFH(ctx context.Context, fh []byte, s *sattr) error {
	var set AttrMask
	defer c.cache.invalidateFH(fh)
	return c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(fh)
			cmp.setattr(&anonStateID, s)
		},
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.setattr(&set)
		},
		cache: true,
	})
}

// Chmod changes the mode of name to mode's permission bits and its
// fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky bits, as os.Chmod does.
// A symbolic link is followed. Errors are *fs.PathError with Op "chmod".
func (c *Client) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	return c.setattrPath(ctx, "chmod", name, &sattr{mask: MaskOf(AttrMode), mode: unixMode(mode)})
}

// Chown changes the numeric user and group IDs of name, as os.Chown does:
// -1 leaves that ID unchanged, and a symbolic link is followed. The IDs
// are sent as decimal strings ("1000"), the form RFC 8881 §5.9 allows
// for AUTH_SYS when the server does not map names; NFS-Ganesha accepts it
// (its NFSV4 option Allow_Numeric_Owners, on by default). A server that
// insists on "user@domain" names refuses it with NFS4ERR_BADOWNER, which
// matches syscall.EINVAL. Errors are *fs.PathError with Op "chown".
func (c *Client) Chown(ctx context.Context, name string, uid, gid int) error {
	if !validID(uid) || !validID(gid) {
		return pathError("chown", name, fmt.Errorf("nfs4: uid %d or gid %d out of range: %w", uid, gid, ErrInval))
	}
	s := &sattr{}
	if uid != -1 {
		s.mask.Set(AttrOwner)
		s.owner = strconv.Itoa(uid)
	}
	if gid != -1 {
		s.mask.Set(AttrOwnerGroup)
		s.ownerGroup = strconv.Itoa(gid)
	}
	if s.mask.IsEmpty() {
		s = nil
	}
	return c.setattrPath(ctx, "chown", name, s)
}

// validID reports whether id is -1 or a 32-bit user or group ID.
func validID(id int) bool { return id >= -1 && int64(id) <= math.MaxUint32 }

// Chtimes changes the access and modification times of name, as
// os.Chtimes does: a zero time.Time leaves that time unchanged, and a
// symbolic link is followed. The times are the client's, sent with
// nanosecond precision; the server may store less. Errors are
// *fs.PathError with Op "chtimes".
func (c *Client) Chtimes(ctx context.Context, name string, atime, mtime time.Time) error {
	s := &sattr{atime: atime, mtime: mtime}
	if !atime.IsZero() {
		s.mask.Set(AttrTimeAccessSet)
	}
	if !mtime.IsZero() {
		s.mask.Set(AttrTimeModifySet)
	}
	if s.mask.IsEmpty() {
		s = nil
	}
	return c.setattrPath(ctx, "chtimes", name, s)
}

// Truncate changes the size of the file name, as os.Truncate does:
// data beyond size is discarded, and a file extended reads as zeros
// there. A symbolic link is followed. Errors are *fs.PathError with Op
// "truncate"; a directory gives an error matching syscall.EISDIR, a
// negative size ErrInval.
func (c *Client) Truncate(ctx context.Context, name string, size int64) error {
	if size < 0 {
		return pathError("truncate", name, fmt.Errorf("nfs4: negative size %d: %w", size, ErrInval))
	}
	return c.setattrPath(ctx, "truncate", name, &sattr{mask: MaskOf(AttrSize), size: uint64(size)})
}
