package nfs4

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The metadata cache: the file handles and attributes of looked-up paths,
// kept with the Linux NFS client's rules (fs/nfs/inode.c). What a caller
// may see of other clients' changes, and for how long, is in
// docs/consistency.md; the rules in brief:
//
//   - A node is one file, keyed by its file handle, holding the attributes
//     last fetched. They are used for their lifetime (the kernel's
//     attrtimeo): acregmin for a file and acdirmin for a directory at
//     first and whenever a fetch finds them changed; each fetch that finds
//     them unchanged after a full lifetime doubles it, up to acregmax or
//     acdirmax. So the lifetime grows with the time since the file last
//     changed, as the kernel's does.
//   - A name is a cleaned absolute path and the node it resolved to. It is
//     used for the lifetime its node had when it was looked up, and only
//     while the node's attributes are valid too; then it is looked up
//     again, from the longest valid cached directory above it. Failed
//     lookups are not cached: a file another client creates is seen at
//     once.
//   - Our own changes invalidate what they change (attributes of the file,
//     the parent directory, names removed or renamed and all below them).
//     A fetch that started before an invalidation is stored as already
//     expired (gen), so that a reply overtaken by a change cannot bring
//     old attributes back.
//   - A lost client ID (a restarted server, or another one at its
//     address) empties the cache: the files may have changed while we
//     could not see them.
//   - The names and the nodes are each bounded by Config.CacheEntries:
//     when full, expired entries and then arbitrary ones (Go's map order)
//     are dropped, an eighth at a time.
//
// It is safe for concurrent use; a hit takes a read lock and allocates
// nothing. A nil *attrCache (Config.NoAC) caches nothing: every method
// works on it.

// The defaults of the cache's Config fields: the Linux client's.
const (
	DefaultACRegMin     = 3 * time.Second
	DefaultACRegMax     = 60 * time.Second
	DefaultACDirMin     = 30 * time.Second
	DefaultACDirMax     = 60 * time.Second
	DefaultCacheEntries = 4096
)

// attrCache is a Client's metadata cache.
type attrCache struct {
	regMin, regMax, dirMin, dirMax time.Duration
	max                            int
	epoch                          time.Time // the times below are nanoseconds since it (monotonic)

	// gen counts invalidations. A fetch notes it before sending (begin),
	// and its result is valid only if no invalidation came in between.
	// nameGen counts those that changed what a name resolves to (drop,
	// forgetFH, clear): a fetch overtaken by a change of attributes alone
	// (a WRITE of ours, an entry made in a directory) still caches the
	// names it resolved, which dirFH uses.
	gen          atomic.Uint64
	nameGen      atomic.Uint64
	hits, misses atomic.Uint64
	stale        atomic.Uint64

	mu    sync.RWMutex
	names map[string]nameEntry
	nodes map[string]*cacheNode // by string(fh)
}

// nameEntry is a path and the node it resolved to.
type nameEntry struct {
	node    *cacheNode
	expires int64 // looked up again from then on
}

// cacheNode is one file. fh is immutable; the rest is guarded by
// attrCache.mu.
type cacheNode struct {
	fh      []byte
	attr    Attr
	valid   bool          // attr may be used until fetched+timeo
	fetched int64         // when attr was fetched
	timeo   time.Duration // the attributes' lifetime (the kernel's attrtimeo)
	stamp   int64         // when timeo was last set or confirmed (attrtimeo_timestamp)
	link    string        // a symlink's target, once read: a handle's target never changes
	hasLink bool
}

// newAttrCache returns the cache cfg (with defaults) asks for, nil for
// NoAC.
func newAttrCache(cfg Config) *attrCache {
	if cfg.NoAC {
		return nil
	}
	return &attrCache{
		regMin: cfg.ACRegMin, regMax: max(cfg.ACRegMin, cfg.ACRegMax),
		dirMin: cfg.ACDirMin, dirMax: max(cfg.ACDirMin, cfg.ACDirMax),
		max:   cfg.CacheEntries,
		epoch: time.Now(),
		names: make(map[string]nameEntry),
		nodes: make(map[string]*cacheNode),
	}
}

func (a *attrCache) now() int64 { return int64(time.Since(a.epoch)) }

// usable reports whether n's attributes may be used at now.
func (n *cacheNode) usable(now int64) bool {
	return n.valid && now < n.fetched+int64(n.timeo)
}

// get returns the handle and attributes cached for the cleaned path p.
// The handle is shared and must not be modified.
func (a *attrCache) get(p string) (fh []byte, attr Attr, ok bool) {
	if a == nil {
		return nil, Attr{}, false
	}
	now := a.now()
	a.mu.RLock()
	e, found := a.names[p]
	if found && now < e.expires && e.node.usable(now) {
		fh, attr, ok = e.node.fh, e.node.attr, true
	}
	a.mu.RUnlock()
	if ok {
		a.hits.Add(1)
	} // a miss is counted by the walk that follows it (walkCached)
	return fh, attr, ok
}

