package nfs4

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Directory listing. READDIR returns a directory's entries a page at a
// time, each with the attributes asked for, so that a listing needs no
// GETATTR per entry: a cookie names the place to go on from and a
// verifier (cookieverf) ties the cookies to one version of the server's
// directory cursor. readdirPage reads one page; Client.ReadDir loops over
// it, and File.ReadDir keeps its cursor in the File's dirState.

// READDIR sizes asked for: dircount bounds the names and cookies of a
// page, maxcount the whole reply (names, cookies and attributes). The
// server may return less; maxcount is also held under the session's
// reply size.
const (
	readdirDirCount = 32 << 10
	readdirMaxCount = 128 << 10
)

// dirMask is what a listing asks for with each entry: the attributes
// behind a FileInfo, and rdattr_error so that one entry whose attributes
// the server cannot read does not fail the whole READDIR (RFC 8881
// §5.8.1.12).
var dirMask = func() AttrMask {
	m := statMask
	m.Set(AttrRdattrError)
	return m
}()

// errNoDirProgress reports a READDIR page that neither held an entry nor
// reached the end: going on would ask for the same page again.
var errNoDirProgress = fmt.Errorf("%w: READDIR returned no entries before the end", errBadReply)

// dirCursor is where a listing stands: the cookie of the last entry read,
// the verifier that goes with it, and whether the end was reached. The
// zero value is the start of a directory.
type dirCursor struct {
	cookie uint64
	verf   verifier
	eof    bool
	seen   map[uint64]struct{} // cookies gone on from; see cookieSeen
}

// dirState is a directory File's READDIR cursor and the entries read
// from the server but not yet returned. Its zero value is the start of the
// directory. mu serializes File.ReadDir calls, which share the cursor; it
// is held across the READDIR round trips.
type dirState struct {
	mu  ctxMutex
	cur dirCursor     // guarded by mu
	buf []fs.DirEntry // guarded by mu: read, not yet returned
}

// readdirPage reads one page of the directory fh from cur, appends its
// entries (without "." and "..") to dst, and advances cur. dirName is the
// directory's path, for errors of single entries. mask is the attributes
// to ask for with each entry; include AttrRdattrError.
//
// An entry whose attributes the server could not read (rdattr_error) is
// left out if the error says it no longer exists, as os does for a file
// removed between reading a directory and stat-ing it; otherwise it is
// kept, and its Info method returns the error.
func (c *Client) readdirPage(ctx context.Context, fh []byte, dirName string, cur *dirCursor, mask AttrMask, dst []fs.DirEntry) ([]fs.DirEntry, error) {
	if cur.eof {
		return dst, nil
	}
	maxcount := uint32(min(readdirMaxCount, c.rsize))
	cookie, verf := cur.cookie, cur.verf
	var res readdirRes
	var last uint64
	n := len(dst)
	err := c.call(ctx, funcRequest{
		b: func(cmp *compound) {
			cmp.putfh(fh)
			cmp.readdir(cookie, &verf, readdirDirCount, maxcount, mask)
		},
		p: func(r *reply) error {
			// A reply may be parsed more than once (a retry after
			// NFS4ERR_DELAY); keep only the last parse's entries.
			dst = dst[:n]
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.readdir(&res, func(e *dirEntry) error {
				if cur.cookieSeen(e.cookie) {
					return fmt.Errorf("%w: entry %q has cookie %d again", ErrCookieLoop, e.name, e.cookie)
				}
				last = e.cookie
				ent, err := newDirEntry(dirName, e)
				if ent != nil {
					dst = append(dst, ent)
				}
				return err
			})
		},
	})
	if err != nil {
		return dst[:n], err
	}
	if res.entries == 0 && !res.eof {
		return dst[:n], errNoDirProgress
	}
	if res.entries > 0 {
		cur.advance(last)
	}
	cur.verf, cur.eof = res.cookieVerf, res.eof
	return dst, nil
}

// newDirEntry returns the fs.DirEntry for one READDIR entry, or nil for
// an entry to leave out. Its error ends the listing: the name cannot be
// used as a path element.
func newDirEntry(dirName string, e *dirEntry) (fs.DirEntry, error) {
	name := e.name
	if string(name) == "." || string(name) == ".." {
		return nil, nil
	}
	if slices.Contains(name, '/') || slices.Contains(name, 0) {
		// Such a name would step out of the directory when joined to
		// its path (RemoveAll, a caller's filepath.Join).
		return nil, fmt.Errorf("%w: READDIR entry %q contains '/' or NUL", errBadReply, name)
	}
	if st := e.attr.RdattrError; st != OK {
		if st == ErrNoEnt || st == ErrStale {
			return nil, nil
		}
		full := path.Join(dirName, string(name))
		return &dirEntryErr{
			name: string(name),
			typ:  e.attr.Type,
			err:  pathError("lstat", full, st),
		}, nil
	}
	return &dirEntryInfo{fileInfo{name: string(name), attr: e.attr}}, nil
}

// dirEntryErr is a READDIR entry that came without attributes: its Info
// method returns the error the server gave for them.
type dirEntryErr struct {
	name string
	typ  FileType // 0 unless the server sent the type despite the error
	err  error
}

