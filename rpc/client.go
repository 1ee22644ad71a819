package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/internal/bufpool"
	"github.com/gonfs/nfs/rpc/xdr"
)

// Transport supplies the connections a Client sends on and redials when
// the Client reports one broken. Package xprt implements it; the Client
// never dials by itself, and never sees the reconnect policy.
type Transport interface {
	// Conn returns the ready connection and its generation. When none is
	// ready it starts connecting (unless a dial is under way) and returns
	// a nil conn with a channel that is closed when the state next
	// changes. A non-nil err is final: the transport is closed or has
	// given up.
	Conn() (conn net.Conn, gen uint64, changed <-chan struct{}, err error)
	// Fail reports that the connection of generation gen is broken because
	// of cause. The transport closes it and redials on demand. Reports for
	// an older generation than the current one are ignored. It does not
	// block on I/O.
	Fail(gen uint64, cause error)
	// Answered reports that the connection of generation gen carried a
	// complete reply to a call: evidence that it works, as bytes alone
	// are not. The Client reports it once per connection, before any
	// Fail for that connection from its reader.
	Answered(gen uint64)
	// Close shuts the transport down.
	Close() error
}

// Marshaler is implemented by call arguments.
type Marshaler interface {
	// MarshalXDR appends the arguments to e.
	MarshalXDR(e *xdr.Encoder) error
}

// Unmarshaler is implemented by call results.
type Unmarshaler interface {
	// UnmarshalXDR decodes the results from d. Byte slices read from d
	// alias a buffer that is reused once UnmarshalXDR returns: copy what
	// must be kept.
	UnmarshalXDR(d *xdr.Decoder) error
}

// Defaults of the Config fields left zero.
const (
	// DefaultTimeo is Config.Timeo: the Linux client's default over TCP.
	DefaultTimeo = 60 * time.Second
	// DefaultRetrans is Config.Retrans.
	DefaultRetrans = 2
	// DefaultSoftTimeouts is Config.SoftTimeouts.
	DefaultSoftTimeouts = 1
	// DefaultMaxRecord is Config.MaxRecord, the largest record a Client
	// accepts by default: a 1 MiB READ or WRITE payload plus 64 KiB for
	// the RPC and COMPOUND headers around it.
	DefaultMaxRecord = 1<<20 + 64<<10
)

// Config configures a Client. The zero value is usable except for Prog and
// Vers, which name the program every call goes to: every other field left
// zero takes the default documented next to it.
type Config struct {
	// Prog and Vers are the RPC program and version, e.g. 100003 and 4 for NFSv4.
	Prog, Vers uint32

	// Auth signs every call. Default (nil): AuthNone.
	Auth Auth

	// Timeo is the time one transmission waits for its reply before a
	// minor timeout. Default: 60s (DefaultTimeo). Over TCP nothing is
	// re-sent on a minor timeout (RFC 7530 §3.1.1 forbids re-sending on
	// the same connection); the timeouts only add up to a major timeout.
	Timeo time.Duration

	// Retrans is the number of minor timeouts that make a major timeout.
	// Default: 2 (DefaultRetrans). A call unanswered for Timeo × Retrans
	// after it was last sent forces a disconnect; the call is then re-sent,
	// with the same XID, on the next connection. Timeo × Retrans is the
	// major timeout. The RPC timeout answers "is the server too slow for
	// this call?"; a dead network path is the transport's to detect, and
	// much sooner (see package xprt).
	Retrans int

	// Soft makes a call fail with a *TimeoutError once SoftTimeouts major
	// timeouts have passed since it started, however often it was re-sent
	// on a new connection meanwhile. The default (hard) retries until the
	// caller's context ends, like the Linux client's "hard" mount: no
	// operation is ever reported as failed when its outcome is unknown, at
	// the cost of waiting through outages. Soft returns control sooner, but
	// a call that timed out may still have run on the server.
	Soft bool

	// SoftTimeouts is a soft call's budget, in major timeouts from its
	// start. Default: 1 (DefaultSoftTimeouts).
	SoftTimeouts int

	// MaxRecord is the largest reply record accepted. Default: 1 MiB +
	// 64 KiB (DefaultMaxRecord). A peer announcing more gets its
	// connection reset.
	MaxRecord int

	// Logger receives major-timeout and connection-error events. Default
	// (nil): no output. Nothing is logged on the success path of a call.
	Logger *slog.Logger

	// Bind, if set, prepares every new connection, each reconnect
	// included, before calls other than its own go on it: it is called
	// once per connection, on a goroutine of the Client's, with the
	// connection's remote address (which server address it reached) and a
	// call function that sends on that connection alone (package nfs4
	// checks that an address it has not seen reaches the session's
	// server, then binds the connection to its session with
	// BIND_CONN_TO_SESSION). Calls meanwhile
	// go on the Client's other connections, or wait. An error from Bind
	// fails the connection, which is then redialed; an error the
	// connection can live with should be logged and nil returned. It is
	// bounded by the major timeout and by Close. Default (nil): a
	// connection carries calls as soon as it is made.
	Bind func(ctx context.Context, remote net.Addr, call CallFunc) error
}

