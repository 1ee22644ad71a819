package nfs4

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Opening files (RFC 8881 §18.16, §9). Open, Create and OpenFile map the
// os.O_* flags onto one OPEN: share access from the access mode, always
// with OPEN4_SHARE_ACCESS_WANT_NO_DELEG (this client has no callback
// channel to honour a recall), a create mode from O_CREATE and O_EXCL, and
// a claim on the parent's handle and the name (CLAIM_NULL) when creating,
// on the file's own handle (CLAIM_FH) otherwise.
//
// Each File gets an open owner of its own, c.owner followed by a serial
// number. With one owner for every File, the server would merge two opens
// of the same file into one open state with one stateid, and closing
// either File would end the other's state; distinct owners keep Files
// independent, as file descriptors are.

// openOwnerSeq numbers open owners; the prefix c.owner makes them unique
// per client.
var openOwnerSeq atomic.Uint64

// Open opens the named file for reading, as os.Open does. A directory opens
// without any open state on the server, for ReadDir. Errors are
// *fs.PathError with Op "open".
func (c *Client) Open(ctx context.Context, name string) (*File, error) {
	return c.OpenFile(ctx, name, os.O_RDONLY, 0)
}

// Create creates or truncates the named file, as os.Create does: it is
// opened for reading and writing, and created with mode 0666 if it does
// not exist. No umask is applied; the server may apply its own.
func (c *Client) Create(ctx context.Context, name string) (*File, error) {
	return c.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens the named file with the os.O_* flags in flag, as
// os.OpenFile does. perm (its permission, setuid, setgid and sticky bits)
// is the mode of a file it creates, sent as is: no umask is applied.
//
// O_RDONLY, O_WRONLY and O_RDWR choose the share access. O_CREATE creates
// the file if it is missing (UNCHECKED4); with O_EXCL it fails, with an
// error matching fs.ErrExist, if the file is present (EXCLUSIVE4_1: its
// verifier lets a re-sent create find its own file and succeed). O_TRUNC
// empties a regular file; like Linux, O_RDONLY|O_TRUNC truncates too, and
// so needs write access. O_APPEND makes every Write go to the end of the
// file, whose size it reads from the server first; NFS has no atomic
// append, so appends from several clients at once can overwrite one
// another. O_SYNC makes every write FILE_SYNC. A final
// symbolic link is followed, also when creating through a dangling one,
// except with O_EXCL.
//
// A directory may be opened read-only, for ReadDir; any other access
// fails with an error matching syscall.EISDIR. Errors are *fs.PathError
// with Op "open", wrapping a Status where the server refused.
func (c *Client) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*File, error) {
	f, err := c.openFile(ctx, name, flag, perm)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	return f, nil
}

// openMode is what the flags of OpenFile ask for.
type openMode struct {
	access     uint32 // OPEN4_SHARE_ACCESS_READ, _WRITE or _BOTH
	read       bool   // Read and ReadAt allowed
	write      bool   // Write, WriteAt and Truncate allowed
	create     bool
	excl       bool
	trunc      bool
	appendMode bool
	sync       bool // FILE_SYNC writes
}

// parseFlags maps os.O_* flags onto an openMode.
func parseFlags(flag int) (openMode, error) {
	var m openMode
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		m.access, m.read = shareAccessRead, true
	case os.O_WRONLY:
		m.access, m.write = shareAccessWrite, true
	case os.O_RDWR:
		m.access, m.read, m.write = shareAccessBoth, true, true
	default:
		return m, syscall.EINVAL
	}
	m.create = flag&os.O_CREATE != 0
	m.excl = m.create && flag&os.O_EXCL != 0
	m.trunc = flag&os.O_TRUNC != 0
	m.appendMode = flag&os.O_APPEND != 0
	m.sync = flag&os.O_SYNC != 0
	if m.trunc {
		// Truncating takes write access on the server, even for O_RDONLY.
		m.access |= shareAccessWrite
	}
	return m, nil
}

