package nfs4

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// Defaults of the Config fields left zero. The fields Dial passes on to
// package rpc (Timeo, Retrans, SoftTimeouts) and xprt (Policy, Socket,
// DialTimeout) take those packages' defaults (rpc.DefaultTimeo, ...,
// xprt.DefaultDialTimeout).
const (
	// DefaultRSize and DefaultWSize are Config.RSize and Config.WSize.
	DefaultRSize = 1 << 20
	DefaultWSize = 1 << 20
	// DefaultSlots is Config.Slots.
	DefaultSlots = 64
	// DefaultWindow is Config.Window.
	DefaultWindow = 8
	// DefaultMaxListing is Config.MaxListing: about 700,000 entries
	// with short names.
	DefaultMaxListing = 256 << 20
	// DefaultConnections is Config.Connections.
	DefaultConnections = 1
	// MaxConnections is the most Config.Connections accepts: NFS-Ganesha
	// 4.3 remembers at most 16 client address+port pairs per session and
	// never forgets one.
	MaxConnections = 16
	// DefaultBackOffInitial and DefaultBackOffMax bound the default
	// Config.BackOff: exponential from the first wait to at most the
	// second, until the call's context ends.
	DefaultBackOffInitial = 100 * time.Millisecond
	DefaultBackOffMax     = 2 * time.Second
)

