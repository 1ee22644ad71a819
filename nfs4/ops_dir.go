package nfs4

import (
	"errors"
	"fmt"
)

// Directory operations: CREATE, REMOVE, RENAME, LINK, READLINK, READDIR
// (RFC 8881 §18.4, §18.9, §18.23–18.26).

// createArgs are the arguments of CREATE, which makes every type of object
// but regular files (those are made by OPEN).
type createArgs struct {
	typ      FileType // TypeDirectory, TypeSymlink, TypeBlock, TypeChar, TypeSocket or TypeFIFO
	name     string
	linkData string // TypeSymlink: the target, 1 to 4096 bytes
	dev      Device // TypeBlock, TypeChar
	attrs    *sattr // initial attributes; nil for none
}

// create adds CREATE.
func (c *compound) create(a *createArgs) {
	switch a.typ {
	case TypeSymlink:
		if len(a.linkData) == 0 || len(a.linkData) > maxLinkLen {
			c.fail(fmt.Errorf("nfs4: symlink target of %d bytes; want 1 to %d", len(a.linkData), maxLinkLen))
			return
		}
	case TypeDirectory, TypeBlock, TypeChar, TypeSocket, TypeFIFO:
	default:
		c.fail(fmt.Errorf("nfs4: CREATE cannot make %v", a.typ))
		return
	}
	if !c.checkNames(a.name) || !c.checkSattr(a.attrs) || !c.op(opCreate) {
		return
	}
	e := c.e
	e.Uint32(uint32(a.typ))
	switch a.typ {
	case TypeSymlink:
		e.String(a.linkData)
	case TypeBlock, TypeChar:
		e.Uint32(a.dev.Major)
		e.Uint32(a.dev.Minor)
	}
	e.String(a.name)
	encodeFattr(e, a.attrs)
}

// createRes is a CREATE4resok.
type createRes struct {
	cinfo   changeInfo // of the parent directory
	attrset AttrMask   // the initial attributes the server set
}

// create reads a CREATE result into res.
func (r *reply) create(res *createRes) error {
	if err := r.head(opCreate); err != nil {
		return err
	}
	decodeChangeInfo(&r.d, &res.cinfo)
	var extra bool
	res.attrset, extra = decodeBitmap(&r.d)
	if extra {
		r.d.SetErr(errors.New("nfs4: CREATE set attributes numbered 96 or above"))
	}
	return r.done(opCreate, OK)
}

// remove adds REMOVE of name from the current directory.
func (c *compound) remove(name string) {
	if c.checkNames(name) && c.op(opRemove) {
		c.e.String(name)
	}
}

// remove reads a REMOVE result: the directory's change info.
func (r *reply) remove(cinfo *changeInfo) error {
	if err := r.head(opRemove); err != nil {
		return err
	}
	decodeChangeInfo(&r.d, cinfo)
	return r.done(opRemove, OK)
}

// rename adds RENAME of oldName in the saved directory to newName in the
// current one.
func (c *compound) rename(oldName, newName string) {
	if c.checkNames(oldName, newName) && c.op(opRename) {
		c.e.String(oldName)
		c.e.String(newName)
	}
}

// rename reads a RENAME result: the source and target directories' change
// info.
func (r *reply) rename(source, target *changeInfo) error {
	if err := r.head(opRename); err != nil {
		return err
	}
	decodeChangeInfo(&r.d, source)
	decodeChangeInfo(&r.d, target)
	return r.done(opRename, OK)
}

// link adds LINK, making newName in the current directory a hard link to
// the saved file handle.
func (c *compound) link(newName string) {
	if c.checkNames(newName) && c.op(opLink) {
		c.e.String(newName)
	}
}

// link reads a LINK result: the directory's change info.
func (r *reply) link(cinfo *changeInfo) error {
	if err := r.head(opLink); err != nil {
		return err
	}
	decodeChangeInfo(&r.d, cinfo)
	return r.done(opLink, OK)
}

// readlink adds READLINK.
func (c *compound) readlink() { c.op(opReadlink) }

// readlink reads a READLINK result: the link's target, at most 4096 bytes,
// aliasing the reply.
func (r *reply) readlink() ([]byte, error) {
	if err := r.head(opReadlink); err != nil {
		return nil, err
	}
	target := r.d.Opaque(maxLinkLen)
	if err := r.done(opReadlink, OK); err != nil {
		return nil, err
	}
	return target, nil
}

// readdir adds READDIR from cookie (0 for the start) with the verifier of
// the previous reply (zero for the start). dircount bounds the bytes of
// names and cookies, maxcount the whole result; m is the attributes wanted
// for each entry.
func (c *compound) readdir(cookie uint64, verf *verifier, dircount, maxcount uint32, m AttrMask) {
	if c.op(opReaddir) {
		c.e.Uint64(cookie)
		c.e.FixedOpaque(verf[:])
		c.e.Uint32(dircount)
		c.e.Uint32(maxcount)
		encodeBitmap(c.e, m)
	}
}

// maxReplyNameLen bounds a name in a READDIR entry. It is looser than the
// 255 bytes we send so that one long name does not hide a whole directory.
const maxReplyNameLen = opaqueLimit

// maxDirEntries bounds the entries of one READDIR reply. The reply's size
// bounds them already (an entry takes at least 24 bytes); this is a second
// fence for the loop.
const maxDirEntries = 1 << 20

// dirEntry is one READDIR entry as the decoder hands it to its callback.
// name aliases the reply; attr is reused for every entry.
type dirEntry struct {
	cookie uint64
	name   []byte
	attr   Attr
}

// readdirRes is the result of READDIR besides the entries.
type readdirRes struct {
	cookieVerf verifier // send with the next READDIR
	eof        bool     // no entries follow the last one
	entries    int      // entries decoded
	ent        dirEntry // scratch handed to the callback
}

var (
	errEmptyName   = errors.New("nfs4: READDIR entry with an empty name")
	errTooManyEnts = errors.New("nfs4: too many READDIR entries")
)

// readdir reads a READDIR result, calling fn for each entry in order. fn
// must not keep the entry or its name past its return. If fn returns an
// error, decoding stops and readdir returns it; the reply cannot be walked
// further. No memory is allocated per entry beyond the owner strings of
// its attributes.
func (r *reply) readdir(res *readdirRes, fn func(*dirEntry) error) error {
	if err := r.head(opReaddir); err != nil {
		return err
	}
	d := &r.d
	copy(res.cookieVerf[:], d.FixedOpaque(verifierSize))
	res.entries, res.eof = 0, false
	for d.Err() == nil && d.Bool() {
		if res.entries == maxDirEntries {
			d.SetErr(errTooManyEnts)
			break
		}
		ent := &res.ent
		ent.cookie = d.Uint64()
		ent.name = d.Opaque(maxReplyNameLen)
		if d.Err() == nil && len(ent.name) == 0 {
			d.SetErr(errEmptyName)
		}
		decodeFattr(d, &ent.attr)
		if d.Err() != nil {
			break
		}
		res.entries++
		if err := fn(ent); err != nil {
			return r.setErr(err)
		}
	}
	res.eof = d.Bool()
	return r.done(opReaddir, OK)
}
