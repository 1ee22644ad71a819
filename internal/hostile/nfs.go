package hostile

import (
	"fmt"
	"sort"
)

// The NFSv4.1 side (RFC 8881): enough of COMPOUND for a client to create a
// session, look up, GETATTR, OPEN, READ, READDIR and CLOSE in the server's
// small fixed tree, each operation written here from the RFC's XDR.

// Operation numbers (RFC 8881 §16.2.1).
const (
	OpClose           = 4
	OpGetattr         = 9
	OpGetFH           = 10
	OpLookup          = 15
	OpOpen            = 18
	OpPutFH           = 22
	OpPutRootFH       = 24
	OpRead            = 25
	OpReaddir         = 26
	OpBindConn        = 41
	OpExchangeID      = 42
	OpCreateSession   = 43
	OpDestroySession  = 44
	OpSecinfoNoName   = 52
	OpSequence        = 53
	OpDestroyClientID = 57
	OpReclaimComplete = 58
)

// Status values (RFC 8881 §15.1) the server sends on its own; a test may
// send any other through Faults.Status.
const (
	StatusOK                = 0
	StatusNoEnt             = 2
	StatusNotDir            = 20
	StatusIsDir             = 21
	StatusBadHandle         = 10001
	StatusNotSupp           = 10004
	StatusDelay             = 10008
	StatusBadSession        = 10052
	StatusConnNotBound      = 10055
	StatusRetryUncached     = 10068
	StatusOpNotInSession    = 10071
	statusResource          = 10018
	statusMinorVersMismatch = 10021
	statusNoFileHandle      = 10020
)

// Attribute numbers (RFC 8881 §5.8).
const (
	attrSupported  = 0
	attrType       = 1
	attrChange     = 3
	attrSize       = 4
	attrFSID       = 8
	attrLeaseTime  = 10
	attrRdattrErr  = 11
	attrFileID     = 20
	attrMaxRead    = 30
	attrMaxWrite   = 31
	attrMode       = 33
	attrNumLinks   = 35
	attrOwner      = 36
	attrGroup      = 37
	attrSpaceUsed  = 45
	attrTimeAccess = 47
	attrTimeMeta   = 52
	attrTimeModify = 53
)

// supported is every attribute the server encodes, in bit order.
var supported = []uint32{attrSupported, attrType, attrChange, attrSize, attrFSID, attrLeaseTime,
	attrRdattrErr, attrFileID, attrMaxRead, attrMaxWrite, attrMode, attrNumLinks, attrOwner,
	attrGroup, attrSpaceUsed, attrTimeAccess, attrTimeMeta, attrTimeModify}

const (
	typeReg = 1
	typeDir = 2

	maxOps     = 64
	ioMax      = 1 << 20 // maxread, maxwrite, and the largest READ answered
	fileName   = "file"
	dirName    = "dir"
	defaultLen = 4096
)

// object is a file or directory of the tree, keyed by its file handle.
type object struct {
	fh       string
	typ      uint32
	mode     uint32
	size     uint64
	fileid   uint64
	children map[string]string // name → file handle, for directories
}

// pattern returns the byte at offset off of the made-up file content.
func pattern(off uint64) byte { return byte(off*7 + off>>9) }