// Config configures a Client. Its zero value works: AUTH_SYS as the
// calling process, the Hedged reconnect policy, hard calls, 1 MiB reads and
// writes, 64 slots. Every field left zero takes the default documented
// next to it.
type Config struct {
	// Auth signs every call. Default (nil): AUTH_SYS as the calling
	// process, rpc.NewAuthSys(rpc.ProcessCred()).
	Auth rpc.Auth

	// Policy, Socket and DialTimeout are the connection's, as in
	// [xprt.Config]; their defaults are xprt's (policy.Hedged,
	// [xprt.SocketOptions], xprt.DefaultDialTimeout). A policy value
	// belongs to one Client. Further connections (Connections) each get
	// a policy.Fresh copy of it; a Policy not made by package policy
	// leaves them the default.
	Policy      policy.Policy
	Socket      xprt.SocketOptions
	DialTimeout time.Duration

	// Addrs and Resolver are as in [xprt.Config]: more addresses of the
	// same server after Dial's addr, and the resolver of host names, which
	// are looked up again before every dial (default net.DefaultResolver).
	// Over NFSv4.1, a connection to an address not yet known to reach
	// the session's server is checked with EXCHANGE_ID (RFC 8881
	// §2.10.5) before the session is bound to it. Another server found
	// there is passed over while the session's server answers on another
	// connection; otherwise the Client moves its state to it, as after a
	// failover (Stats.Recovery.OtherServers counts these moves).
	Addrs    []string
	Resolver xprt.Resolver

	// TLS chooses RPC-over-TLS (RFC 9289) as in [xprt.TLSOptions]: Mode
	// xprt.TLSRequired (server authenticated by Config.RootCAs and
	// ServerName, default the host of the address) or xprt.TLSMutual
	// (plus Config.Certificates). Prog and Vers are set by Dial. Default
	// (zero): plain TCP. Every reconnect probes and handshakes anew.
	TLS xprt.TLSOptions

	// Timeo, Retrans, Soft and SoftTimeouts are the RPC timeout and the
	// choice between hard and soft calls, as in [rpc.Config]; their
	// defaults are rpc's (rpc.DefaultTimeo, rpc.DefaultRetrans, hard,
	// rpc.DefaultSoftTimeouts). A soft call's error matches rpc.ErrTimeout
	// and os.ErrDeadlineExceeded.
	Timeo        time.Duration
	Retrans      int
	Soft         bool
	SoftTimeouts int

	// RSize and WSize are the largest READ and WRITE payloads asked for.
	// They shrink to what the session and the server's maxread/maxwrite
	// allow. Defaults: 1 MiB (DefaultRSize, DefaultWSize).
	RSize, WSize int

	// Connections is how many TCP connections the session uses at all
	// times, like the Linux client's nconnect: each call goes on the one
	// with the fewest calls in flight, each is bound to the session with
	// BIND_CONN_TO_SESSION before calls go on it (after every reconnect
	// too), and when one dies its calls in flight are re-sent on another
	// with their slot and sequence id, which the session's reply cache
	// answers exactly once. The slots (Slots) are the session's, shared by
	// all. Default: 1 (DefaultConnections). More than 16 (MaxConnections)
	// fails Dial: NFS-Ganesha 4.3 remembers at most 16 address+port pairs
	// per session and never forgets one. Over NFSv4.0, which has no
	// sessions to bind connections to, the Client uses one connection
	// whatever Connections says. docs/recovery.md ("Session trunking")
	// says what this needs of the server.
	Connections int

	// Slots is the number of session slots asked for, which bounds the
	// calls in flight. The server may grant fewer. Default: 64
	// (DefaultSlots).
	Slots int

	// Window is how many READ or WRITE requests File.ReadFrom and
	// File.WriteTo keep in flight. Default: 8 (DefaultWindow).
	Window int

	// MaxListing bounds the memory one directory listing held whole
	// (Client.ReadDir, File.ReadDir(-1)) may take, counting each entry's
	// name, owner and group strings and its fixed size: a larger listing
	// fails with ErrListingTooLarge, so that a server whose READDIR never
	// ends cannot make the client grow without bound. File.ReadDir(n) with
	// n > 0 holds one page at a time and is not bounded by it. Default:
	// 256 MiB (DefaultMaxListing).
	MaxListing int

	// FileSync makes every WRITE FILE_SYNC instead of UNSTABLE followed by
	// COMMIT: slower, but each write is on stable storage when it returns.
	FileSync bool

	// OwnerID identifies this client to the server (EXCHANGE_ID's
	// co_ownerid). Give it a value that stays the same across restarts of
	// the process so the server recognises a restarted client and releases
	// its old state at once. Default: "gonfs:" + host name + ":" + a
	// random string chosen per Client.
	OwnerID string

	// BackOff returns the backoff for a call that the server asks to
	// retry later (NFS4ERR_DELAY, and NFS4ERR_GRACE while a restarted
	// server waits for clients to reclaim); it is called once per such
	// call and Reset first. A BackOff that returns backoff.Stop makes the
	// call fail with the server's error. Default (nil, or a nil result):
	// exponential from 100ms to at most 2s between tries
	// (DefaultBackOffInitial, DefaultBackOffMax), until the call's
	// context ends.
	BackOff func() backoff.BackOff

	// Logger receives connection, session and recovery events. Default
	// (nil): no output.
	Logger *slog.Logger

	// ACRegMin, ACRegMax, ACDirMin and ACDirMax bound how long the
	// attributes of a file (Reg) and of a directory (Dir), and the file a
	// path resolves to, are used from the metadata cache before they are
	// fetched again, as the Linux client's mount options of the same names
	// do. A file's lifetime starts at the minimum, doubles each time a
	// fetch after a whole lifetime finds the file unchanged, up to the
	// maximum, and falls back to the minimum when a fetch finds it changed.
	// So another client's change to a file is seen at the latest ACRegMax
	// (ACDirMax for a directory) after it was made, and much sooner for
	// files that change often. Open always fetches the file's attributes
	// (close-to-open consistency), and this client's own changes are seen
	// at once. The full rules: docs/consistency.md. Defaults: 3s, 60s,
	// 30s, 60s (DefaultACRegMin, DefaultACRegMax, DefaultACDirMin,
	// DefaultACDirMax); a maximum below its minimum is the minimum.
	ACRegMin, ACRegMax, ACDirMin, ACDirMax time.Duration

	// NoAC turns the metadata cache off, as the Linux mount option noac
	// does for attributes: every Stat, path lookup and File.Stat asks the
	// server, and every path is walked from the root.
	NoAC bool

	// CacheEntries bounds the metadata cache: at most this many paths and
	// this many files' attributes are kept. Default: 4096
	// (DefaultCacheEntries).
	CacheEntries int

	// Version is the NFSv4 minor version to speak. Default (VersionAny):
	// NFSv4.2, or NFSv4.1 if the server refuses 4.2 with
	// NFS4ERR_MINOR_VERS_MISMATCH, or NFSv4.0 if it refuses 4.1 too. A
	// server that refuses every version tried fails Dial with a
	// *VersionError. What 4.0 gives and does not, and what 4.2 adds, is
	// in the package documentation.
	Version Version
}

