package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Path resolution. NFSv4 LOOKUP takes one component at a time and never
// follows symbolic links, so the client walks a path itself: up to
// lookupsPerCompound components per COMPOUND (PUTFH or PUTROOTFH, LOOKUP…,
// GETFH, GETATTR), and when a LOOKUP meets a symlink (NFS4ERR_SYMLINK) it
// reads the link and splices its target into the rest of the path, as a
// kernel would, at most maxSymlinks times.

const (
	lookupsPerCompound = maxOps - 5 // SEQUENCE, PUTFH, GETFH, GETATTR and one spare
	maxSymlinks        = 40         // like Linux's MAXSYMLINKS
)

// statMask is the attributes behind a FileInfo.
var statMask = MaskOf(AttrType, AttrChange, AttrSize, AttrFSID, AttrFileID, AttrMode,
	AttrNumLinks, AttrOwner, AttrOwnerGroup, AttrSpaceUsed, AttrTimeAccess,
	AttrTimeMetadata, AttrTimeModify)

// errTooManyLinks is returned for a path with more than maxSymlinks links.
var errTooManyLinks = errors.New("nfs4: too many levels of symbolic links")

// splitPath cleans p and splits it into components; "/" and "" give none.
func splitPath(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// mask returns m limited to the attributes the server supports.
func (c *Client) mask(m AttrMask) AttrMask {
	if c.supported.IsEmpty() {
		return m
	}
	for i := range m {
		m[i] &= c.supported[i]
	}
	return m
}

// lookup resolves name and returns its file handle and attributes. With
// follow, a final symbolic link is followed; without, the link itself is
// returned (Lstat).
func (c *Client) lookup(ctx context.Context, name string, follow bool) ([]byte, Attr, error) {
	comps := splitPath(name)
	links := 0
	for {
		fh, attr, n, err := c.walk(ctx, comps)
		if errors.Is(err, ErrSymlink) && n > 0 {
			// comps[n-1] is a symlink that a LOOKUP tried to descend into.
			if links++; links > maxSymlinks {
				return nil, Attr{}, errTooManyLinks
			}
			linkFH, _, _, err := c.walk(ctx, comps[:n])
			if err != nil {
				return nil, Attr{}, err
			}
			target, err := c.readlinkFH(ctx, linkFH)
			if err != nil {
				return nil, Attr{}, err
			}
			comps = splice(comps[:n-1], target, comps[n:])
			continue
		}
		if err != nil {
			return nil, Attr{}, err
		}
		if follow && attr.Type == TypeSymlink {
			if links++; links > maxSymlinks {
				return nil, Attr{}, errTooManyLinks
			}
			target, err := c.readlinkFH(ctx, fh)
			if err != nil {
				return nil, Attr{}, err
			}
			comps = splice(comps[:len(comps)-1], target, nil)
			continue
		}
		return fh, attr, nil
	}
}

// splice replaces a symlink whose parent is dir by its target, followed by
// rest, and cleans the result lexically.
func splice(dir []string, target string, rest []string) []string {
	var p string
	if strings.HasPrefix(target, "/") {
		p = target
	} else {
		p = "/" + strings.Join(dir, "/") + "/" + target
	}
	if len(rest) > 0 {
		p += "/" + strings.Join(rest, "/")
	}
	return splitPath(p)
}

// walk looks up comps from the root without following symlinks. It returns
// the last file handle and attributes, and how many components were looked
// up before an error.
func (c *Client) walk(ctx context.Context, comps []string) (fh []byte, attr Attr, n int, err error) {
	mask := c.mask(statMask)
	for first := true; first || n < len(comps); first = false {
		chunk := comps[n:min(len(comps), n+lookupsPerCompound)]
		from := fh
		done := 0
		err = c.call(ctx, funcRequest{
			b: func(cmp *compound) {
				if from == nil {
					cmp.putrootfh()
				} else {
					cmp.putfh(from)
				}
				for _, name := range chunk {
					cmp.lookup(name)
				}
				cmp.getfh()
				cmp.getattr(mask)
			},
			p: func(r *reply) error {
				done = 0
				op := uint32(opPutFH)
				if from == nil {
					op = opPutRootFH
				}
				if err := r.statusOnly(op); err != nil {
					return err
				}
				for range chunk {
					if err := r.statusOnly(opLookup); err != nil {
						return err
					}
					done++
				}
				b, err := r.getfh()
				if err != nil {
					return err
				}
				fh = append(fh[:0:0], b...)
				return r.getattr(&attr)
			},
		})
		n += done
		if err != nil {
			return nil, Attr{}, n, err
		}
	}
	return fh, attr, n, nil
}

// lookupParent resolves the directory holding name and returns its handle
// and the last component. Symlinks in the directory part are followed.
func (c *Client) lookupParent(ctx context.Context, name string) (dirFH []byte, base string, err error) {
	comps := splitPath(name)
	if len(comps) == 0 {
		return nil, "", fmt.Errorf("nfs4: the root has no parent: %w", ErrInval)
	}
	dir := "/" + strings.Join(comps[:len(comps)-1], "/")
	fh, attr, err := c.lookup(ctx, dir, true)
	if err != nil {
		return nil, "", err
	}
	if attr.Type != TypeDirectory {
		return nil, "", ErrNotDir
	}
	return fh, comps[len(comps)-1], nil
}

// readlinkFH reads the target of the symlink fh.
func (c *Client) readlinkFH(ctx context.Context, fh []byte) (string, error) {
	var target string
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) { cmp.putfh(fh); cmp.readlink() },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			b, err := r.readlink()
			target = string(b)
			return err
		},
	})
	return target, err
}

// pathError wraps err for operation op on path, the way os does.
func pathError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}