func (d *dirEntryErr) Name() string { return d.name }
func (d *dirEntryErr) IsDir() bool  { return d.typ == TypeDirectory }

// Type returns the entry's type bits, or fs.ModeIrregular if the server
// did not send its type.
func (d *dirEntryErr) Type() fs.FileMode          { return d.typ.Mode().Type() }
func (d *dirEntryErr) Info() (fs.FileInfo, error) { return nil, d.err }
func (d *dirEntryErr) String() string             { return fs.FormatDirEntry(d) }

// readdirAll reads the directory fh from cur to its end, appending to
// dst, at most Config.MaxListing bytes in all.
func (c *Client) readdirAll(ctx context.Context, fh []byte, dirName string, cur *dirCursor, mask AttrMask, dst []fs.DirEntry) ([]fs.DirEntry, error) {
	budget := listingBudget{max: c.cfg.MaxListing}
	for !cur.eof {
		n := len(dst)
		var err error
		if dst, err = c.readdirPage(ctx, fh, dirName, cur, mask, dst); err != nil {
			return dst, err
		}
		if err := budget.add(dst[n:]); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// ReadDir reads the directory name and returns its entries sorted by name,
// as os.ReadDir does. A final symbolic link is followed. Each entry
// carries the attributes READDIR returned with it, so its Info method
// needs no round trip and its Sys method returns the *Attr; an entry whose
// attributes the server could not read has an Info method that returns
// the server's error instead.
//
// Errors are *fs.PathError: Op "open" when name cannot be resolved,
// "readdir" when it is not a directory (syscall.ENOTDIR) or cannot be
// listed. On an error part way, ReadDir returns the entries read before it.
func (c *Client) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	fh, attr, err := c.lookup(ctx, name, true)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	if attr.Type != TypeDirectory {
		return nil, pathError("readdir", name, ErrNotDir)
	}
	var cur dirCursor
	ents, err := c.readdirAll(ctx, fh, name, &cur, c.mask(dirMask), nil)
	if len(ents) == 0 && c.cache.retryStale(err, fh, nil) {
		// The cached directory is gone: look the name up again, once.
		if fh, attr, err = c.lookup(ctx, name, true); err != nil {
			return nil, pathError("open", name, err)
		}
		if attr.Type != TypeDirectory {
			return nil, pathError("readdir", name, ErrNotDir)
		}
		cur = dirCursor{}
		ents, err = c.readdirAll(ctx, fh, name, &cur, c.mask(dirMask), nil)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, pathError("readdir", name, err)
}

// ReadDir reads the directory f and returns up to n of its entries, in the
// order the server lists them, with the semantics of fs.ReadDirFile:
//
// With n > 0, ReadDir returns at most n entries; at the end of the
// directory it returns an empty slice and io.EOF.
//
// With n <= 0, ReadDir returns all the entries that remain, and a nil
// error at the end of the directory.
//
// Entries carry their attributes as with Client.ReadDir. A File that is
// not a directory returns a *fs.PathError wrapping ErrNotDir (matching
// syscall.ENOTDIR). Its READDIRs run under the File's context (see
// WithContext). It is safe to call from
// several goroutines; they share one cursor, so each entry is returned
// once.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if err := f.checkOpen("readdir"); err != nil {
		return nil, err
	}
	if !f.dir {
		return nil, pathError("readdir", f.name, ErrNotDir)
	}
	d := &f.list
	if err := d.mu.lock(f.ctx); err != nil {
		return nil, pathError("readdir", f.name, err)
	}
	defer d.mu.unlock()
	mask := f.c.mask(dirMask)
	var err error
	budget := listingBudget{max: f.c.cfg.MaxListing}
	if n <= 0 {
		err = budget.add(d.buf)
	}
	for err == nil && !d.cur.eof && (n <= 0 || len(d.buf) < n) {
		k := len(d.buf)
		d.buf, err = f.c.readdirPage(f.ctx, f.fh, f.name, &d.cur, mask, d.buf)
		if err == nil && n <= 0 {
			err = budget.add(d.buf[k:])
		}
	}
	// An error leaves the cursor where it was: the next call asks for the
	// same page again.
	if n <= 0 {
		out := d.buf
		d.buf = nil
		if out == nil {
			out = []fs.DirEntry{}
		}
		return out, pathError("readdir", f.name, err)
	}
	if len(d.buf) == 0 {
		if err != nil {
			return []fs.DirEntry{}, pathError("readdir", f.name, err)
		}
		return []fs.DirEntry{}, io.EOF
	}
	k := min(n, len(d.buf))
	out := slices.Clone(d.buf[:k])
	d.buf = d.buf[k:]
	if len(d.buf) == 0 {
		d.buf = nil // let the backing array go
	}
	return out, nil
}

// dirEntry is an fs.DirEntry from READDIR, with the entry's attributes.
type dirEntryInfo struct{ fileInfo }

func (d *dirEntryInfo) Type() fs.FileMode          { return d.Mode().Type() }
func (d *dirEntryInfo) Info() (fs.FileInfo, error) { return &d.fileInfo, nil }
func (d *dirEntryInfo) String() string             { return fs.FormatDirEntry(d) }
