package rpctest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// emptySuccess is the length of the responder's reply body: xid, msg_type,
// reply_stat, verifier flavor, verifier length, accept_stat.
const emptySuccess = 6 * 4

// callHead is how many bytes of a call the responder looks at: xid and
// msg_type. The rest of the record is skipped unread.
const callHead = 8

// respond is the reader goroutine of a connection of a server started by
// StartResponder. Per call it copies 8 bytes, skips the rest of the record
// inside the read buffer and appends a 28-byte reply to the write buffer; it
// allocates nothing. Replies are flushed, in a batch, only when the next read
// would have to wait for the socket, so a pipelining client gets many replies
// per write and none is held back while the server waits for input.
func (c *Conn) respond() {
	defer c.finish()
	br := bufio.NewReaderSize(c.nc, bufSize)
	bw := bufio.NewWriterSize(c.nc, bufSize)

	// The constant part of every reply: a one-fragment record marker,
	// then msg_type REPLY; reply_stat, the AUTH_NONE verifier and
	// accept_stat SUCCESS are all zero. Only the XID at [4:8] changes.
	var reply [4 + emptySuccess]byte
	binary.BigEndian.PutUint32(reply[0:], lastFragment|emptySuccess)
	binary.BigEndian.PutUint32(reply[8:], msgReply)

	var head [callHead]byte
	for {
		got, err := c.skipRecord(br, bw, &head)
		if err != nil {
			if err != io.EOF {
				c.readFailed(err)
			}
			return
		}
		if got < callHead {
			c.protocolError(fmt.Errorf("call of %d bytes, too short for a header", got))
			return
		}
		if mtype := binary.BigEndian.Uint32(head[4:]); mtype != msgCall {
			c.protocolError(fmt.Errorf("xid %#x: msg_type %d, want CALL (0)", binary.BigEndian.Uint32(head[:]), mtype))
			return
		}
		if c.closing.Load() {
			// After Close or Abort the write side is gone: drop
			// what is buffered and keep reading until the client
			// closes.
			bw.Reset(c.nc)
			continue
		}
		if bw.Available() < len(reply) {
			if err := c.flush(bw); err != nil {
				return
			}
		}
		copy(reply[4:8], head[:4])
		bw.Write(reply[:]) // cannot fail: it fits in the buffer
	}
}

// skipRecord reads one record from br, copying its first bytes (up to
// len(head)) into head and discarding the rest, and returns how many bytes it
// copied. Whenever the next read would block on the socket it first flushes
// bw, so replies to earlier calls never wait on later input. It returns
// io.EOF only for a clean end of stream between records.
func (c *Conn) skipRecord(br *bufio.Reader, bw *bufio.Writer, head *[callHead]byte) (int, error) {
	got, total := 0, 0
	for first := true; ; first = false {
		if err := c.flushBefore(br, bw, 4); err != nil {
			return got, err
		}
		hdr, err := br.Peek(4)
		if err != nil {
			if err == io.EOF && first && len(hdr) == 0 {
				return 0, io.EOF
			}
			return got, readErr(err)
		}
		marker := binary.BigEndian.Uint32(hdr)
		br.Discard(4) // cannot fail: Peek returned 4 bytes
		n := int(marker & fragmentMask)
		if n > maxRecord-total {
			return got, errRecordTooLong
		}
		total += n
		if k := min(n, len(head)-got); k > 0 {
			if err := c.flushBefore(br, bw, k); err != nil {
				return got, err
			}
			p, err := br.Peek(k)
			if err != nil {
				return got, readErr(err)
			}
			copy(head[got:], p)
			br.Discard(k)
			got += k
			n -= k
		}
		if err := c.flushBefore(br, bw, n); err != nil {
			return got, err
		}
		if _, err := br.Discard(n); err != nil {
			return got, readErr(err)
		}
		if marker&lastFragment != 0 {
			return got, nil
		}
	}
}

// flushBefore flushes bw if fewer than n bytes are buffered in br, that is,
// if reading n bytes may block.
func (c *Conn) flushBefore(br *bufio.Reader, bw *bufio.Writer, n int) error {
	if br.Buffered() >= n || bw.Buffered() == 0 {
		return nil
	}
	if c.closing.Load() {
		bw.Reset(c.nc)
		return nil
	}
	return c.flush(bw)
}

// flush writes out bw's batch of replies under the write lock, so that it
// cannot interleave with WriteRaw or a Reply on the same connection.
func (c *Conn) flush(bw *bufio.Writer) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return bw.Flush()
}