// withDefaults returns cfg with the zero fields that this package
// defaults set to their defaults.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case cfg.Connections > MaxConnections:
		return cfg, fmt.Errorf("nfs4: Config.Connections is %d, more than %d (MaxConnections): "+
			"NFS-Ganesha 4.3 remembers at most 16 address+port pairs per session and never forgets one",
			cfg.Connections, MaxConnections)
	case cfg.Connections <= 0:
		cfg.Connections = DefaultConnections
	}
	if cfg.Auth == nil {
		a, err := rpc.NewAuthSys(rpc.ProcessCred())
		if err != nil {
			return cfg, err
		}
		cfg.Auth = a
	}
	if cfg.RSize <= 0 {
		cfg.RSize = DefaultRSize
	}
	if cfg.WSize <= 0 {
		cfg.WSize = DefaultWSize
	}
	if cfg.Slots <= 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxListing <= 0 {
		cfg.MaxListing = DefaultMaxListing
	}
	if cfg.ACRegMin <= 0 {
		cfg.ACRegMin = DefaultACRegMin
	}
	if cfg.ACRegMax <= 0 {
		cfg.ACRegMax = DefaultACRegMax
	}
	if cfg.ACDirMin <= 0 {
		cfg.ACDirMin = DefaultACDirMin
	}
	if cfg.ACDirMax <= 0 {
		cfg.ACDirMax = DefaultACDirMax
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.OwnerID == "" {
		host, _ := os.Hostname()
		cfg.OwnerID = "gonfs:" + host + ":" + randomID(8)
	}
	if cfg.BackOff == nil {
		cfg.BackOff = defaultBackOff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// defaultBackOff is the default of Config.BackOff.
func defaultBackOff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(DefaultBackOffInitial),
		backoff.WithMaxInterval(DefaultBackOffMax),
		backoff.WithMaxElapsedTime(0))
}

// Client is an NFSv4 client: one session (NFSv4.1; a client ID alone in
// NFSv4.0) with one server over one TCP connection, or Config.Connections
// of them, each redialed according to Config.Policy. It is safe for
// concurrent use by many goroutines; calls from them are pipelined on the
// connections up to the number of session slots (Config.Slots in NFSv4.0).
//
// Paths are absolute paths in the server's NFSv4 namespace (its pseudo
// file system), such as "/export/dir/file"; a relative path is taken from
// the root.
type Client struct {
	rpc  *rpc.Client
	tr   *xprt.Transport   // the first connection's
	trs  []*xprt.Transport // every connection's, tr first; set by Dial
	log  *slog.Logger
	cfg  Config
	auth rpc.Auth
	// cache holds handles and attributes of looked-up paths; nil with
	// Config.NoAC (cache.go).
	cache *attrCache

	// st is the session calls use; recovery replaces it (recover.go).
	st atomic.Pointer[sessState]
	// rec is the recovery under way, if any; set and cleared under recMu.
	rec   atomic.Pointer[recovery]
	recMu sync.Mutex
	// Set by establish, then used by recovery alone (serialized by it).
	ownerID   []byte                 // EXCHANGE_ID's co_ownerid
	verf      verifier               // EXCHANGE_ID's co_verifier: one per Client
	csSeq     uint32                 // the client ID's next CREATE_SESSION sequence id
	history   map[uint64][]sessionID // sessions created per client ID, for Close
	lastEpoch uint64                 // the latest client ID epoch handed out

	// srv is the server the client ID is on and the addresses known to
	// reach it (serverowner.go); it has a lock of its own.
	srv server

	// files are the open Files with open state, for reclaim: one view of
	// each (File.WithContext makes others).
	filesMu sync.Mutex
	files   map[*fileCore]*File
	checkOn atomic.Bool // a checkStates runs or waits out checkStatesEvery
	rstats  recoveryCounters

	// Set by Dial, then read-only.
	v40       bool   // NFSv4.0, without a session (v40.go)
	minor     uint32 // the session's minor version, 1 or 2; unused with v40
	owner     []byte // prefix of the open owners (one per File)
	rsize     int
	wsize     int
	lease     time.Duration
	rootFH    []byte
	supported AttrMask

	lastRenew atomic.Int64 // unix nanos of the last SEQUENCE that succeeded
	flags     atomic.Uint32
	closing   chan struct{}
	bgCtx     context.Context // for background calls; cancelled by Close
	bgCancel  context.CancelFunc
	bg        opGroup    // renew, resync, recovery and File release goroutines
	bgMu      sync.Mutex // guards stopped and bg.Add
	stopped   bool       // Close began: no more background goroutines
	closeOnce sync.Once
}