// dirFH returns the handle cached for the cleaned path p if it names a
// directory and the name has not expired, whether or not the directory's
// attributes are still valid: making or removing entries in a directory,
// which is what invalidates its attributes most often (our own Mkdir,
// Create, Remove), does not change its handle. The Linux client likewise
// keeps a directory's dentry while it refetches its inode's attributes.
// A handle the server calls stale is forgotten with its names (forgetFH).
func (a *attrCache) dirFH(p string) ([]byte, bool) {
	if a == nil {
		return nil, false
	}
	now := a.now()
	a.mu.RLock()
	e, found := a.names[p]
	ok := found && now < e.expires && e.node.attr.Type == TypeDirectory
	var fh []byte
	if ok {
		fh = e.node.fh
	}
	a.mu.RUnlock()
	if ok {
		a.hits.Add(1)
	}
	return fh, ok
}

// getFH returns the attributes cached for the file fh.
func (a *attrCache) getFH(fh []byte) (attr Attr, ok bool) {
	if a == nil {
		return Attr{}, false
	}
	now := a.now()
	a.mu.RLock()
	if n := a.nodes[string(fh)]; n != nil && n.usable(now) {
		attr, ok = n.attr, true
	}
	a.mu.RUnlock()
	if ok {
		a.hits.Add(1)
	} else {
		a.misses.Add(1)
	}
	return attr, ok
}

// dirPrefix returns the longest proper prefix of the path comps (full
// is joinPath(comps)) that is cached as a valid directory: how many
// components it has, and its handle. 0 and nil if none.
func (a *attrCache) dirPrefix(full string, comps []string) (int, []byte) {
	if a == nil || len(comps) < 2 {
		return 0, nil
	}
	now := a.now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	end := len(full)
	for i := len(comps) - 1; i >= 1; i-- {
		end -= len(comps[i]) + 1 // full[:end] is joinPath(comps[:i])
		e, ok := a.names[full[:end]]
		if ok && now < e.expires && e.node.usable(now) && e.node.attr.Type == TypeDirectory {
			return i, e.node.fh
		}
	}
	return 0, nil
}

// fetchGen is the cache's generations when a fetch was sent (begin).
type fetchGen struct{ attrs, names uint64 }

// begin returns the generations to give put or putFH for a fetch about to
// be sent.
func (a *attrCache) begin() fetchGen {
	if a == nil {
		return fetchGen{}
	}
	return fetchGen{attrs: a.gen.Load(), names: a.nameGen.Load()}
}

