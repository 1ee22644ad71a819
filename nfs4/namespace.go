package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Namespace operations: making, removing, renaming and linking names. Each
// resolves the name or the directory that holds it (following symbolic
// links on the way, as a kernel would), then sends one COMPOUND that acts
// on the file or the last component. The non-idempotent ones ask the server to keep their reply in
// its session reply cache, so that a request re-sent after a reconnect
// gets the original answer: NFS4ERR_EXIST for a Mkdir that in fact
// succeeded would be wrong.

const (
	// createBatch is how many CREATEs MkdirAll sends in one COMPOUND,
	// after SEQUENCE and PUTFH and before GETFH.
	createBatch = maxOps - 3
	// removeBatch is how many REMOVEs RemoveAll sends in one COMPOUND,
	// after SEQUENCE and PUTFH.
	removeBatch = maxOps - 2
	// maxRemoveDepth bounds how deep RemoveAll descends.
	maxRemoveDepth = 256
	// maxRemoveRounds bounds how often RemoveAll lists one directory
	// again because entries were added while it emptied it.
	maxRemoveRounds = 1 << 16
)

// removeMask is what RemoveAll asks READDIR for: the type, to know which
// entries to descend into.
var removeMask = MaskOf(AttrType, AttrRdattrError)

// unixMode converts the permission and special bits of m to the mode
// attribute's bits, as os does for the mode argument of a system call.
func unixMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= modeSUID
	}
	if m&fs.ModeSetgid != 0 {
		mode |= modeSGID
	}
	if m&fs.ModeSticky != 0 {
		mode |= modeSVTX
	}
	return mode
}

// joinPath returns the absolute path of comps, for errors.
func joinPath(comps []string) string { return "/" + strings.Join(comps, "/") }

// linkError wraps err for an operation on two paths, the way os does.
func linkError(op, oldname, newname string, err error) error {
	if err == nil {
		return nil
	}
	return &os.LinkError{Op: op, Old: oldname, New: newname, Err: err}
}

// Mkdir creates the directory name with mode perm (its permission bits and
// fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky). No umask is applied:
// the server receives perm as given. The parent must exist. Errors are
// *fs.PathError with Op "mkdir"; an existing name matches fs.ErrExist.
func (c *Client) Mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	if done, err := c.mkdirWalk(ctx, name, perm); done {
		return pathError("mkdir", name, err)
	}
	for try := 0; ; try++ {
		dir, base, err := c.lookupParent(ctx, name)
		if err != nil {
			return pathError("mkdir", name, err)
		}
		_, _, err = c.mkdirIn(ctx, dir, []string{base}, perm)
		if try == 0 && c.cache.retryStale(err, dir, nil) {
			continue
		}
		return pathError("mkdir", name, err)
	}
}

// MkdirAll creates the directory name and any parents it lacks, each with
// mode perm as Mkdir does, and returns nil if name is already a directory,
// as os.MkdirAll does. A file in the way is reported as a *fs.PathError
// wrapping ErrNotDir (syscall.ENOTDIR) for that file's path.
//
// MkdirAll finds the deepest existing directory in about log2(depth)
// lookups and creates the missing ones below it in chains of up to 13 per
// COMPOUND. A directory made by someone else meanwhile is used as is.
func (c *Client) MkdirAll(ctx context.Context, name string, perm fs.FileMode) error {
	_, attr, err := c.lookup(ctx, name, true)
	if err == nil {
		if attr.Type == TypeDirectory {
			return nil
		}
		return pathError("mkdir", name, ErrNotDir)
	}
	if !errors.Is(err, ErrNoEnt) {
		return pathError("mkdir", name, err)
	}
	comps := splitPath(name)
	// comps[:lo] is a directory (the root, to start with); comps[:hi]
	// does not exist. Existence is monotonic along a path, so bisect.
	lo, hi := 0, len(comps)
	fh := c.rootFH
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		mfh, mattr, err := c.lookup(ctx, joinPath(comps[:mid]), true)
		switch {
		case err == nil && mattr.Type == TypeDirectory:
			lo, fh = mid, mfh
		case err == nil:
			return pathError("mkdir", joinPath(comps[:mid]), ErrNotDir)
		case errors.Is(err, ErrNoEnt):
			hi = mid
		default:
			return pathError("mkdir", joinPath(comps[:mid]), err)
		}
	}
	for lo < len(comps) {
		batch := comps[lo:min(len(comps), lo+createBatch)]
		nfh, made, err := c.mkdirIn(ctx, fh, batch, perm)
		if made == 0 && c.cache.retryStale(err, fh, nil) {
			// A cached directory is gone: find it again, once.
			if fh, _, err = c.lookup(ctx, joinPath(comps[:lo]), true); err != nil {
				return pathError("mkdir", joinPath(comps[:lo]), err)
			}
			nfh, made, err = c.mkdirIn(ctx, fh, batch, perm)
		}
		lo += made
		if err == nil {
			fh = nfh
			continue
		}
		if made == len(batch) { // all made, but the reply's end was lost
			return pathError("mkdir", joinPath(comps[:lo]), err)
		}
		at := joinPath(comps[:lo+1])
		if !errors.Is(err, ErrExist) {
			return pathError("mkdir", at, err)
		}
		// Made meanwhile, by another client or another goroutine.
		efh, eattr, lerr := c.lookup(ctx, at, true)
		if lerr != nil {
			return pathError("mkdir", at, lerr)
		}
		if eattr.Type != TypeDirectory {
			return pathError("mkdir", at, ErrNotDir)
		}
		lo, fh = lo+1, efh
	}
	return nil
}