// A Resender is a call's arguments that can tell whether re-sending the
// call is still of use. Before a call cut off by a lost connection is
// re-sent on another, the Client asks its arguments, if they implement
// Resender; an error fails the call with that error instead. The call may
// have run on the server before its connection was lost. Package nfs4's
// calls answer with an error once their session is known lost: the server
// would answer the re-sent call with NFS4ERR_BADSESSION, and a WRITE's
// megabyte of data would only delay the calls that recover the session.
type Resender interface {
	Resend() error
}

// CallFunc is the signature of Client.Call, as Config.Bind receives it.
type CallFunc func(ctx context.Context, proc uint32, args Marshaler, res Unmarshaler) error

// withDefaults returns cfg with the zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Auth == nil {
		cfg.Auth = AuthNone
	}
	if cfg.Timeo <= 0 {
		cfg.Timeo = DefaultTimeo
	}
	if cfg.Retrans <= 0 {
		cfg.Retrans = DefaultRetrans
	}
	if cfg.SoftTimeouts <= 0 {
		cfg.SoftTimeouts = DefaultSoftTimeouts
	}
	if cfg.MaxRecord <= 0 {
		cfg.MaxRecord = DefaultMaxRecord
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Stats counts a Client's calls. See Client.Stats.
type Stats struct {
	Calls         uint64 // calls started
	Retransmits   uint64 // calls re-sent on a new connection, same XID
	MajorTimeouts uint64 // major timeouts, each forcing a disconnect if the call was on the live connection
	UnknownXIDs   uint64 // replies matching no pending call (late, cancelled or bogus), dropped
	Pending       int    // calls awaiting a reply now
	Resent        int    // of Pending, calls re-sent on a new connection at least once
	Conns         int    // connections carrying calls now (at most one per Transport)
	GSSContexts   uint64 // RPCSEC_GSS contexts established: the first, renewals, and after the server lost one
}

// Sentinel errors.
var (
	// ErrClosed is returned by calls on, or pending at, a closed Client.
	ErrClosed = errors.New("rpc: client closed")
	// ErrTimeout is matched (errors.Is) by *TimeoutError, the error of a soft
	// call that ran out of major timeouts.
	ErrTimeout = errors.New("rpc: call timed out")
)

// Client sends RPC calls over one or several Transports, many at once on
// each connection, matching replies to calls by XID. It is safe for
// concurrent use by many goroutines.
//
// Every call takes a context: cancelling it abandons that call only (a late
// reply is then counted as an unknown XID and dropped). A call goes on the
// ready connection with the fewest calls in flight. When a connection
// dies, its calls in flight are re-sent with their original XID and bytes
// (RPCSEC_GSS: a new sequence number and verifier) on another ready
// connection, or on the next one, so a server's
// duplicate-request cache (NFSv4.1: the session's reply cache) can
// recognise them; a call is never re-sent on the connection it was sent
// on (but for an RPCSEC_GSS call the server's sequence window has passed:
// see GSSAuth), and the death of one connection does not hold up calls
// that another can carry.
type Client struct {
	lanes   atomic.Pointer[[]*lane] // one per Transport; replaced (copied) by AddTransport under mu
	bind    func(ctx context.Context, remote net.Addr, call CallFunc) error
	prog    uint32
	vers    uint32
	auth    Auth
	gss     *gssState // set when auth is a *GSSAuth
	major   time.Duration
	soft    bool
	softMax int
	maxRec  int
	log     *slog.Logger

	xid    atomic.Uint32
	ctx    context.Context // ended by Close: the Client's one shutdown signal
	cancel context.CancelFunc
	done   <-chan struct{}               // ctx.Done()
	wake   atomic.Pointer[chan struct{}] // closed and replaced when a connection becomes ready or a lane fails (conns.go)

	mu      sync.Mutex       // guards pending, closed, probes, and the start of goroutines
	pending map[uint32]*call // calls sent or about to be sent, by XID
	closed  bool

	readers sync.WaitGroup // readers and connectors (conns.go)

	calls, retrans, majors, unknown atomic.Uint64
	resent                          atomic.Int64 // calls re-sent and not yet done (Stats.Resent)
	gssContexts                     atomic.Uint64
}

// pathWatcher is implemented by connections whose transport watches the
// network path while replies are awaited (package xprt's): when the server
// has gone silent it calls probe, and fails the connection if the probe is
// not acknowledged. awaiting and probe are called from the transport's
// goroutines, never per call.
type pathWatcher interface {
	Watch(awaiting func() bool, probe func() error)
}

// maxProbes bounds the probes remembered per connection, awaiting their
// replies.
const maxProbes = 64

// conn is one connection handed out by a Transport. It dies with its
// socket; the calls survive it in Client.pending.
type conn struct {
	nc       net.Conn
	gen      uint64
	lane     *lane
	dead     chan struct{} // closed once the connection is known broken
	deadOnce sync.Once
	ready    atomic.Bool     // bound (Config.Bind): calls may go on it
	inflight atomic.Int32    // calls last sent on it and not yet done, by their callers' count
	bulk     chan struct{}   // capacity 1: held by a bulk record's writer before wmu (write)
	wmu      chan struct{}   // capacity 1: held while a record is written (write, probe)
	probes   map[uint32]bool // XIDs of NULL probes sent on it; guarded by Client.mu
}

// call is the state of one call in flight, recycled through callPool.
// Between its insertion into pending and the reply's hand-over it is shared
// with the reader goroutine, which takes it out of pending when a reply
// with its XID starts, reads the reply (a payload into sink's buffer), sets
// reply, lift, liftAt and lost, and signals ready.
type call struct {
	xid    uint32
	rec    *[]byte // the encoded record, kept for re-sending; without pay, if set
	pay    []byte  // a bulk payload the record leaves out, written from the caller's buffer (xdr.Encoder.Payload)
	payAt  int     // where in rec pay belongs
	iov    [3][]byte
	bufs   net.Buffers // iov, as write hands it to the connection
	enc    xdr.Encoder
	dec    xdr.Decoder
	reply  *[]byte       // set by the reader before it signals ready
	ready  chan struct{} // capacity 1
	sink   PayloadReceiver
	lift   []byte // the payload the reader read into sink's buffer (xdr.Decoder.Lift)
	liftAt int
	by     *conn       // the connection whose reader took the call out of pending
	lost   bool        // set by that reader before it signals ready: the connection died mid-reply
	timer  *time.Timer // major timeout
	args   Marshaler   // what was encoded, asked before a re-send if a Resender
	gss    gssCall     // an RPCSEC_GSS call's state; gss.g is nil for other flavors
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{ready: make(chan struct{}, 1), timer: t}
}}