// put caches fh and attr, fetched by a request sent at generations g, as
// what the cleaned path p resolves to.
func (a *attrCache) put(p string, fh []byte, attr *Attr, g fetchGen) {
	if a == nil {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nodeLocked(fh, attr, g, now)
	if _, ok := a.names[p]; !ok && len(a.names) >= a.max {
		a.evictNamesLocked(now)
	}
	exp := now // a stale fetch: keep the name for its node's lifetime only
	if n.valid || g.names == a.nameGen.Load() {
		// Valid attributes; or attributes a change of ours overtook,
		// while no name changed: the name holds (for dirFH, which needs
		// no attributes) for the lifetime the node's attributes have.
		exp = now + int64(n.timeo)
	}
	a.names[p] = nameEntry{node: n, expires: exp}
}

// putFH caches attr, fetched at generations g, as the attributes of fh.
func (a *attrCache) putFH(fh []byte, attr *Attr, g fetchGen) {
	if a == nil {
		return
	}
	now := a.now()
	a.mu.Lock()
	a.nodeLocked(fh, attr, g, now)
	a.mu.Unlock()
}

// nodeLocked stores attr as fh's attributes, fetched at generation g, and
// returns fh's node. The lifetime follows the kernel's nfs_update_inode:
// changed attributes set it to the minimum; unchanged ones confirmed
// after a whole lifetime double it, up to the maximum.
func (a *attrCache) nodeLocked(fh []byte, attr *Attr, g fetchGen, now int64) *cacheNode {
	lo, hi := a.regMin, a.regMax
	if attr.Type == TypeDirectory {
		lo, hi = a.dirMin, a.dirMax
	}
	n := a.nodes[string(fh)]
	switch {
	case n == nil:
		if len(a.nodes) >= a.max {
			a.evictNodesLocked(now)
		}
		n = &cacheNode{fh: append([]byte(nil), fh...), timeo: lo, stamp: now}
		a.nodes[string(n.fh)] = n
	case n.fetched == 0 || attrChanged(&n.attr, attr):
		n.timeo, n.stamp = lo, now
	default:
		if now >= n.stamp+int64(n.timeo) {
			n.timeo *= 2
		}
		n.stamp = now
	}
	n.timeo = min(max(n.timeo, lo), hi)
	n.attr, n.fetched = *attr, now
	n.valid = g.attrs == a.gen.Load()
	return n
}

// attrChanged reports whether the file changed between the attributes
// old and cur: by the change attribute, or where a server lacks it, by
// the times and the size.
func attrChanged(old, cur *Attr) bool {
	if old.Mask.Has(AttrChange) && cur.Mask.Has(AttrChange) {
		return old.Change != cur.Change
	}
	return !old.ModTime.Equal(cur.ModTime) || !old.ChangeTime.Equal(cur.ChangeTime) || old.Size != cur.Size
}

// invalidateFH marks the attributes of fh out of date: we changed the
// file. Fetches under way when it is called are not cached as valid.
func (a *attrCache) invalidateFH(fh []byte) {
	if a == nil {
		return
	}
	a.gen.Add(1)
	a.mu.RLock()
	n := a.nodes[string(fh)]
	stale := n != nil && n.valid
	a.mu.RUnlock()
	if !stale {
		return
	}
	a.mu.Lock()
	n.valid = false
	a.mu.Unlock()
}

// drop forgets the cleaned path p and every path below it, and marks
// their nodes' attributes out of date: we removed or renamed p.
func (a *attrCache) drop(p string) {
	if a == nil {
		return
	}
	a.nameGen.Add(1)
	a.gen.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.names[p]
	if ok {
		e.node.valid = false
		delete(a.names, p)
		if e.node.attr.Type != TypeDirectory && e.node.fetched != 0 {
			return // nothing is cached below a file
		}
	}
	// A directory, or unknown: scan for the names below it.
	for k, e := range a.names {
		if len(k) > len(p) && k[:len(p)] == p && (p == "/" || k[len(p)] == '/') {
			e.node.valid = false
			delete(a.names, k)
		}
	}
}

// forgetFH drops fh's node and the names that resolve to it: the server
// says the handle is stale.
func (a *attrCache) forgetFH(fh []byte) {
	if a == nil || fh == nil {
		return
	}
	a.nameGen.Add(1)
	a.gen.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nodes[string(fh)]
	if n == nil {
		return
	}
	a.stale.Add(1)
	n.valid = false
	delete(a.nodes, string(fh))
	for k, e := range a.names {
		if e.node == n {
			delete(a.names, k)
		}
	}
}

// clear forgets everything: the server lost our client ID (it restarted,
// or another server answers at its address), and whatever changed while
// we could not see it must not be served from before.
func (a *attrCache) clear() {
	if a == nil {
		return
	}
	a.nameGen.Add(1)
	a.gen.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.nodes {
		n.valid = false // a name held by a lookup under way
	}
	clear(a.names)
	clear(a.nodes)
}

// link returns the target of the symlink fh, if cached.
func (a *attrCache) link(fh []byte) (string, bool) {
	if a == nil {
		return "", false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if n := a.nodes[string(fh)]; n != nil && n.hasLink {
		return n.link, true
	}
	return "", false
}

// setLink caches target as the target of the symlink fh, if fh is cached.
func (a *attrCache) setLink(fh []byte, target string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.nodes[string(fh)]; n != nil {
		n.link, n.hasLink = target, true
	}
}

// evictNamesLocked makes room among the names: expired ones go, then
// arbitrary ones, until an eighth of the bound is free.
func (a *attrCache) evictNamesLocked(now int64) {
	target := a.max - max(1, a.max/8)
	for k, e := range a.names {
		if now >= e.expires || !e.node.usable(now) {
			delete(a.names, k)
		}
	}
	for k := range a.names {
		if len(a.names) <= target {
			break
		}
		delete(a.names, k)
	}
}

// evictNodesLocked makes room among the nodes as evictNamesLocked does.
// An evicted node is marked invalid, so that the names still pointing to
// it are looked up again.
func (a *attrCache) evictNodesLocked(now int64) {
	target := a.max - max(1, a.max/8)
	for k, n := range a.nodes {
		if !n.usable(now) {
			n.valid = false
			delete(a.nodes, k)
		}
	}
	for k, n := range a.nodes {
		if len(a.nodes) <= target {
			break
		}
		n.valid = false
		delete(a.nodes, k)
	}
}

// CacheStats counts the metadata cache's use (Client.Stats).
type CacheStats struct {
	// Hits counts paths and files' attributes answered from the cache;
	// Misses, path walks sent to the server and File.Stats not answered.
	Hits, Misses uint64
	// Stale counts cached handles the server called stale, which were
	// forgotten and their paths walked again.
	Stale uint64
	// Names and Files are the paths and files cached now.
	Names, Files int
}

func (a *attrCache) stats() CacheStats {
	if a == nil {
		return CacheStats{}
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return CacheStats{Hits: a.hits.Load(), Misses: a.misses.Load(), Stale: a.stale.Load(),
		Names: len(a.names), Files: len(a.nodes)}
}

// staleHandle reports whether err says a file handle is no longer valid
// (NFS4ERR_STALE, NFS4ERR_FHEXPIRED): the file was removed, or the
// server forgot its handles.
func staleHandle(err error) bool {
	return errors.Is(err, ErrStale) || errors.Is(err, ErrFHExpired)
}

// retryStale reports whether an operation that failed with err, using
// the handles a and b (either may be nil) that may have come from the
// cache, should be tried once more: the server called a handle stale.
// It forgets both handles first, so that the retry walks the path again.
func (a *attrCache) retryStale(err error, fh1, fh2 []byte) bool {
	if a == nil || !staleHandle(err) {
		return false
	}
	a.forgetFH(fh1)
	a.forgetFH(fh2)
	return true
}