// mkdirWalk is Mkdir in one COMPOUND, using the cache: a CREATE in name's
// directory if the cache holds it; otherwise, from the deepest directory
// above it that the cache holds (the root if none), LOOKUP the rest of the
// way, GETFH and GETATTR of the directory, which are cached, then CREATE.
// done is false, and nothing was made, if a cached handle was stale, if
// the walk met a symlink, or if it is too long for one COMPOUND: Mkdir
// then resolves the directory first.
func (c *Client) mkdirWalk(ctx context.Context, name string, perm fs.FileMode) (done bool, err error) {
	comps := splitPath(name)
	if c.cache == nil || len(comps) < 2 {
		return false, nil
	}
	parent, base := comps[:len(comps)-1], comps[len(comps)-1]
	full := joinPath(parent)
	if dir, ok := c.cache.dirFH(full); ok {
		_, _, err := c.mkdirIn(ctx, dir, []string{base}, perm)
		if c.cache.retryStale(err, dir, nil) {
			return false, nil
		}
		return true, err
	}
	start, from := c.cache.dirPrefix(full, parent)
	rest := parent[start:]
	if len(rest) > lookupsPerCompound-2 {
		return false, nil
	}
	mask := c.mask(statMask)
	attrs := &sattr{mask: MaskOf(AttrMode), mode: unixMode(perm)}
	var (
		dirFH   []byte
		dirAttr Attr
		res     createRes
		walked  bool // every LOOKUP succeeded
	)
	g := c.cache.begin()
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			encodeWalk(cmp, from, rest, mask)
			cmp.create(&createArgs{typ: TypeDirectory, name: base, attrs: attrs})
		},
		p: func(r *reply) error {
			var done int
			var err error
			dirFH, dirAttr, done, err = parseWalk(r, from, rest, dirFH)
			walked = done == len(rest) && dirFH != nil
			if err != nil {
				return err
			}
			return r.create(&res)
		},
		cache: true,
	})
	if dirFH != nil && dirAttr.Type == TypeDirectory {
		c.cache.put(full, dirFH, &dirAttr, g)
		c.cache.invalidateFH(dirFH) // the CREATE, if it ran, changed it
	}
	switch {
	case err != nil && (errors.Is(err, ErrSymlink) || errors.Is(err, ErrNotDir)) &&
		(!walked || dirAttr.Type == TypeSymlink):
		// A symlink on the way, or the directory's name is one (servers
		// say SYMLINK or NOTDIR): nothing was made, and Mkdir's own path
		// follows it.
		return false, nil
	case !walked && from != nil && c.cache.retryStale(err, from, nil):
		return false, nil
	}
	return true, err
}