// bulkRecord is the size above which a record is bulk: a WRITE's data,
// not a small call.
const bulkRecord = 64 << 10

// An untilWriter writes buffers as one record in one system call where it
// can (writev), and gives up when done is closed (xprt's connections).
type untilWriter interface {
	WriteBuffersUntil(done <-chan struct{}, b *net.Buffers) (int64, error)
}

// errNotSent is write's error when ctx ended, or the connection died,
// before any of the record was written.
var errNotSent = errors.New("rpc: record not sent")

// write writes cl's record on the connection, whole, while it holds
// cn.wmu, so that records from concurrent calls never interleave: in one
// write, or, with a payload left out of the record (a WRITE's data), as
// the record's head, the payload and its tail in one writev where the
// connection can.
//
// Bulk records take turns on cn.bulk first, so at most one of them holds
// or waits for cn.wmu at a time, and both are handed over in the order
// they were asked for (a channel's waiting senders are served first in,
// first out). A small call (a GETATTR, a LOOKUP, a lease renewal) thus
// waits behind at most one bulk record and the unsent data the kernel
// holds (xprt.SocketOptions.NotSentLowat), not behind every bulk record
// of the calls in flight. The socket's own write lock is no help: it lets
// newcomers barge, and a MKDIR was seen waiting 1.1 s behind 13 WRITEs of
// 1 MiB on a 100 Mbit/s link.
//
// The waits end with ctx, or when the connection dies (errNotSent), and
// so does the write itself on a connection that can cut it short
// (untilWriter; a server that stops reading would otherwise hold the
// caller until the socket times out): the record is then incomplete on
// the wire and the caller must fail the connection.
func (cn *conn) write(ctx context.Context, cl *call) error {
	done := ctx.Done()
	size := len(cl.pay)
	if cl.gss.g != nil {
		size = len(*cl.gss.plain) + len(cl.gss.pay)
	} else {
		size += len(*cl.rec)
	}
	if size > bulkRecord {
		if !cn.acquire(cn.bulk, done) {
			return errNotSent
		}
		defer func() { <-cn.bulk }()
	}
	if !cn.acquire(cn.wmu, done) {
		return errNotSent
	}
	defer func() { <-cn.wmu }()
	rec := *cl.rec
	if cl.pay == nil {
		cl.iov = [3][]byte{rec}
		cl.bufs = cl.iov[:1]
	} else {
		cl.iov = [3][]byte{rec[:cl.payAt], cl.pay, rec[cl.payAt:]}
		cl.bufs = cl.iov[:]
	}
	var err error
	if w, ok := cn.nc.(untilWriter); ok {
		_, err = w.WriteBuffersUntil(done, &cl.bufs)
	} else {
		_, err = cl.bufs.WriteTo(cn.nc)
	}
	return err
}