func (c *Client) openFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*File, error) {
	m, err := parseFlags(flag)
	if err != nil {
		return nil, err
	}
	if !m.create {
		// Close-to-open: the file's handle and attributes come from the
		// server, not the cache, and OPEN fetches them again.
		fh, attr, err := c.lookupFresh(ctx, name, true)
		if err != nil {
			return nil, err
		}
		if attr.Type == TypeDirectory {
			if m.write || m.trunc {
				return nil, ErrIsDir
			}
			return newFile(c, name, fh, true), nil
		}
		if !c.v40 {
			f, err := c.open(ctx, name, m, &openReq{putFH: fh, args: openArgs{claim: claimFH}})
			if c.cache.retryStale(err, fh, nil) {
				// Removed since the LOOKUP: look the name up once more.
				if fh, _, err = c.lookupFresh(ctx, name, true); err != nil {
					return nil, err
				}
				f, err = c.open(ctx, name, m, &openReq{putFH: fh, args: openArgs{claim: claimFH}})
			}
			return f, err
		}
		// NFSv4.0 has no CLAIM_FH: by name in the directory, as a create.
	}
	// Creating: OPEN by name in the parent. A final symlink is followed by
	// hand, since OPEN does not follow it (NFS4ERR_SYMLINK); the File keeps
	// the name it was opened by.
	target := name
	retried := false
	for links := 0; ; links++ {
		dirFH, base, err := c.lookupParent(ctx, target)
		if err != nil {
			return nil, err
		}
		if m.create {
			// The directory changes (or may): its attributes are
			// fetched again, and target's handle comes from OPEN.
			defer c.cache.invalidateFH(dirFH)
			defer c.cache.drop(cleanPath(target))
		}
		var verf verifier
		rand.Read(verf[:])
		q := createReq(dirFH, base, m, perm, verf)
		if c.v40 {
			q = c.adapt40(q, m)
		}
		f, err := c.open(ctx, name, m, q)
		if m.excl && (errors.Is(err, ErrNotSupp) || errors.Is(err, ErrInval)) {
			// A server without EXCLUSIVE4_1 (RFC 8881 §18.16.3 lets it
			// refuse): GUARDED4 still fails on an existing file, and the
			// session's reply cache still makes a replay exactly-once;
			// only a replay across a lost session would see EXIST.
			f, err = c.open(ctx, name, m, guardedReq(dirFH, base, perm))
		}
		if !retried && c.cache.retryStale(err, dirFH, nil) {
			retried = true // the cached directory is gone: walk again, once
			links--
			continue
		}
		if !errors.Is(err, ErrSymlink) {
			return f, err
		}
		if m.excl {
			return nil, ErrExist // O_CREATE|O_EXCL never follows a link
		}
		if links == maxSymlinks {
			return nil, errTooManyLinks
		}
		target, err = c.linkTarget(ctx, target)
		if err != nil {
			return nil, err
		}
	}
}

// guardedReq returns the OPEN that creates base in dirFH with GUARDED4: it
// fails with NFS4ERR_EXIST if base exists, and sets the mode at creation.
func guardedReq(dirFH []byte, base string, perm fs.FileMode) *openReq {
	q := &openReq{putFH: dirFH, args: openArgs{claim: claimNull, name: base, create: true}}
	q.args.createMode = createGuarded
	q.args.attrs = &sattr{mask: MaskOf(AttrMode), mode: unixMode(perm)}
	return q
}

// createReq returns the OPEN that creates base in the directory dirFH:
// EXCLUSIVE4_1 with verifier verf for O_EXCL, UNCHECKED4 otherwise.
func createReq(dirFH []byte, base string, m openMode, perm fs.FileMode, verf verifier) *openReq {
	q := &openReq{putFH: dirFH, args: openArgs{claim: claimNull, name: base, create: true}}
	mode := &sattr{mask: MaskOf(AttrMode), mode: unixMode(perm)}
	if m.excl {
		q.args.createMode = createExclusive41
		q.args.verf = verf
		// The mode is set by a SETATTR in the same COMPOUND rather than in
		// createattrs, which would need the file system's
		// suppattr_exclcreat first: one round trip fewer, and right on
		// every server. A replay sets the same mode again.
		q.setMode = mode
		return q
	}
	q.args.createMode = createUnchecked
	q.args.attrs = mode
	if m.trunc {
		// UNCHECKED4 applies a zero size to an existing file (RFC 8881
		// §18.16.3); open checks that it did.
		mode.mask.Set(AttrSize)
	}
	return q
}

// linkTarget returns the path the symbolic link name points to.
func (c *Client) linkTarget(ctx context.Context, name string) (string, error) {
	fh, _, err := c.lookup(ctx, name, false)
	if err != nil {
		return "", err
	}
	target, err := c.readlinkFH(ctx, fh)
	if err != nil {
		return "", err
	}
	if path.IsAbs(target) {
		return target, nil
	}
	return path.Join(path.Dir(path.Clean("/"+name)), target), nil
}

// newOpenOwner returns a fresh open owner of this client.
func (c *Client) newOpenOwner() []byte {
	suffix := ":" + strconv.FormatUint(openOwnerSeq.Add(1), 36)
	prefix := c.owner[:min(len(c.owner), opaqueLimit-len(suffix))]
	return append(append(make([]byte, 0, len(prefix)+len(suffix)), prefix...), suffix...)
}

