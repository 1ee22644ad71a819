package rpctest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// bufSize is the size of a connection's read buffer, and of the responder's
// write buffer.
const bufSize = 64 << 10

// Conn is the server's end of one accepted connection. It is safe for
// concurrent use: its writes are serialized, and each reply goes out in one
// Write, so replies from different goroutines never interleave on the wire.
type Conn struct {
	srv        *Server
	nc         *net.TCPConn
	index      int           // accept order on srv, from 0
	remotePort int           // the client's local port
	done       chan struct{} // closed when the reader goroutine has finished

	// closing is set by Close and Abort; the reader then discards
	// whatever still arrives instead of dispatching it.
	closing atomic.Bool

	wmu sync.Mutex // serializes writes; guards msg and out
	msg []byte     // reply message being built, reused
	out []byte     // msg with record markers, reused
}

// Index returns the connection's 0-based position in the server's accept
// order.
func (c *Conn) Index() int { return c.index }

// RemotePort returns the client's local port on this connection.
func (c *Conn) RemotePort() int { return c.remotePort }

// String identifies the connection in test logs.
func (c *Conn) String() string {
	return "rpctest conn " + strconv.Itoa(c.index) + " from port " + strconv.Itoa(c.remotePort)
}

// Done returns a channel that is closed once the server is finished with the
// connection: the client closed or reset it, a protocol error or Abort ended
// it, or the server was closed. After Close it is closed when the client
// closes its end too.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Reply sends a MSG_ACCEPTED reply with accept_stat SUCCESS and an AUTH_NONE
// verifier, followed by results exactly as given (they are not padded). The
// reply carries call's XID; it is written on c, which need not be the
// connection the call arrived on.
func (c *Conn) Reply(call *Call, results []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.msg = appendAccepted(c.msg[:0], call.XID, Success, 0, 0, results)
	return c.writeMsgLocked(call.XID)
}

// ReplyAccept sends a MSG_ACCEPTED reply with the given accept_stat (such as
// ProgUnavail or GarbageArgs) and an AUTH_NONE verifier. low and high, the
// supported version range, are sent only if stat is ProgMismatch. Nothing
// follows the status.
func (c *Conn) ReplyAccept(call *Call, stat, low, high uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.msg = appendAccepted(c.msg[:0], call.XID, stat, low, high, nil)
	return c.writeMsgLocked(call.XID)
}

// ReplyDenied sends a MSG_DENIED reply. For rejectStat RPCMismatch it sends
// low and high, the supported RPC versions; for AuthError it sends authStat.
// Any other rejectStat, which RFC 5531 does not define, is sent with nothing
// after it, to test a client's handling of it.
func (c *Conn) ReplyDenied(call *Call, rejectStat, low, high, authStat uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.msg = appendDenied(c.msg[:0], call.XID, rejectStat, low, high, authStat)
	return c.writeMsgLocked(call.XID)
}

// writeMsgLocked frames c.msg into records and writes it. c.wmu must be held.
func (c *Conn) writeMsgLocked(xid uint32) error {
	c.out = appendFragments(c.out[:0], c.msg, int(c.srv.fragmentSize.Load()))
	if _, err := c.nc.Write(c.out); err != nil {
		return fmt.Errorf("rpctest: conn %d: reply to xid %#x: %w", c.index, xid, err)
	}
	return nil
}

// WriteRaw writes b as it is, in one Write: a hostile record marker, a
// truncated record, a reply to an XID nobody sent.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("rpctest: conn %d: write: %w", c.index, err)
	}
	return nil
}

// Close closes the connection in an orderly way: it sends a FIN at once, so
// the client reads end-of-file after any reply already written. Calls that
// arrive afterwards are read and thrown away, unrecorded, as a server that
// has closed never sees them; the socket itself is closed when the client
// closes its end (or on Abort, or when the server closes). Reading on rather
// than closing the socket at once keeps unread calls in the kernel's buffer
// from turning the FIN into a reset.
//
// A reply being written concurrently by another goroutine may be cut short.
func (c *Conn) Close() error {
	c.closing.Store(true)
	if err := c.nc.CloseWrite(); err != nil {
		return fmt.Errorf("rpctest: conn %d: close: %w", c.index, err)
	}
	return nil
}

// Abort resets the connection: with SO_LINGER set to {on, 0}, closing the
// socket sends an RST instead of a FIN, and the client's next read or write
// fails with ECONNRESET.
func (c *Conn) Abort() error {
	c.closing.Store(true)
	err := c.nc.SetLinger(0)
	if cerr := c.nc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rpctest: conn %d: abort: %w", c.index, err)
	}
	return nil
}

// serve is the reader goroutine of a connection of a server started by
// Start: it reads records, decodes them as calls and passes them to h.
func (c *Conn) serve(h Handler) {
	defer c.finish()
	br := bufio.NewReaderSize(c.nc, bufSize)
	var spare []byte // buffer reused for records read while closing
	for {
		if c.closing.Load() {
			rec, err := readRecord(br, spare)
			if err != nil {
				c.readFailed(err)
				return
			}
			spare = rec
			continue
		}
		// A fresh buffer per record: the Call's slices alias it, and the
		// handler may keep the Call.
		rec, err := readRecord(br, nil)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.closing.Load() {
			continue
		}
		call := &Call{Conn: c}
		if err := parseCall(rec, call); err != nil {
			c.protocolError(err)
			return
		}
		c.srv.record(call)
		h(c, call)
	}
}

// finish runs when a reader goroutine returns.
func (c *Conn) finish() {
	c.nc.Close()
	close(c.done)
	c.srv.wg.Done()
}

// readFailed sorts a read error: a clean end of stream or an error of the
// socket (closed, reset) ends the connection quietly; a framing error is a
// protocol error.
func (c *Conn) readFailed(err error) {
	if errors.Is(err, errTruncated) || errors.Is(err, errRecordTooLong) {
		c.protocolError(err)
	}
}

// protocolError records err, which the client's bytes caused, with the
// server. The caller then returns, and the connection is closed.
func (c *Conn) protocolError(err error) {
	c.srv.fail(fmt.Errorf("rpctest: conn %d: %w", c.index, err))
}