// mkdirIn creates names in the directory dir as a chain: names[0] in dir,
// names[1] in names[0], and so on, in one COMPOUND (CREATE makes the new
// directory the current file handle). It returns the handle of the last,
// and how many were made before an error.
func (c *Client) mkdirIn(ctx context.Context, dir []byte, names []string, perm fs.FileMode) (fh []byte, made int, err error) {
	attrs := &sattr{mask: MaskOf(AttrMode), mode: unixMode(perm)}
	var res createRes
	defer c.cache.invalidateFH(dir)
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(dir)
			for _, n := range names {
				cmp.create(&createArgs{typ: TypeDirectory, name: n, attrs: attrs})
			}
			cmp.getfh()
		},
		p: func(r *reply) error {
			made = 0
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			for range names {
				if err := r.create(&res); err != nil {
					return err
				}
				made++
			}
			b, err := r.getfh()
			fh = append(fh[:0:0], b...)
			return err
		},
		cache: true,
	})
	return fh, made, err
}

// Remove removes the file, symbolic link or empty directory name. A
// symbolic link is removed itself, not its target. Errors are
// *fs.PathError with Op "remove"; a directory that is not empty matches
// syscall.ENOTEMPTY.
func (c *Client) Remove(ctx context.Context, name string) error {
	for try := 0; ; try++ {
		dir, base, err := c.lookupParent(ctx, name)
		if err != nil {
			return pathError("remove", name, err)
		}
		_, err = c.removeIn(ctx, dir, []string{base})
		c.cache.drop(cleanPath(name))
		if try == 0 && c.cache.retryStale(err, dir, nil) {
			continue
		}
		return pathError("remove", name, err)
	}
}

// removeIn removes names from the directory dir in one COMPOUND, and
// returns how many were removed before an error (the COMPOUND stops at
// the first failure).
func (c *Client) removeIn(ctx context.Context, dir []byte, names []string) (removed int, err error) {
	var cinfo changeInfo
	defer c.cache.invalidateFH(dir)
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(dir)
			for _, n := range names {
				cmp.remove(n)
			}
		},
		p: func(r *reply) error {
			removed = 0
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			for range names {
				if err := r.remove(&cinfo); err != nil {
					return err
				}
				removed++
			}
			return nil
		},
		cache: true,
	})
	return removed, err
}

// RemoveAll removes name and, if it is a directory, everything in it, as
// os.RemoveAll does: a name that does not exist is not an error, and
// symbolic links are removed, not followed. It stops at the first error
// and returns it as a *fs.PathError naming the path that could not be
// removed. A name ending in "." is refused with ErrInval, as os does.
// Trees deeper than 256 levels are refused with an error.
//
// Directories are emptied by listing them and sending up to 14 REMOVEs
// per COMPOUND; entries added while RemoveAll works on a directory are
// removed too, up to a bound.
func (c *Client) RemoveAll(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if name == "." || strings.HasSuffix(name, "/.") {
		return pathError("RemoveAll", name, ErrInval)
	}
	defer c.cache.drop(cleanPath(name))
	for try := 0; ; try++ {
		dir, base, err := c.lookupParent(ctx, name)
		if errors.Is(err, ErrNoEnt) {
			return nil
		}
		if err != nil {
			return pathError("RemoveAll", name, err)
		}
		err = c.removeTree(ctx, dir, base, name, 0)
		if try == 0 && c.cache.retryStale(err, dir, nil) {
			continue
		}
		return err
	}
}

// removeTree removes base from dir, emptying it first if it is a
// directory that is not empty. full is its path, for errors; depth is how
// many directories above it removeTree is emptying.
func (c *Client) removeTree(ctx context.Context, dir []byte, base, full string, depth int) error {
	_, err := c.removeIn(ctx, dir, []string{base})
	if err == nil || errors.Is(err, ErrNoEnt) {
		return nil
	}
	// POSIX lets rmdir of a directory that is not empty fail with EEXIST
	// as well as ENOTEMPTY; servers pass on either.
	if !errors.Is(err, ErrNotEmpty) && !errors.Is(err, ErrExist) {
		return pathError("remove", full, err)
	}
	if depth >= maxRemoveDepth {
		return pathError("remove", full, fmt.Errorf("nfs4: RemoveAll: tree deeper than %d directories: %w", maxRemoveDepth, err))
	}
	fh, attr, lerr := c.lookupIn(ctx, dir, base)
	if errors.Is(lerr, ErrNoEnt) {
		return nil
	}
	if lerr != nil {
		return pathError("remove", full, lerr)
	}
	if attr.Type != TypeDirectory {
		return pathError("remove", full, err)
	}
	if err := c.emptyDir(ctx, fh, full, depth+1); err != nil {
		return err
	}
	if _, err := c.removeIn(ctx, dir, []string{base}); err != nil && !errors.Is(err, ErrNoEnt) {
		return pathError("remove", full, err)
	}
	return nil
}

