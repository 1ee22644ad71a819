package xprt

import (
	"log/slog"
	"math"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/policy"
)

// Defaults of the Config and SocketOptions fields left zero.
const (
	// DefaultDialTimeout bounds one connect attempt (Config.DialTimeout).
	// Two seconds let the kernel retransmit a lost SYN once (after 1s)
	// and leave the policy to start the next dial, so that a server whose
	// host or path was down is reached about a second after it is back,
	// not at the kernel's next retransmission (3s, 7s, 15s ... in).
	DefaultDialTimeout = 2 * time.Second
	// DefaultPortHistory is how many recent local ports Stats reports
	// (Config.PortHistory).
	DefaultPortHistory = 16

	// DefaultKeepAliveIdle is SocketOptions.KeepAliveIdle (TCP_KEEPIDLE).
	DefaultKeepAliveIdle = 15 * time.Second
	// DefaultKeepAliveInterval is SocketOptions.KeepAliveInterval
	// (TCP_KEEPINTVL).
	DefaultKeepAliveInterval = 5 * time.Second
	// DefaultKeepAliveCount is SocketOptions.KeepAliveCount (TCP_KEEPCNT).
	DefaultKeepAliveCount = 3
	// DefaultUserTimeout is SocketOptions.UserTimeout (TCP_USER_TIMEOUT).
	DefaultUserTimeout = 15 * time.Second
	// DefaultNotSentLowat is SocketOptions.NotSentLowat
	// (TCP_NOTSENT_LOWAT).
	DefaultNotSentLowat = 256 << 10
)

// Linux's upper bounds for the keepalive options (MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); larger values fail with EINVAL, so
// they are clamped instead.
const (
	maxKeepAliveSeconds = 32767
	maxKeepAliveCount   = 127
)

// Config configures a Transport. The zero value, plus Addr, works: every
// other field left zero takes the default documented next to it.
type Config struct {
	// Addr is the server as "host:port", for example "10.0.0.5:2049" or
	// "nfs.example.com:2049". Required: New fails if it is empty. A host
	// name is looked up again before every dial attempt (with Resolver),
	// so a connection follows a name whose addresses move (a floating IP,
	// a cloud file system's mount target); a name with several addresses
	// offers all of them to the policy.
	Addr string

	// Addrs are more addresses of the same server, in the form of Addr,
	// offered to the policy after Addr's. Each attempt dials one address
	// (policy.Decision.Addr; by default policy.DefaultAddr: the address
	// of the last connection first, then each of the others in turn).
	// The transport does not check which server a connection reaches;
	// package nfs4 does, before it binds its session to a connection to
	// an address it has not seen reach its server (rpc.Config.Bind is
	// given the remote address).
	Addrs []string

	// Spread rotates the addresses offered to the policy by this many
	// places, so that the first dials of several transports to one
	// server (package nfs4 gives the i-th connection of a session Spread
	// i) go to different addresses when it has several. 0: in the order
	// of Addr and Addrs.
	Spread int

	// Resolver looks up host names in Addr and Addrs. Default (nil):
	// net.DefaultResolver. A lookup that fails keeps the name's previous
	// addresses.
	Resolver Resolver

	// Policy chooses the local port of each dial and how long to wait
	// before it. It is consulted only when dialing, one dial at a time,
	// so it need not be safe for concurrent use, but it must belong to
	// this transport alone.
	// Default (nil): policy.Hedged(policy.Options{}), which redials from
	// the old reserved port and races a fresh one after a short delay.
	Policy policy.Policy

	// Socket sets the TCP options of every connection; see SocketOptions
	// for its defaults.
	Socket SocketOptions

	// DialTimeout bounds one connect attempt (each leg of a hedged dial
	// separately). Default: 2s (DefaultDialTimeout). It must exceed the
	// path's round trip: on a path slower than about a second, raise it.
	// Negative: no bound other than the kernel's SYN retries (about two
	// minutes on Linux).
	DialTimeout time.Duration

	// Logger receives connects and disconnects (Info), each dial attempt
	// (Debug), and failed attempts and giving up (Warn). Default (nil):
	// no output.
	Logger *slog.Logger

	// PortHistory is how many local ports of recent connections
	// Stats.LastPorts holds. Default: 16 (DefaultPortHistory). Negative:
	// none.
	PortHistory int

	// TLS chooses RPC-over-TLS (RFC 9289) for every connection; see
	// TLSOptions. Default (zero): plain TCP.
	TLS TLSOptions
}