// Dial connects to the NFSv4 server at addr ("host:port"; port 2049 if
// omitted), establishes a client ID and (NFSv4.1) a session, and returns a
// Client. Config.Version chooses the minor version.
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = addr + ":2049"
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger, auth: cfg.Auth, closing: make(chan struct{}),
		files: make(map[*fileCore]*File), history: make(map[uint64][]sessionID)}
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	c.rsize, c.wsize = cfg.RSize, cfg.WSize
	c.cache = newAttrCache(cfg)
	tlsOpts := cfg.TLS
	tlsOpts.Prog, tlsOpts.Vers = nfsProgram, nfsVersion
	// The i-th connection's first dial goes to the i-th address, when the
	// server has several: the connections spread over them.
	newTransport := func(p policy.Policy, i int) (*xprt.Transport, error) {
		return xprt.New(xprt.Config{
			Addr:        addr,
			Addrs:       cfg.Addrs,
			Spread:      i,
			Resolver:    cfg.Resolver,
			Policy:      p,
			Socket:      cfg.Socket,
			DialTimeout: cfg.DialTimeout,
			Logger:      c.log,
			TLS:         tlsOpts,
		})
	}
	tr, err := newTransport(cfg.Policy, 0)
	if err != nil {
		return nil, err
	}
	c.tr = tr
	c.trs = []*xprt.Transport{tr}
	c.rpc = rpc.NewClient(tr, rpc.Config{
		Prog: nfsProgram, Vers: nfsVersion, Auth: c.auth,
		Timeo: cfg.Timeo, Retrans: cfg.Retrans, Soft: cfg.Soft, SoftTimeouts: cfg.SoftTimeouts,
		MaxRecord: max(c.rsize, c.wsize) + 64<<10,
		Logger:    c.log,
		Bind:      c.bindNew,
	})
	err = c.establish(ctx)
	if err == nil && !c.v40 {
		// The further connections come once the session exists, so that
		// each is bound to it; they connect at the next call.
		for i := 1; i < cfg.Connections && err == nil; i++ {
			var t *xprt.Transport
			if t, err = newTransport(policy.Fresh(cfg.Policy), i); err == nil {
				if err = c.rpc.AddTransport(t); err == nil {
					c.trs = append(c.trs, t)
				}
			}
		}
	}
	if err != nil {
		c.stop()
		c.rpc.Close()
		c.bg.wait(context.Background()) // every call fails now
		return nil, fmt.Errorf("nfs4: dial %s: %w", addr, err)
	}
	c.spawn(c.renew)
	return c, nil
}

// DefaultCloseTimeout bounds how long Client.Close waits for the server.
const DefaultCloseTimeout = 5 * time.Second

// Close is CloseContext with a context that ends after
// DefaultCloseTimeout.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	return c.CloseContext(ctx)
}

// CloseContext ends the session and the client ID (DESTROY_SESSION,
// DESTROY_CLIENTID), giving the server until ctx ends to answer, then
// closes the connection. Calls under way fail with rpc.ErrClosed, as do
// calls after it, and every goroutine of the Client has ended when it
// returns. Files still open are not closed on the server; their state is
// released with the client ID. If ctx ends first (a silent server), the
// error matches ctx's and the server lets the client ID expire with its
// lease. CloseContext is safe to call more than once; only the first call
// does anything.
func (c *Client) CloseContext(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.stop()
		// The background goroutines end as their calls do. One may wait
		// for a caller's call (a File's reopen), which only the closing
		// connection ends: if ctx ends first, they are waited for after.
		if err = c.bg.wait(ctx); err == nil {
			err = c.destroy(ctx)
		}
		if cerr := c.rpc.Close(); err == nil {
			err = cerr
		}
		c.bg.wait(context.Background()) // every call fails now
	})
	return err
}

// stop tells the background goroutines to end, and that no more may start.
func (c *Client) stop() {
	c.bgMu.Lock()
	c.stopped = true
	c.bgMu.Unlock()
	close(c.closing)
	c.bgCancel()
}

// spawn runs f on a goroutine of its own that Close waits for, unless the
// Client is closing; it reports whether it did.
func (c *Client) spawn(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.stopped {
		return false
	}
	c.bg.add()
	go func() {
		defer c.bg.done()
		f()
	}()
	return true
}