// emptyDir removes everything in the directory fh, whose path is full. It
// lists a page of entries from the start, removes them, and repeats until
// the directory is empty: removing entries may invalidate the cookies of
// the rest, so it never goes on from a cookie.
func (c *Client) emptyDir(ctx context.Context, fh []byte, full string, depth int) error {
	mask := c.mask(removeMask)
	var ents []fs.DirEntry
	for round := 0; ; round++ {
		if round == maxRemoveRounds {
			return pathError("remove", full, fmt.Errorf("nfs4: RemoveAll: directory still not empty after %d listings", round))
		}
		var cur dirCursor
		var err error
		ents, err = c.readdirPage(ctx, fh, full, &cur, mask, ents[:0])
		if err != nil {
			return pathError("readdir", full, err)
		}
		if len(ents) == 0 {
			return nil
		}
		var names []string
		for _, e := range ents {
			if e.IsDir() {
				if err := c.removeTree(ctx, fh, e.Name(), path.Join(full, e.Name()), depth); err != nil {
					return err
				}
				continue
			}
			names = append(names, e.Name())
		}
		if err := c.removeNames(ctx, fh, full, names, depth); err != nil {
			return err
		}
		if cur.eof {
			return nil
		}
	}
}

// removeNames removes names, listed as not directories, from the
// directory fh, many per COMPOUND. A name that has gone meanwhile is
// skipped; one that has become a directory is removed with removeTree.
func (c *Client) removeNames(ctx context.Context, fh []byte, full string, names []string, depth int) error {
	for len(names) > 0 {
		batch := names[:min(len(names), removeBatch)]
		n, err := c.removeIn(ctx, fh, batch)
		names = names[n:]
		if err == nil {
			continue
		}
		name := names[0]
		names = names[1:]
		switch {
		case errors.Is(err, ErrNoEnt):
		case errors.Is(err, ErrNotEmpty) || errors.Is(err, ErrExist):
			if err := c.removeTree(ctx, fh, name, path.Join(full, name), depth); err != nil {
				return err
			}
		default:
			return pathError("remove", path.Join(full, name), err)
		}
	}
	return nil
}

// lookupIn looks up one name in the directory dir, without following a
// symbolic link, and returns its handle and type.
func (c *Client) lookupIn(ctx context.Context, dir []byte, name string) ([]byte, Attr, error) {
	var fh []byte
	var attr Attr
	mask := c.mask(MaskOf(AttrType))
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(dir)
			cmp.lookup(name)
			cmp.getfh()
			cmp.getattr(mask)
		},
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			if err := r.statusOnly(opLookup); err != nil {
				return err
			}
			b, err := r.getfh()
			if err != nil {
				return err
			}
			fh = append(fh[:0:0], b...)
			return r.getattr(&attr)
		},
	})
	return fh, attr, err
}

// Rename renames oldname to newname, replacing newname if it exists, with
// the semantics of rename(2): a directory may replace only an empty
// directory, and a file only a file. (os.Rename refuses any existing
// directory as newname; Rename leaves the decision to the server.) The
// server performs the rename atomically. Errors are *os.LinkError with Op
// "rename".
func (c *Client) Rename(ctx context.Context, oldname, newname string) error {
	defer c.cache.drop(cleanPath(newname))
	defer c.cache.drop(cleanPath(oldname))
	for try := 0; ; try++ {
		odir, ndir, err := c.rename(ctx, oldname, newname)
		if try == 0 && c.cache.retryStale(err, odir, ndir) {
			continue
		}
		return err
	}
}

