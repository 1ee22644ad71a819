package nfs4

import (
	"context"
	"sync"
)

// Waiting that gives up when a context ends: a File's calls wait for one
// another (Read and Write for the offset, Close for the calls under way,
// Sync for a commit in progress), and a caller whose context ends must not
// stay stuck behind a call that may block until the server answers.

// ctxMutex is a mutex whose lock gives up when a context ends. Its zero
// value is unlocked. It must not be copied after first use.
type ctxMutex struct {
	once sync.Once
	ch   chan struct{} // holds a token while locked
}

// lock locks m, or returns ctx's error if ctx ends first. An unlocked m is
// locked even if ctx has ended.
func (m *ctxMutex) lock(ctx context.Context) error {
	m.once.Do(func() { m.ch = make(chan struct{}, 1) })
	select {
	case m.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlock unlocks m, which must be locked.
func (m *ctxMutex) unlock() { <-m.ch }

// opGroup counts operations under way, as a sync.WaitGroup does, with a
// wait that gives up when a context ends. Its zero value counts none.
type opGroup struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil until someone waits
}

func (g *opGroup) add() {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
}

func (g *opGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// wait returns once no operation is under way, or ctx's error if ctx ends
// first.
func (g *opGroup) wait(ctx context.Context) error {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ctxRWMutex is a reader/writer mutex whose locks give up when a context
// ends. As with sync.RWMutex, a writer waiting for the readers to leave
// keeps new readers out. Its zero value is unlocked. It must not be copied
// after first use.
type ctxRWMutex struct {
	w ctxMutex // held by the writer, from before it waits for readers

	mu      sync.Mutex
	readers int
	writing bool          // the writer holds the lock or waits for readers
	changed chan struct{} // closed when readers or writing change; nil until someone waits
}

// rlock locks m for reading, or returns ctx's error if ctx ends first.
func (m *ctxRWMutex) rlock(ctx context.Context) error {
	m.mu.Lock()
	for m.writing {
		ch := m.waitLocked()
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
	m.readers++
	m.mu.Unlock()
	return nil
}

// runlock undoes one rlock.
func (m *ctxRWMutex) runlock() {
	m.mu.Lock()
	m.readers--
	if m.readers == 0 {
		m.signalLocked()
	}
	m.mu.Unlock()
}

// lock locks m for writing, or returns ctx's error if ctx ends first.
func (m *ctxRWMutex) lock(ctx context.Context) error {
	if err := m.w.lock(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.writing = true
	for m.readers > 0 {
		ch := m.waitLocked()
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			m.unlock()
			return ctx.Err()
		}
		m.mu.Lock()
	}
	m.mu.Unlock()
	return nil
}

// unlock undoes lock.
func (m *ctxRWMutex) unlock() {
	m.mu.Lock()
	m.writing = false
	m.signalLocked()
	m.mu.Unlock()
	m.w.unlock()
}

// waitLocked returns a channel closed at m's next change.
func (m *ctxRWMutex) waitLocked() chan struct{} {
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

// signalLocked wakes whoever waits for a change.
func (m *ctxRWMutex) signalLocked() {
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}