// acquire takes the semaphore sem (capacity 1), unless done is closed or
// the connection dies first; it reports whether it did.
func (cn *conn) acquire(sem chan struct{}, done <-chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-done:
		return false
	case <-cn.dead:
		return false
	}
}

// NewClient returns a Client sending on t. The Client owns t and closes it
// on Close. No connection is made until the first call.
func NewClient(t Transport, cfg Config) *Client {
	return NewTrunk([]Transport{t}, cfg)
}

// NewTrunk returns a Client sending on every Transport of ts, one
// connection each at a time: each call goes on the ready connection with
// the fewest calls in flight. The Client owns the transports and closes
// them on Close. No connection is made until the first call, which starts
// every transport connecting; a transport that gives up for good (its
// policy's decision) is left out from then on, and calls fail only when
// every transport has. ts must not be empty.
func NewTrunk(ts []Transport, cfg Config) *Client {
	cfg = cfg.withDefaults()
	c := &Client{
		bind:    cfg.Bind,
		prog:    cfg.Prog,
		vers:    cfg.Vers,
		auth:    cfg.Auth,
		major:   cfg.Timeo * time.Duration(cfg.Retrans),
		soft:    cfg.Soft,
		softMax: cfg.SoftTimeouts,
		maxRec:  cfg.MaxRecord,
		log:     cfg.Logger,
		pending: make(map[uint32]*call),
	}
	if a, ok := cfg.Auth.(*GSSAuth); ok {
		c.gss = &gssState{auth: a, c: c}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = c.ctx.Done()
	wake := make(chan struct{})
	c.wake.Store(&wake)
	lanes := make([]*lane, len(ts))
	for i, t := range ts {
		lanes[i] = &lane{t: t}
	}
	c.lanes.Store(&lanes)
	// XIDs start at a random point so that a restarted client does not
	// replay XIDs a server's duplicate-request cache still remembers.
	c.xid.Store(rand.Uint32())
	return c
}

// Call invokes procedure proc with args and decodes the reply into res.
// Either may be nil (no arguments, or results ignored). It blocks until the
// reply arrives, ctx ends, the Client is closed, or — for a soft Client —
// the call runs out of major timeouts.
//
// A reply that is not an accepted success is returned as *AcceptError or
// *DeniedError. If ctx ends but the reply had already arrived, the reply
// wins: the operation did run.
func (c *Client) Call(ctx context.Context, proc uint32, args Marshaler, res Unmarshaler) error {
	return c.do(ctx, nil, proc, args, res)
}

// do is Call, on pin alone if set.
func (c *Client) do(ctx context.Context, pin *conn, proc uint32, args Marshaler, res Unmarshaler) error {
	cl := callPool.Get().(*call)
	defer c.release(cl)

	cl.xid = c.xid.Add(1)
	if c.gss != nil {
		return c.gss.call(ctx, cl, pin, proc, args, res)
	}
	if err := c.encode(cl, proc, args); err != nil {
		return err
	}
	cl.args = args
	if pr, ok := res.(PayloadReceiver); ok {
		cl.sink = pr
	}
	if err := c.roundTrip(ctx, cl, pin); err != nil {
		return err
	}
	return c.decode(cl, res)
}

// decode parses cl's reply into res.
func (c *Client) decode(cl *call, res Unmarshaler) error {
	cl.dec.Reset(*cl.reply)
	if cl.lift != nil {
		cl.dec.Lift(cl.liftAt, cl.lift)
	}
	if cl.gss.g == nil {
		if _, err := ParseReply(&cl.dec, c.auth); err != nil {
			return err
		}
	} else {
		if _, err := parseReply(&cl.dec, &cl.gss); err != nil {
			return err
		}
		if err := cl.gss.openReply(&cl.dec); err != nil {
			return err
		}
	}
	if res != nil {
		if err := res.UnmarshalXDR(&cl.dec); err != nil {
			return err
		}
		if err := cl.dec.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) encode(cl *call, proc uint32, args Marshaler) error {
	if cl.rec == nil {
		cl.rec = bufpool.Get(0)
	}
	cl.enc.Reset((*cl.rec)[:0])
	cl.enc.ReferenceFrom(bulkRecord)
	mark := beginRecord(&cl.enc)
	AppendCall(&cl.enc, cl.xid, c.prog, c.vers, proc, c.auth)
	if args != nil {
		if err := args.MarshalXDR(&cl.enc); err != nil {
			return err
		}
	}
	if err := endRecord(&cl.enc, mark); err != nil {
		return err
	}
	*cl.rec = cl.enc.Bytes()
	cl.pay, cl.payAt = cl.enc.Referenced()
	return nil
}

// release returns cl and its buffers to their pools. The reader no longer
// references cl: it is out of pending, and any reply was received.
func (c *Client) release(cl *call) {
	cl.timer.Stop()
	cl.args = nil
	cl.gss.release()
	if cl.reply != nil {
		bufpool.Put(cl.reply)
		cl.reply = nil
	}
	cl.dec.Reset(nil)
	cl.enc.Reset(nil)
	cl.sink, cl.lift, cl.by, cl.lost = nil, nil, nil, false
	cl.pay, cl.iov, cl.bufs = nil, [3][]byte{}, nil // not the caller's buffer's keeper
	if cl.rec != nil && cap(*cl.rec) > 64<<10 {
		// Do not let one large WRITE pin a large buffer to a pooled call.
		bufpool.Put(cl.rec)
		cl.rec = nil
	}
	callPool.Put(cl)
}

// roundTrip sends cl and waits for its reply, re-sending it on another
// connection whenever the one it went on dies, until the reply arrives or
// the call is abandoned. A call pinned to a connection (pin, for
// Config.Bind) goes on that one alone and fails with errConnLost when it
// dies.
//
// Two clocks run on cl.timer. A major timeout after the call was last sent
// forces a disconnect. A soft call's budget, SoftTimeouts major timeouts,
// runs from the call's start and is not restarted by a re-send: a server
// that breaks every connection before it answers must not keep a soft
// call alive by making it re-send.
func (c *Client) roundTrip(ctx context.Context, cl *call, pin *conn) error {
	c.calls.Add(1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.pending[cl.xid] = cl
	c.mu.Unlock()

	var on *conn // the connection cl was last sent on; nil: not yet sent
	resent := false
	defer func() {
		if on != nil {
			on.inflight.Add(-1)
		}
		if resent {
			c.resent.Add(-1)
		}
	}()
	var start time.Time
	if c.soft {
		start = time.Now()
	}
	majors := 0
	cl.timer.Reset(c.timeout(start))
	for {
		var wake <-chan struct{}
		if on == nil || on.isDead() {
			if on != nil {
				// The reader of the dead connection may have taken the
				// call at its reply's head: a re-send answered before
				// that reader hands the call back would find no call
				// pending and be dropped.
				if done, err := c.reclaim(ctx, cl); done {
					return err
				}
			}
			cn, w, err := c.pick(pin)
			if err != nil {
				select {
				case <-c.done:
					// Close shut the transport under us: report that, not the
					// transport's own error.
					err = ErrClosed
				default:
				}
				return c.abandon(cl, err)
			}
			if cn != nil {
				if on != nil {
					if r, ok := cl.args.(Resender); ok {
						if err := r.Resend(); err != nil {
							return c.abandon(cl, err)
						}
					}
					c.retrans.Add(1)
					on.inflight.Add(-1)
					if !resent {
						resent = true
						c.resent.Add(1)
					}
				}
				// Counted before the write, so that the path watch the
				// write wakes finds the call awaited.
				on = cn
				cn.inflight.Add(1)
				cl.timer.Reset(c.timeout(start))
				cl.gss.armRecheck()
				if err := cl.gss.seal(cl); err != nil {
					return c.abandon(cl, err)
				}
				if err := cn.write(ctx, cl); err != nil {
					if err != errNotSent {
						// The record may be cut short: the stream is lost.
						c.broken(cn, err)
					}
					if err := ctx.Err(); err != nil {
						return c.abandon(cl, err)
					}
					continue
				}
			}
			wake = w
		}
		var dead <-chan struct{}
		if on != nil && wake == nil {
			dead = on.dead
		}
		select {
		case <-cl.ready:
			if !cl.lost {
				return nil
			}
			// The connection died while the reply came in: the call awaits
			// a reply again, re-sent if it went on that connection.
			if err := c.requeue(cl); err != nil {
				return err
			}
		case <-dead:
			// The connection died; loop to re-send on another.
		case <-wake:
			// A connection became ready, or a transport gave up; look again.
		case <-ctx.Done():
			err := ctx.Err()
			if on == nil {
				err = c.notConnected(err)
			}
			return c.abandon(cl, err)
		case <-c.done:
			return c.abandon(cl, ErrClosed)
		case <-cl.gss.recheck():
			if on != nil && !on.isDead() && cl.gss.passed() {
				// The server dropped it (see gss.go): once more, with a
				// new sequence number, on the same connection.
				c.retrans.Add(1)
				cl.gss.armRecheck()
				if err := cl.gss.seal(cl); err != nil {
					return c.abandon(cl, err)
				}
				if err := on.write(ctx, cl); err != nil {
					if err != errNotSent {
						c.broken(on, err)
					}
					if err := ctx.Err(); err != nil {
						return c.abandon(cl, err)
					}
				}
			} else {
				cl.gss.armRecheck()
			}
		case <-cl.timer.C:
			majors++
			c.majors.Add(1)
			if waited := time.Since(start); c.soft && waited >= c.budget() {
				c.log.Warn("rpc: server not responding, timed out", "xid", cl.xid, "waited", waited)
				return c.abandon(cl, &TimeoutError{XID: cl.xid, MajorTimeouts: c.softMax, Waited: waited})
			}
			c.log.Warn("rpc: server not responding, still trying", "xid", cl.xid, "major_timeouts", majors)
			if on != nil && !on.isDead() {
				// Force a new connection; the call goes out again on it.
				c.broken(on, errMajorTimeout)
				if pin != nil {
					return c.abandon(cl, errMajorTimeout)
				}
			}
			cl.timer.Reset(c.timeout(start))
		}
	}
}

// budget is a soft call's time from its start to its *TimeoutError.
func (c *Client) budget() time.Duration { return time.Duration(c.softMax) * c.major }

// timeout is what cl.timer is set to when a call started at start is
// (re-)sent: a major timeout, cut short for a soft call to what is left of
// its budget.
func (c *Client) timeout(start time.Time) time.Duration {
	if !c.soft {
		return c.major
	}
	return max(0, min(c.major, c.budget()-time.Since(start)))
}

// abandon takes cl out of pending and returns err — unless a reader has
// already taken it, in which case the reply is on its way and wins. The
// reply may be coming into the caller's buffer (PayloadReceiver), which
// must not be written once the call returns: abandon waits for it, at
// most a major timeout, after which it fails the connection.
func (c *Client) abandon(cl *call, err error) error {
	c.mu.Lock()
	_, mine := c.pending[cl.xid]
	if mine {
		delete(c.pending, cl.xid)
	}
	c.mu.Unlock()
	if mine {
		return err
	}
	select {
	case <-cl.ready:
	default:
		cl.timer.Reset(c.major)
		select {
		case <-cl.ready:
		case <-cl.timer.C:
			c.broken(cl.by, errMajorTimeout)
			<-cl.ready
		}
	}
	if cl.lost {
		return err
	}
	return nil
}

// reclaim makes sure that cl, whose connection died, awaits a reply in
// pending before it is sent again. If that connection's reader took it at
// its reply's head, reclaim waits for the reader to hand it over: the
// reply whole (done, nil), or lost with the connection (requeued). done
// reports that roundTrip is to return err.
func (c *Client) reclaim(ctx context.Context, cl *call) (done bool, err error) {
	c.mu.Lock()
	_, waiting := c.pending[cl.xid]
	c.mu.Unlock()
	if waiting {
		return false, nil
	}
	select {
	case <-cl.ready:
		if !cl.lost {
			return true, nil
		}
		if err := c.requeue(cl); err != nil {
			return true, err
		}
		return false, nil
	case <-ctx.Done():
		return true, c.abandon(cl, ctx.Err())
	case <-c.done:
		return true, c.abandon(cl, ErrClosed)
	}
}

// requeue puts cl back in pending after the reader that took it lost its
// connection in the middle of the reply.
func (c *Client) requeue(cl *call) error {
	cl.lost, cl.by = false, nil
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.pending[cl.xid] = cl
	return nil
}

// probe sends a NULL call on cn for the transport's path watch. Its reply
// is dropped by the reader without counting as an unknown XID; its TCP
// acknowledgement is what the transport waits for.
func (c *Client) probe(cn *conn) error {
	xid := c.xid.Add(1)
	var e xdr.Encoder
	e.Reset(make([]byte, 0, 128))
	mark := beginRecord(&e)
	AppendCall(&e, xid, c.prog, c.vers, 0, c.auth)
	if err := endRecord(&e, mark); err != nil {
		return err
	}
	c.mu.Lock()
	if cn.probes == nil {
		cn.probes = make(map[uint32]bool)
	}
	if len(cn.probes) >= maxProbes {
		// A server that acknowledges probes but never answers them: forget
		// one, whose late reply then counts as an unknown XID.
		for old := range cn.probes {
			delete(cn.probes, old)
			break
		}
	}
	cn.probes[xid] = true
	c.mu.Unlock()
	if !cn.acquire(cn.wmu, nil) {
		return errConnLost
	}
	defer func() { <-cn.wmu }()
	_, err := cn.nc.Write(e.Bytes())
	return err
}

func (cn *conn) isDead() bool {
	select {
	case <-cn.dead:
		return true
	default:
		return false
	}
}

// broken marks cn dead, waking every call sent on it, and tells the
// transport. Safe to call many times and from any goroutine.
func (c *Client) broken(cn *conn, cause error) {
	cn.deadOnce.Do(func() {
		// Tell the transport first: whoever sees dead closed and asks the
		// transport for a connection must not be handed this one again.
		cn.lane.t.Fail(cn.gen, cause)
		close(cn.dead)
		select {
		case <-c.done:
		default:
			c.log.Info("rpc: connection lost", "gen", cn.gen, "err", cause)
		}
	})
}

// read is the connection's one reader goroutine: it hands each reply to
// the call with its XID and drops replies nobody waits for. It takes the
// call out of pending as soon as the reply's XID is in, so that a payload
// can go into the call's own buffer; should the connection die before the
// rest is in, the call is handed back, lost.
func (c *Client) read(cn *conn) {
	defer c.readers.Done()
	rr := recordReader{br: bufio.NewReaderSize(cn.nc, 64<<10), max: c.maxRec}
	answered := false // Transport.Answered was called for cn
	var cl *call
	var probe bool
	claim := func(head []byte) (int, []byte) {
		if len(head) < 4 {
			return -1, nil
		}
		xid := binary.BigEndian.Uint32(head)
		c.mu.Lock()
		cl = c.pending[xid]
		if cl != nil {
			delete(c.pending, xid)
			cl.by = cn
		} else if cn.probes[xid] {
			delete(cn.probes, xid)
			probe = true
		}
		c.mu.Unlock()
		if cl == nil || cl.sink == nil {
			return -1, nil
		}
		at, ok := resultsAt(head)
		if !ok {
			return -1, nil
		}
		off, dst, ok := cl.sink.LocatePayload(head[at:])
		if !ok || off < 0 {
			return -1, nil
		}
		return at + off, dst
	}
	for {
		cl, probe = nil, false
		bp, lifted, liftAt, err := rr.next(claim)
		if err != nil {
			if errors.Is(err, ErrRecordTooLarge) {
				c.log.Warn("rpc: resetting connection", "gen", cn.gen, "err", err)
			}
			c.broken(cn, err)
			if cl != nil {
				cl.lost = true
				cl.ready <- struct{}{}
			}
			return
		}
		if cl == nil {
			if !probe {
				c.unknown.Add(1)
			}
			bufpool.Put(bp)
			continue
		}
		if !answered && isReply(*bp) {
			// Tell the transport before reading on, so that this comes
			// before the Fail of a connection that ends after it.
			answered = true
			cn.lane.t.Answered(cn.gen)
		}
		cl.reply, cl.lift, cl.liftAt = bp, lifted, liftAt
		cl.ready <- struct{}{}
	}
}

// isReply reports whether rec starts as an RPC reply does (RFC 5531 §9):
// an XID, msg_type REPLY and a known reply_stat.
func isReply(rec []byte) bool {
	return len(rec) >= 12 && binary.BigEndian.Uint32(rec[4:]) == msgReply &&
		binary.BigEndian.Uint32(rec[8:]) <= msgDenied
}

// Stats returns a snapshot of the Client's counters. Connection-level
// counters (connects, ports, bytes, time disconnected) are the Transport's.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	conns := 0
	for _, l := range *c.lanes.Load() {
		if cn := l.cur.Load(); cn != nil && cn.ready.Load() && !cn.isDead() {
			conns++
		}
	}
	return Stats{
		Calls:         c.calls.Load(),
		Retransmits:   c.retrans.Load(),
		MajorTimeouts: c.majors.Load(),
		UnknownXIDs:   c.unknown.Load(),
		Pending:       n,
		Resent:        int(c.resent.Load()),
		Conns:         conns,
		GSSContexts:   c.gssContexts.Load(),
	}
}

// Close fails every pending call with ErrClosed, closes the transport and
// waits for the Client's goroutines to end. With RPCSEC_GSS it first asks
// the server to destroy the context (RPCSEC_GSS_DESTROY), if a connection
// is ready, waiting at most a second. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if c.gss != nil {
		c.gss.destroy()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	c.mu.Unlock()
	var err error
	for _, l := range *c.lanes.Load() {
		if terr := l.t.Close(); err == nil {
			err = terr
		}
		if cn := l.cur.Load(); cn != nil {
			// The transport has closed the socket; make sure the reader sees it.
			cn.nc.Close()
		}
	}
	c.readers.Wait()
	if c.gss != nil {
		c.gss.renewals.Wait()
	}
	return err
}