// open sends q's OPEN for a File named name with mode m, then finishes
// what the OPEN could not do: truncating a file that O_TRUNC found
// non-empty, and returning a delegation granted despite WANT_NO_DELEG.
func (c *Client) open(ctx context.Context, name string, m openMode, q *openReq) (*File, error) {
	q.args.shareAccess = c.shareAccess(m.access)
	q.args.shareDeny = shareDenyNone
	q.args.owner = c.newOpenOwner()
	q.mask = c.mask(statMask)
	q.args.clientID = c.st.Load().clientID // ignored by NFSv4.1 servers: the session names it
	if c.v40 {
		q.oo = &owner40{dirFH: q.putFH, base: q.args.name}
	}
	g := c.cache.begin()
	epoch, err := c.callEpoch(ctx, q)
	if err == nil {
		err = c.confirmOpen(ctx, nil, q)
	}
	if err != nil {
		if q.opened && q.fh != nil {
			// OPEN succeeded but a later operation failed: give the state
			// back rather than hold it until the client ID ends.
			c.closeState(context.WithoutCancel(ctx), q.fh, q.oo, func() *stateID { return &q.res.stateID })
		}
		return nil, err
	}
	c.cache.putFH(q.fh, &q.attr, g)
	f := newFile(c, name, q.fh, false)
	f.io.oo = q.oo
	f.io.init(c, q.res.stateID, epoch, q.args.owner, m)
	f.io.size.init(&q.attr)
	if d := &q.res.deleg; d.typ == delegRead || d.typ == delegWrite {
		c.returnDelegation(ctx, nil, q.fh, &d.stateID)
	}
	if err := c.register(ctx, f, epoch); err != nil {
		c.unregister(f)
		return nil, err
	}
	if m.trunc && !(q.attr.Mask.Has(AttrSize) && q.attr.Size == 0) {
		if err := f.setSize(ctx, 0); err != nil {
			c.unregister(f)
			c.closeFile(context.WithoutCancel(ctx), f)
			return nil, err
		}
	}
	return f, nil
}

// returnDelegation gives back a delegation the server granted although we
// asked for none: without a callback channel we could not answer its
// recall. Failure is logged; the server revokes an unreturned delegation
// once the recall times out.
// It is sent on session s, or on the current one if s is nil.
func (c *Client) returnDelegation(ctx context.Context, s *sessState, fh []byte, sid *stateID) {
	err := c.callOn(ctx, s, funcRequest{
		b: func(cmp *compound) { cmp.putfh(fh); cmp.delegReturn(sid) },
		p: func(r *reply) error {
			if err := r.statusOnly(opPutFH); err != nil {
				return err
			}
			return r.statusOnly(opDelegReturn)
		},
	})
	if err != nil {
		c.log.Warn("nfs4: DELEGRETURN of an unwanted delegation failed", "err", err)
	}
}

// callOn runs req on session s, or with call (the current session, and
// recovery) if s is nil.
func (c *Client) callOn(ctx context.Context, s *sessState, req request) error {
	if s == nil {
		return c.call(ctx, req)
	}
	return c.callSession(ctx, s, req)
}

// closeFile sends CLOSE for f's current open state. A stateid the server
// no longer knows (it restarted, or the state expired) has nothing left to
// close.
func (c *Client) closeFile(ctx context.Context, f *File) error {
	err := c.closeState(ctx, f.fh, f.io.oo, func() *stateID { return &f.io.state.Load().sid })
	if stateRefused(err) {
		c.log.Info("nfs4: CLOSE of state the server no longer has", "file", f.name, "err", err)
		return nil
	}
	return err
}

// closeState sends CLOSE for the open state sid returns of the file fh,
// opened by the NFSv4.0 open owner oo (nil in 4.1). sid is called each
// time the request is encoded, so that a CLOSE sent again after a
// recovery carries the state the recovery installed.
func (c *Client) closeState(ctx context.Context, fh []byte, oo *owner40, sid func() *stateID) error {
	return c.call(ctx, &closeReq{fh: fh, sid: sid, oo: oo})
}

// openReq is the COMPOUND of an OPEN: PUTFH (the parent for CLAIM_NULL,
// the file for CLAIM_FH), OPEN, GETFH, an optional SETATTR of the mode
// after an exclusive create, and GETATTR. Its reply is cached by the
// server, so a re-sent OPEN returns the original result.
type openReq struct {
	putFH   []byte
	args    openArgs
	setMode *sattr
	mask    AttrMask
	oo      *owner40 // NFSv4.0: the open owner's sequence; nil in 4.1

	// Results, set by parse.
	opened bool // OPEN succeeded: res.stateID is open state
	res    openRes
	fh     []byte
	attr   Attr
}

func (q *openReq) build(c *compound) {
	c.putfh(q.putFH)
	c.open(&q.args)
	c.getfh()
	if q.setMode != nil {
		c.setattr(&anonStateID, q.setMode)
	}
	c.getattr(q.mask)
}

func (q *openReq) parse(r *reply) error {
	q.opened = false
	if err := r.statusOnly(opPutFH); err != nil {
		return err
	}
	if err := r.open(&q.res); err != nil {
		return err
	}
	q.opened = true
	fh, err := r.getfh()
	if err != nil {
		return err
	}
	q.fh = append(q.fh[:0], fh...)
	if q.setMode != nil {
		var set AttrMask
		if err := r.setattr(&set); err != nil {
			return err
		}
	}
	return r.getattr(&q.attr)
}

func (q *openReq) cacheThis() bool { return true }
