package nfs4

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

// sizeBound is how far into a file READ data is known to lie within the
// file, the rule File.Read documents: the size at open, raised each time a
// GETATTR shows the file has grown. Reading within it costs one atomic
// load.
type sizeBound struct {
	limit atomic.Uint64 // data below it is within the file
	mu    sync.Mutex    // serializes the GETATTRs of check
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
	b.mu.Lock()
	defer b.mu.Unlock()
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