// buildTree makes the tree f describes, filling in f's defaults.
func buildTree(f *Faults) map[string]*object {
	if f.Data == nil {
		f.Data = make([]byte, defaultLen)
		for i := range f.Data {
			f.Data[i] = pattern(uint64(i))
		}
	}
	if f.Size == 0 {
		f.Size = uint64(len(f.Data))
	}
	if f.Entries == nil {
		f.Entries = []Entry{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	}
	root := &object{fh: "root", typ: typeDir, mode: 0o755, fileid: 1,
		children: map[string]string{fileName: fileName, dirName: dirName}}
	file := &object{fh: fileName, typ: typeReg, mode: 0o644, size: f.Size, fileid: 2}
	dir := &object{fh: dirName, typ: typeDir, mode: 0o755, fileid: 3, children: map[string]string{}}
	tree := map[string]*object{root.fh: root, file.fh: file, dir.fh: dir}
	for i, e := range f.Entries {
		o := entryObject(f, i)
		dir.children[e.Name] = o.fh
		tree[o.fh] = o
	}
	return tree
}

// entryObject returns the object of entry i of "dir"; entries past
// f.Entries (made up by ReaddirEndless) are empty regular files.
func entryObject(f *Faults, i int) *object {
	o := &object{fh: fmt.Sprintf("dir/%d", i), typ: typeReg, mode: 0o644, fileid: 100 + uint64(i)}
	if i < len(f.Entries) {
		e := f.Entries[i]
		if e.Mode != 0 {
			o.mode = e.Mode
		}
		if e.Dir {
			o.typ, o.children = typeDir, map[string]string{}
		}
	}
	return o
}

// entryName returns the name of entry i of "dir".
func entryName(f *Faults, i int) string {
	if i < len(f.Entries) {
		return f.Entries[i].Name
	}
	return fmt.Sprintf("made-up-%d", i)
}

// fattr appends a fattr4 of o with the attributes of want that the server
// supports.
func fattr(w *wbuf, o *object, want []uint32) {
	var bits []uint32
	var vals wbuf
	for _, a := range supported {
		if !has(want, a) {
			continue
		}
		bits = append(bits, a)
		switch a {
		case attrSupported:
			vals.bitmap(supported)
		case attrType:
			vals.u32(o.typ)
		case attrChange:
			vals.u64(1)
		case attrSize, attrSpaceUsed:
			vals.u64(o.size)
		case attrFSID:
			vals.u64(1)
			vals.u64(1)
		case attrLeaseTime:
			vals.u32(60)
		case attrRdattrErr:
			vals.u32(StatusOK)
		case attrFileID:
			vals.u64(o.fileid)
		case attrMaxRead, attrMaxWrite:
			vals.u64(ioMax)
		case attrMode:
			vals.u32(o.mode)
		case attrNumLinks:
			vals.u32(1)
		case attrOwner, attrGroup:
			vals.str("0")
		case attrTimeAccess, attrTimeMeta, attrTimeModify:
			vals.u64(1_700_000_000)
			vals.u32(0)
		}
	}
	w.bitmap(bits)
	w.opaque(vals.b)
}

// compound runs one COMPOUND4args and returns its COMPOUND4res. It
// reports false if the arguments cannot be decoded.
func (s *Server) compound(args []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := rbuf{b: args}
	tag := r.opaque(1024)
	minor := r.u32()
	n := r.u32()
	if r.err != nil || n > maxOps {
		return nil, false
	}
	var res wbuf
	status := uint32(StatusOK)
	count := 0
	if minor != 1 {
		status = statusMinorVersMismatch
	}
	c := cstate{s: s}
	for i := 0; i < int(n) && status == StatusOK; i++ {
		op := r.u32()
		s.ops[op]++
		var body wbuf
		st := c.op(op, &r, &body)
		if r.err != nil {
			return nil, false
		}
		if f := s.faults.Status[op]; f != 0 {
			st, body.b = f, nil
		}
		res.u32(op)
		res.u32(st)
		if st == StatusOK {
			res.b = append(res.b, body.b...)
		}
		status = st
		count++
	}
	var w wbuf
	w.u32(status)
	w.opaque(tag)
	w.u32(uint32(count))
	w.b = append(w.b, res.b...)
	return w.b, true
}

// cstate is one COMPOUND's current file handle. s.mu is held.
type cstate struct {
	s  *Server
	fh string
}

func (c *cstate) cur() *object { return c.s.tree[c.fh] }

// op decodes the arguments of op from r, runs it, appends its result
// body (what follows the status) to w and returns its status.
func (c *cstate) op(op uint32, r *rbuf, w *wbuf) uint32 {
	s := c.s
	switch op {
	case OpSequence:
		sid := r.fixed(16)
		seq, slot := r.u32(), r.u32()
		r.u32() // highest slot
		r.u32() // cachethis
		w.fixed(sid)
		w.u32(seq)
		w.u32(slot)
		w.u32(15) // highest slot the server accepts
		w.u32(15) // target
		w.u32(0)  // status flags
	case OpExchangeID:
		r.fixed(8)
		r.opaque(1024)
		r.u32() // flags
		if how := r.u32(); how != 0 {
			return StatusNotSupp
		}
		if r.u32() > 0 { // client_impl_id
			r.opaque(1024)
			r.opaque(1024)
			r.u64()
			r.u32()
		}
		s.clients++
		w.u64(0x686f7374696c6500 + s.clients)
		w.u32(1)          // sequence id
		w.u32(0x00010000) // EXCHGID4_FLAG_USE_NON_PNFS
		w.u32(0)          // SP4_NONE
		w.u64(0)          // server_owner4
		w.str("hostile")
		w.str("hostile") // server scope
		w.u32(0)         // no implementation id
	case OpCreateSession:
		r.u64()
		seq := r.u32()
		r.u32()
		fore := channelAttrs(r)
		back := channelAttrs(r)
		r.u32() // callback program
		for range min(r.u32(), 16) {
			switch r.u32() {
			case 1: // AUTH_SYS
				r.u32()
				r.opaque(255)
				r.u32()
				r.u32()
				for range min(r.u32(), 16) {
					r.u32()
				}
			case 6: // RPCSEC_GSS
				r.u32()
				r.opaque(1024)
				r.opaque(1024)
			}
		}
		w.fixed([]byte("hostile-session!"))
		w.u32(seq)
		w.u32(0)
		fore[5] = min(fore[5], 16) // slots
		for _, a := range [][6]uint32{fore, back} {
			for _, v := range a {
				w.u32(v)
			}
			w.u32(0) // no RDMA
		}
	case OpDestroySession:
		r.fixed(16)
	case OpDestroyClientID:
		r.u64()
	case OpReclaimComplete:
		r.u32()
	case OpBindConn:
		sid := r.fixed(16)
		r.u32()
		r.u32()
		w.fixed(sid)
		w.u32(1) // CDFS4_FORE
		w.u32(0)
	case OpPutRootFH:
		c.fh = "root"
	case OpPutFH:
		fh := string(r.opaque(128))
		if s.tree[fh] == nil {
			return StatusBadHandle
		}
		c.fh = fh
	case OpGetFH:
		if c.cur() == nil {
			return statusNoFileHandle
		}
		w.str(c.fh)
	case OpLookup:
		name := r.opaque(1024)
		o := c.cur()
		switch {
		case o == nil:
			return statusNoFileHandle
		case o.typ != typeDir:
			return StatusNotDir
		case o.children[string(name)] == "":
			return StatusNoEnt
		}
		c.fh = o.children[string(name)]
	case OpGetattr:
		want := r.bitmap()
		o := c.cur()
		if o == nil {
			return statusNoFileHandle
		}
		fattr(w, o, want)
	case OpSecinfoNoName:
		r.u32()
		w.u32(1)
		w.u32(1) // AUTH_SYS
	case OpOpen:
		return c.open(r, w)
	case OpRead:
		r.fixed(16)
		off, count := r.u64(), r.u32()
		o := c.cur()
		switch {
		case o == nil:
			return statusNoFileHandle
		case o.typ != typeReg:
			return StatusIsDir
		}
		count = min(count, ioMax)
		if s.faults.ReadNoEOF {
			data := make([]byte, count)
			for i := range data {
				data[i] = pattern(off + uint64(i))
			}
			w.boolean(false)
			w.opaque(data)
			break
		}
		var data []byte
		if o.fh == fileName && off < uint64(len(s.faults.Data)) {
			data = s.faults.Data[off:min(uint64(len(s.faults.Data)), off+uint64(count))]
		}
		w.boolean(o.fh != fileName || off+uint64(len(data)) >= uint64(len(s.faults.Data)))
		w.opaque(data)
	case OpReaddir:
		return c.readdir(r, w)
	case OpClose:
		r.u32()
		r.fixed(16)
		w.u32(0)
		w.fixed(make([]byte, 12))
	default:
		return StatusNotSupp
	}
	return StatusOK
}

// channelAttrs reads a channel_attrs4: six counts, then an RDMA array of
// at most one.
func channelAttrs(r *rbuf) [6]uint32 {
	var a [6]uint32
	for i := range a {
		a[i] = r.u32()
	}
	a[0] = 0 // no header padding
	if r.u32() > 0 {
		r.u32()
	}
	return a
}

// open runs OPEN: by file handle (CLAIM_FH) or by name in the current
// directory (CLAIM_NULL), without creating.
func (c *cstate) open(r *rbuf, w *wbuf) uint32 {
	r.u32() // seqid
	r.u32() // share access
	r.u32() // share deny
	r.u64() // client ID
	r.opaque(1024)
	create := r.u32() == 1
	if create {
		switch r.u32() {
		case 0, 1: // UNCHECKED4, GUARDED4
			r.bitmap()
			r.opaque(64 << 10)
		case 2: // EXCLUSIVE4
			r.fixed(8)
		case 3: // EXCLUSIVE4_1
			r.fixed(8)
			r.bitmap()
			r.opaque(64 << 10)
		}
	}
	var name string
	claim := r.u32()
	switch claim {
	case 0, 3: // CLAIM_NULL, CLAIM_DELEGATE_PREV
		name = string(r.opaque(1024))
	case 1: // CLAIM_PREVIOUS
		r.u32()
	case 2: // CLAIM_DELEGATE_CUR
		r.fixed(16)
		name = string(r.opaque(1024))
	case 5: // CLAIM_DELEG_CUR_FH
		r.fixed(16)
	}
	if r.err != nil {
		return StatusOK
	}
	o := c.cur()
	if o == nil {
		return statusNoFileHandle
	}
	if create || (claim != 0 && claim != 4) {
		return StatusNotSupp
	}
	if claim == 0 {
		if o.typ != typeDir {
			return StatusNotDir
		}
		fh := o.children[name]
		if fh == "" {
			return StatusNoEnt
		}
		c.fh, o = fh, c.s.tree[fh]
	}
	if o.typ == typeDir {
		return StatusIsDir
	}
	c.s.opens++
	w.u32(1) // stateid seqid
	w.fixed(fmt.Appendf(nil, "open%08d", c.s.opens))
	w.boolean(true) // change_info4
	w.u64(1)
	w.u64(1)
	w.u32(4) // OPEN4_RESULT_LOCKTYPE_POSIX
	w.u32(0) // no attributes set
	w.u32(0) // OPEN_DELEGATE_NONE
	return StatusOK
}

// readdir runs READDIR, misbehaving as Faults.Readdir says.
func (c *cstate) readdir(r *rbuf, w *wbuf) uint32 {
	cookie := r.u64()
	r.fixed(8)
	r.u32()
	r.u32()
	want := r.bitmap()
	o := c.cur()
	switch {
	case o == nil:
		return statusNoFileHandle
	case o.typ != typeDir:
		return StatusNotDir
	}
	f := &c.s.faults
	w.fixed([]byte("hostile!"))
	if o.fh != dirName {
		// Other directories list what they hold, in one page.
		names := make([]string, 0, len(o.children))
		for n := range o.children {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if cookie > 2 && uint64(i)+3 <= cookie {
				continue
			}
			w.boolean(true)
			w.u64(uint64(i) + 3)
			w.str(n)
			fattr(w, c.s.tree[o.children[n]], want)
		}
		w.boolean(false)
		w.boolean(true)
		return StatusOK
	}
	total := len(f.Entries)
	per := f.PerPage
	if per <= 0 {
		per = max(total, 1)
	}
	// Entry i has cookie i+3; a cookie names the entry last read.
	start := 0
	if cookie > 2 {
		start = int(min(cookie-2, 1<<40))
	}
	endless := f.Readdir != ReaddirNormal
	switch f.Readdir {
	case ReaddirStuck:
		start = 0
	case ReaddirCycle:
		start %= 2 * per
	}
	end := start + per
	if !endless {
		end = min(end, total)
	}
	for i := start; i < end; i++ {
		w.boolean(true)
		w.u64(uint64(i) + 3)
		w.str(entryName(f, i))
		fattr(w, entryObject(f, i), want)
	}
	w.boolean(false)
	w.boolean(!endless && end >= total)
	return StatusOK
}
