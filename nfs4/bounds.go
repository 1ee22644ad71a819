package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"unsafe"
)

// Bounds on what a server's replies can make the client read or hold: a
// file whose READs never report the end, a directory whose listing never
// ends. Sizes and counts from the wire are checked where they are
// decoded; these are the bounds that span many replies.

// ErrDataPastSize reports a READ that returned data past the file's size,
// as the server reported it in a GETATTR sent after that READ: a server
// whose READs never reach the end of the file, or a file truncated while
// it was read. File.Read explains the rule.
var ErrDataPastSize = errors.New("nfs4: server sent data past the end of the file")

// ErrListingTooLarge reports a directory listing that would hold more than
// Config.MaxListing bytes in memory: a directory too large for the bound,
// or a server whose READDIR never reaches the end.
var ErrListingTooLarge = errors.New("nfs4: directory listing exceeds Config.MaxListing")

// ErrCookieLoop reports a READDIR entry whose cookie is one the listing
// already went on from: the server's listing goes round in a circle, or
// does not advance.
var ErrCookieLoop = errors.New("nfs4: READDIR cookie repeats: the listing does not advance")

// sizeBound is how far into a file READ data is known to lie within the
// file, the rule File.Read documents: the size at open, raised each time a
// GETATTR shows the file has grown. Reading within it costs one atomic
// load.
type sizeBound struct {
	limit atomic.Uint64 // data below it is within the file
	mu    ctxMutex      // serializes the GETATTRs of check
}

// init sets the bound to the size in attr, from OPEN's GETATTR; without a
// size the first READ that returns data checks it.
func (b *sizeBound) init(attr *Attr) {
	if attr.Mask.Has(AttrSize) {
		b.limit.Store(attr.Size)
	}
}

// check reports whether data of a READ at off that ended at end lies
// within f's size, asking the server for the size when end passes the
// bound.
func (b *sizeBound) check(ctx context.Context, f *File, off, end uint64) error {
	if end <= b.limit.Load() {
		return nil
	}
	if err := b.mu.lock(ctx); err != nil {
		return err
	}
	defer b.mu.unlock()
	if end <= b.limit.Load() {
		return nil // another READ's GETATTR raised it
	}
	size, err := f.size(ctx)
	if err != nil {
		return err
	}
	if uint64(size) > b.limit.Load() {
		b.limit.Store(uint64(size))
	}
	if end > uint64(size) {
		return fmt.Errorf("%w: READ at offset %d returned data up to %d; the file's size is %d", ErrDataPastSize, off, end, size)
	}
	return nil
}

// cookieSeen reports whether a READDIR entry's cookie is one the listing
// at cur already went on from. Cookies are opaque to the client (RFC 8881
// §18.23): servers may make them from hashes, with no order, so a cookie
// smaller than the last one is allowed; but one the listing went on from
// before means that going on would ask for pages already read, for ever.
func (cur *dirCursor) cookieSeen(cookie uint64) bool {
	_, ok := cur.seen[cookie]
	return ok
}

// advance moves cur on to cookie, remembering it.
func (cur *dirCursor) advance(cookie uint64) {
	if cur.seen == nil {
		cur.seen = make(map[uint64]struct{})
	}
	cur.seen[cookie] = struct{}{}
	cur.cookie = cookie
}

// entryOverhead is the memory an fs.DirEntry of a listing takes besides
// its strings: the entry and the interface value that holds it.
const entryOverhead = int(unsafe.Sizeof(dirEntryInfo{}) + unsafe.Sizeof(fs.DirEntry(nil)))

// listingBytes returns the memory ents take, as Config.MaxListing counts
// it: each entry's strings (name, owner, group) and entryOverhead.
func listingBytes(ents []fs.DirEntry) int {
	n := 0
	for _, e := range ents {
		n += entryOverhead + len(e.Name())
		if d, ok := e.(*dirEntryInfo); ok {
			n += len(d.attr.Owner) + len(d.attr.OwnerGroup)
		}
	}
	return n
}

// listingBudget counts the bytes a listing holds against
// Config.MaxListing.
type listingBudget struct {
	used, max int
}

// add counts ents and reports ErrListingTooLarge once the total passes
// the bound.
func (b *listingBudget) add(ents []fs.DirEntry) error {
	b.used += listingBytes(ents)
	if b.used > b.max {
		return fmt.Errorf("%w (%d bytes)", ErrListingTooLarge, b.max)
	}
	return nil
}