// rename is Rename once; it returns the directories' handles it used.
func (c *Client) rename(ctx context.Context, oldname, newname string) (odir, ndir []byte, err error) {
	odir, obase, err := c.lookupParent(ctx, oldname)
	if err != nil {
		return nil, nil, linkError("rename", oldname, newname, err)
	}
	ndir, nbase := odir, ""
	if oc, nc := splitPath(oldname), splitPath(newname); len(oc) > 0 && len(nc) > 0 &&
		joinPath(oc[:len(oc)-1]) == joinPath(nc[:len(nc)-1]) {
		nbase = nc[len(nc)-1] // same directory: no second walk
	} else if ndir, nbase, err = c.lookupParent(ctx, newname); err != nil {
		return odir, nil, linkError("rename", oldname, newname, err)
	}
	defer c.cache.invalidateFH(odir)
	defer c.cache.invalidateFH(ndir)
	var src, dst changeInfo
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(odir)
			cmp.savefh()
			cmp.putfh(ndir)
			cmp.rename(obase, nbase)
		},
		p: func(r *reply) error {
			for _, op := range [...]uint32{opPutFH, opSaveFH, opPutFH} {
				if err := r.statusOnly(op); err != nil {
					return err
				}
			}
			return r.rename(&src, &dst)
		},
		cache: true,
	})
	return odir, ndir, linkError("rename", oldname, newname, err)
}

// Symlink creates newname as a symbolic link to oldname, which is stored
// as given and need not exist. Errors are *os.LinkError with Op
// "symlink".
func (c *Client) Symlink(ctx context.Context, oldname, newname string) error {
	for try := 0; ; try++ {
		dir, err := c.symlink(ctx, oldname, newname)
		if try == 0 && c.cache.retryStale(err, dir, nil) {
			continue
		}
		return err
	}
}

// symlink is Symlink once; it returns the directory's handle it used.
func (c *Client) symlink(ctx context.Context, oldname, newname string) ([]byte, error) {
	dir, base, err := c.lookupParent(ctx, newname)
	if err != nil {
		return nil, linkError("symlink", oldname, newname, err)
	}
	defer c.cache.invalidateFH(dir)
	var res createRes
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(dir)
			cmp.create(&createArgs{typ: TypeSymlink, name: base, linkData: oldname})
		},
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.create(&res)
		},
		cache: true,
	})
	return dir, linkError("symlink", oldname, newname, err)
}

// Readlink returns the target of the symbolic link name. Errors are
// *fs.PathError with Op "readlink"; a name that is not a symbolic link
// gives ErrInval (syscall.EINVAL), as readlink(2) does.
func (c *Client) Readlink(ctx context.Context, name string) (string, error) {
	for try := 0; ; try++ {
		fh, attr, err := c.lookup(ctx, name, false)
		if err != nil {
			return "", pathError("readlink", name, err)
		}
		if attr.Type != TypeSymlink {
			return "", pathError("readlink", name, ErrInval)
		}
		target, err := c.readlinkFH(ctx, fh)
		if try == 0 && c.cache.retryStale(err, fh, nil) {
			continue
		}
		if err != nil {
			return "", pathError("readlink", name, err)
		}
		return target, nil
	}
}

// Link creates newname as a hard link to the file oldname. A symbolic
// link oldname is linked itself, not its target, as os.Link does on
// Linux. Errors are *os.LinkError with Op "link".
func (c *Client) Link(ctx context.Context, oldname, newname string) error {
	for try := 0; ; try++ {
		fh, dir, err := c.link(ctx, oldname, newname)
		if try == 0 && c.cache.retryStale(err, fh, dir) {
			continue
		}
		return err
	}
}

// link is Link once; it returns the file's and the directory's handles it
// used.
func (c *Client) link(ctx context.Context, oldname, newname string) (fh, dir []byte, err error) {
	fh, _, err = c.lookup(ctx, oldname, false)
	if err != nil {
		return nil, nil, linkError("link", oldname, newname, err)
	}
	dir, base, err := c.lookupParent(ctx, newname)
	if err != nil {
		return fh, nil, linkError("link", oldname, newname, err)
	}
	defer c.cache.invalidateFH(fh) // its link count
	defer c.cache.invalidateFH(dir)
	var cinfo changeInfo
	err = c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(fh)
			cmp.savefh()
			cmp.putfh(dir)
			cmp.link(base)
		},
		p: func(r *reply) error {
			for _, op := range [...]uint32{opPutFH, opSaveFH, opPutFH} {
				if err := r.statusOnly(op); err != nil {
					return err
				}
			}
			return r.link(&cinfo)
		},
		cache: true,
	})
	return fh, dir, linkError("link", oldname, newname, err)
}