// SocketOptions are the TCP options set on every connection, before it
// connects, through setsockopt. Go's own keepalive is switched off so that
// it cannot override them. The zero value takes the defaults below. How
// they and the path watch detect a dead path, and why a slow server is not
// taken for one, is explained in the package documentation ("Detecting a
// dead path").
type SocketOptions struct {
	// Nagle enables Nagle's algorithm. Default (false): TCP_NODELAY is set,
	// so each RPC record leaves at once.
	Nagle bool

	// KeepAliveIdle is how long the connection must be silent before the
	// first keepalive probe (TCP_KEEPIDLE), rounded up to whole seconds.
	// Default: 15s (DefaultKeepAliveIdle). Negative: SO_KEEPALIVE off, and
	// the other keepalive fields are ignored.
	KeepAliveIdle time.Duration

	// KeepAliveInterval is the time between keepalive probes
	// (TCP_KEEPINTVL), rounded up to whole seconds. Default: 5s
	// (DefaultKeepAliveInterval).
	KeepAliveInterval time.Duration

	// KeepAliveCount is how many unanswered probes declare the peer dead
	// (TCP_KEEPCNT) when UserTimeout is negative; otherwise UserTimeout
	// decides. Default: 3 (DefaultKeepAliveCount).
	KeepAliveCount int

	// UserTimeout is how long sent data may stay unacknowledged, and how
	// long an idle connection with a probe outstanding may stay silent,
	// before the kernel aborts the connection (TCP_USER_TIMEOUT, set in
	// milliseconds). Default: 15s (DefaultUserTimeout). Negative: the
	// option is left alone and the kernel's default applies (about 15
	// minutes of retransmissions, net.ipv4.tcp_retries2).
	UserTimeout time.Duration

	// NotSentLowat bounds, in bytes, the data the kernel holds for the
	// connection that it has not yet sent (TCP_NOTSENT_LOWAT); a writer
	// waits while more is queued. Without it the kernel queues up to its
	// send buffer's size (4 MiB by default, net.ipv4.tcp_wmem), and a
	// small call written behind a WRITE's data waits for all of it: a
	// third of a second on a 100 Mbit/s link. Default: 256 KiB
	// (DefaultNotSentLowat), which costs loopback throughput nothing
	// measurable. Negative: the option is left alone (no bound).
	NotSentLowat int
}

// KernelSocketOptions returns the socket options the Linux NFS client
// derives from its timeo and retrans mount options: keepalive idle and
// interval both timeo, count retrans+1, TCP_USER_TIMEOUT timeo × (retrans+1).
// With the defaults, timeo 0 → 60s and retrans 0 → 2, a dead path is
// declared after 180s whether or not data is in flight.
func KernelSocketOptions(timeo time.Duration, retrans int) SocketOptions {
	if timeo <= 0 {
		timeo = 60 * time.Second
	}
	if retrans <= 0 {
		retrans = 2
	}
	return SocketOptions{
		KeepAliveIdle:     timeo,
		KeepAliveInterval: timeo,
		KeepAliveCount:    retrans + 1,
		UserTimeout:       timeo * time.Duration(retrans+1),
	}
}

// withDefaults returns o with the zero fields set to their defaults.
func (o SocketOptions) withDefaults() SocketOptions {
	if o.KeepAliveIdle == 0 {
		o.KeepAliveIdle = DefaultKeepAliveIdle
	}
	if o.KeepAliveInterval <= 0 {
		o.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if o.KeepAliveCount <= 0 {
		o.KeepAliveCount = DefaultKeepAliveCount
	}
	if o.UserTimeout == 0 {
		o.UserTimeout = DefaultUserTimeout
	}
	if o.NotSentLowat == 0 {
		o.NotSentLowat = DefaultNotSentLowat
	}
	return o
}

// control returns a net.Dialer Control function that applies o, and
// SO_REUSEADDR when the dial binds a chosen port, before connect. o must
// already have its defaults.
func (o SocketOptions) control(bindsPort bool) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = o.apply(int(fd), bindsPort) }); err != nil {
			return err
		}
		return serr
	}
}

// apply sets the options on the socket fd.
func (o SocketOptions) apply(fd int, bindsPort bool) error {
	if bindsPort {
		// A port we closed moments ago (abortively, see conn.abort) may
		// still have a socket in some closing state; SO_REUSEADDR lets us
		// bind it again. The kernel still refuses a 4-tuple in use
		// (EADDRNOTAVAIL at connect) and a port someone listens on
		// (EADDRINUSE at bind).
		if err := setInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, "SO_REUSEADDR"); err != nil {
			return err
		}
	}
	// Go sets TCP_NODELAY itself once connected; Nagle is restored after
	// connect (see dialPort). Setting it here too keeps the SYN-time state
	// consistent with what the caller asked for.
	if err := setInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(!o.Nagle), "TCP_NODELAY"); err != nil {
		return err
	}
	if o.KeepAliveIdle < 0 {
		if err := setInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0, "SO_KEEPALIVE"); err != nil {
			return err
		}
	} else {
		opts := [...]struct {
			level, opt, v int
			name          string
		}{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, seconds(o.KeepAliveIdle), "TCP_KEEPIDLE"},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, seconds(o.KeepAliveInterval), "TCP_KEEPINTVL"},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, min(o.KeepAliveCount, maxKeepAliveCount), "TCP_KEEPCNT"},
		}
		for _, s := range opts {
			if err := setInt(fd, s.level, s.opt, s.v, s.name); err != nil {
				return err
			}
		}
	}
	if o.UserTimeout >= 0 {
		ms := min(o.UserTimeout.Milliseconds(), math.MaxInt32)
		if err := setInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ms), "TCP_USER_TIMEOUT"); err != nil {
			return err
		}
	}
	if o.NotSentLowat > 0 {
		if err := setInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, min(o.NotSentLowat, math.MaxInt32), "TCP_NOTSENT_LOWAT"); err != nil {
			return err
		}
	}
	return nil
}

// setInt is setsockopt with an error that names the option.
func setInt(fd, level, opt, v int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
		return os.NewSyscallError("setsockopt "+name, err)
	}
	return nil
}

// seconds rounds d up to whole seconds within the kernel's keepalive range.
func seconds(d time.Duration) int {
	s := (d + time.Second - 1) / time.Second
	return int(min(max(s, 1), maxKeepAliveSeconds))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
