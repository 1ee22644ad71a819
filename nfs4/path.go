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

// cleanPath returns name as a cleaned absolute path, the metadata cache's
// key; without allocating when it is one already.
func cleanPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return path.Clean(name)
}

// lookup resolves name and returns its file handle and attributes. With
// follow, a final symbolic link is followed; without, the link itself is
// returned (Lstat). What the metadata cache holds is used (cache.go); the
// handle returned may be shared and must not be modified.
func (c *Client) lookup(ctx context.Context, name string, follow bool) ([]byte, Attr, error) {
	p := cleanPath(name)
	if fh, attr, ok := c.cache.get(p); ok && !(follow && attr.Type == TypeSymlink) {
		return fh, attr, nil
	}
	return c.resolve(ctx, splitPath(p), follow, false)
}

// lookupFresh is lookup with the last component looked up and its
// attributes fetched from the server, the directories above it from the
// cache: open's revalidation (close-to-open consistency).
func (c *Client) lookupFresh(ctx context.Context, name string, follow bool) ([]byte, Attr, error) {
	return c.resolve(ctx, splitPath(cleanPath(name)), follow, true)
}

// resolve is lookup's walk of comps; with fresh, each final component is
// fetched from the server.
func (c *Client) resolve(ctx context.Context, comps []string, follow, fresh bool) ([]byte, Attr, error) {
	links := 0
	for {
		fh, attr, n, err := c.walkCached(ctx, comps, fresh)
		if errors.Is(err, ErrSymlink) && n > 0 {
			// comps[n-1] is a symlink that a LOOKUP tried to descend into.
			if links++; links > maxSymlinks {
				return nil, Attr{}, errTooManyLinks
			}
			linkFH, _, _, err := c.walkCached(ctx, comps[:n], false)
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

// walkCached is walk with the metadata cache: comps itself from the cache
// unless fresh, otherwise a walk from the deepest directory above it that
// the cache holds, whose result is cached. A cached directory whose handle
// the server calls stale is forgotten, and the walk starts again from the
// root, once.
func (c *Client) walkCached(ctx context.Context, comps []string, fresh bool) (fh []byte, attr Attr, n int, err error) {
	if c.cache == nil {
		return c.walk(ctx, nil, comps)
	}
	full := joinPath(comps)
	if !fresh {
		if fh, attr, ok := c.cache.get(full); ok {
			return fh, attr, len(comps), nil
		}
	}
	c.cache.misses.Add(1)
	g := c.cache.begin()
	start, from := c.cache.dirPrefix(full, comps)
	fh, attr, n, err = c.walk(ctx, from, comps[start:])
	n += start
	if err != nil && from != nil && staleHandle(err) {
		c.cache.forgetFH(from)
		g = c.cache.begin()
		fh, attr, n, err = c.walk(ctx, nil, comps)
	}
	if err == nil {
		c.cache.put(full, fh, &attr, g)
	}
	return fh, attr, n, err
}

// walk looks up comps from the directory from (the root if nil) without
// following symlinks. It returns the last file handle and attributes, and
// how many components were looked up before an error.
func (c *Client) walk(ctx context.Context, from []byte, comps []string) (fh []byte, attr Attr, n int, err error) {
	mask := c.mask(statMask)
	fh = from
	for first := true; first || n < len(comps); first = false {
		chunk := comps[n:min(len(comps), n+lookupsPerCompound)]
		from := fh
		done := 0
		err = c.call(ctx, funcRequest{
			b: func(cmp *compound) { encodeWalk(cmp, from, chunk, mask) },
			p: func(r *reply) error {
				var err error
				fh, attr, done, err = parseWalk(r, from, chunk, fh)
				return err
			},
		})
		n += done
		if err != nil {
			return nil, Attr{}, n, err
		}
	}
	return fh, attr, n, nil
}

// encodeWalk adds to cmp the operations of a walk from the directory from
// (the root if nil) down comps: PUTFH or PUTROOTFH, a LOOKUP each, then
// GETFH and GETATTR of mask for where it ends.
func encodeWalk(cmp *compound, from []byte, comps []string, mask AttrMask) {
	if from == nil {
		cmp.putrootfh()
	} else {
		cmp.putfh(from)
	}
	for _, name := range comps {
		cmp.lookup(name)
	}
	cmp.getfh()
	cmp.getattr(mask)
}

// parseWalk reads the results of encodeWalk's operations: the handle where
// the walk ended (appended to buf[:0:0]), its attributes, and how many
// LOOKUPs succeeded.
func parseWalk(r *reply, from []byte, comps []string, buf []byte) (fh []byte, attr Attr, done int, err error) {
	op := uint32(opPutFH)
	if from == nil {
		op = opPutRootFH
	}
	if err := r.statusOnly(op); err != nil {
		return nil, Attr{}, 0, err
	}
	for range comps {
		if err := r.statusOnly(opLookup); err != nil {
			return nil, Attr{}, done, err
		}
		done++
	}
	b, err := r.getfh()
	if err != nil {
		return nil, Attr{}, done, err
	}
	fh = append(buf[:0:0], b...)
	err = r.getattr(&attr)
	return fh, attr, done, err
}

// lookupParent resolves the directory holding name and returns its handle
// and the last component. Symlinks in the directory part are followed.
func (c *Client) lookupParent(ctx context.Context, name string) (dirFH []byte, base string, err error) {
	comps := splitPath(name)
	if len(comps) == 0 {
		return nil, "", fmt.Errorf("nfs4: the root has no parent: %w", ErrInval)
	}
	dir := "/" + strings.Join(comps[:len(comps)-1], "/")
	if fh, ok := c.cache.dirFH(dir); ok {
		return fh, comps[len(comps)-1], nil
	}
	fh, attr, err := c.lookup(ctx, dir, true)
	if err != nil {
		return nil, "", err
	}
	if attr.Type != TypeDirectory {
		return nil, "", ErrNotDir
	}
	return fh, comps[len(comps)-1], nil
}

// readlinkFH reads the target of the symlink fh, from the cache if it
// holds it: a handle's target never changes.
func (c *Client) readlinkFH(ctx context.Context, fh []byte) (string, error) {
	if t, ok := c.cache.link(fh); ok {
		return t, nil
	}
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
	if err == nil {
		c.cache.setLink(fh, target)
	}
	return target, err
}

// pathError wraps err for operation op on path, the way os does.
func pathError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}
