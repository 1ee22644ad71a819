package rpc

import (
	"context"
	"errors"
	"sync/atomic"
)

// The connections of a Client: one lane per Transport, each with at most
// one connection at a time. A lane's connector goroutine takes a new
// connection from its transport, starts its reader and path watch, binds it
// (Config.Bind), and marks it ready; calls pick among the ready ones the
// connection with the fewest calls in flight.

// lane is one Transport of a Client and its current connection.
type lane struct {
	t          Transport
	cur        atomic.Pointer[conn]  // the newest connection; nil before the first
	connecting atomic.Bool           // a connector runs for this lane
	err        atomic.Pointer[error] // the transport's final error, once it gave up
}

// AddTransport adds t to the Client's transports; its connection is made
// at the next call. The Client owns t from now on and closes it on Close
// (at once, with ErrClosed, if the Client is closed already).
func (c *Client) AddTransport(t Transport) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		t.Close()
		return ErrClosed
	}
	old := *c.lanes.Load()
	lanes := append(old[:len(old):len(old)], &lane{t: t})
	c.lanes.Store(&lanes)
	return nil
}

// errConnLost is the error of a call pinned to a connection (Config.Bind's)
// that died before its reply came.
var errConnLost = errors.New("rpc: connection lost before its reply")

// pick returns the ready connection with the fewest calls in flight (pin
// alone, if set), starting a connector for every lane without a live
// connection. When none is ready it returns a channel that is closed when
// that may have changed; an error when every lane has given up for good.
//
// With every connection ready it takes two atomic loads per lane and does
// not allocate.
func (c *Client) pick(pin *conn) (*conn, <-chan struct{}, error) {
	if pin != nil {
		if pin.isDead() {
			return nil, nil, errConnLost
		}
		return pin, nil, nil
	}
	if cn := c.best(); cn != nil {
		return cn, nil, nil
	}
	// The wake channel is taken before the second look, so that a
	// connection made ready in between closes the channel this call waits on.
	wake := *c.wake.Load()
	if cn := c.best(); cn != nil {
		return cn, nil, nil
	}
	var err error
	failed := 0
	lanes := *c.lanes.Load()
	for _, l := range lanes {
		if e := l.err.Load(); e != nil {
			failed++
			err = *e
		}
	}
	if failed == len(lanes) {
		return nil, nil, err
	}
	return nil, wake, nil
}

// A dialReporter is a Transport that tells why it has not connected
// (xprt.Transport does).
type dialReporter interface {
	LastDialError() error
}

// NotConnectedError is the error of a call whose context ended before any
// connection could carry it: the context's error, and why the transports
// had not connected (their latest failed attempt). errors.Is matches both
// the context's error and the dial's.
type NotConnectedError struct {
	Ctx  error // context.Canceled or context.DeadlineExceeded
	Dial error // the latest failed connection attempt
}

func (e *NotConnectedError) Error() string {
	return e.Ctx.Error() + " before a connection was made; last attempt: " + e.Dial.Error()
}

// Unwrap returns both errors, for errors.Is and errors.As.
func (e *NotConnectedError) Unwrap() []error { return []error{e.Ctx, e.Dial} }

// notConnected returns ctxErr, the error of a call that was never sent,
// with the latest dial failure of the Client's transports if one reports
// any.
func (c *Client) notConnected(ctxErr error) error {
	for _, l := range *c.lanes.Load() {
		if r, ok := l.t.(dialReporter); ok {
			if err := r.LastDialError(); err != nil {
				return &NotConnectedError{Ctx: ctxErr, Dial: err}
			}
		}
	}
	return ctxErr
}

// best returns the ready connection with the fewest calls in flight, or
// nil, and starts the connector of each lane without a live connection.
func (c *Client) best() *conn {
	var best *conn
	var least int32
	for _, l := range *c.lanes.Load() {
		cn := l.cur.Load()
		if cn == nil || cn.isDead() {
			if l.err.Load() == nil && !l.connecting.Load() {
				c.connect(l)
			}
			continue
		}
		if !cn.ready.Load() {
			continue
		}
		if n := cn.inflight.Load(); best == nil || n < least {
			best, least = cn, n
		}
	}
	return best
}

// wakeAll closes the wake channel, waking every call that waits for a
// connection, and puts a new one in its place.
func (c *Client) wakeAll() {
	next := make(chan struct{})
	old := c.wake.Swap(&next)
	close(*old)
}

// connect starts l's connector unless one runs or the Client is closed.
func (c *Client) connect(l *lane) {
	if !l.connecting.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		l.connecting.Store(false)
		return
	}
	c.readers.Add(1)
	c.mu.Unlock()
	go c.connector(l)
}

// connector is a lane's goroutine from the moment it lacks a connection
// until it has a ready one, its transport gives up, or the Client closes.
func (c *Client) connector(l *lane) {
	defer c.readers.Done()
	defer func() {
		l.connecting.Store(false)
		c.wakeAll()
	}()
	for {
		nc, gen, changed, err := l.t.Conn()
		if err != nil {
			l.err.Store(&err)
			return
		}
		if nc == nil {
			select {
			case <-changed:
				continue
			case <-c.done:
				return
			}
		}
		cn := &conn{nc: nc, gen: gen, lane: l, dead: make(chan struct{}),
			bulk: make(chan struct{}, 1), wmu: make(chan struct{}, 1)}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		l.cur.Store(cn)
		c.readers.Add(1)
		go c.read(cn)
		c.mu.Unlock()
		if w, ok := nc.(pathWatcher); ok {
			w.Watch(func() bool { return cn.inflight.Load() > 0 }, func() error { return c.probe(cn) })
		}
		if c.bind != nil {
			if err := c.bindConn(cn); err != nil {
				if c.ctx.Err() != nil {
					return
				}
				c.log.Warn("rpc: connection not bound; redialing", "gen", gen, "err", err)
				c.broken(cn, err)
				continue
			}
		}
		cn.ready.Store(true)
		return
	}
}

// bindConn runs Config.Bind for cn, bounded by the major timeout and by
// Close.
func (c *Client) bindConn(cn *conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.major)
	defer cancel()
	return c.bind(ctx, cn.nc.RemoteAddr(), func(ctx context.Context, proc uint32, args Marshaler, res Unmarshaler) error {
		return c.callOn(ctx, cn, proc, args, res)
	})
}

// callOn is Call on cn alone.
func (c *Client) callOn(ctx context.Context, cn *conn, proc uint32, args Marshaler, res Unmarshaler) error {
	return c.do(ctx, cn, proc, args, res)
}
