// Package xprt keeps one logical TCP connection to an NFS server alive: it
// dials from the local port a policy chooses (package policy), sets the
// socket options that detect a dead network path, and redials when the
// connection breaks.
//
// A Transport is what rpc.Client sends its calls over. It hands out one
// connection at a time, numbered by generation from 1; the RPC client
// reports a broken one with Fail, asks for the next with Conn, and re-sends
// its calls in flight itself. This package knows nothing of ONC RPC
// (RFC 5531) or NFS (RFC 8881, RFC 7530); it only moves bytes. It is
// Linux-only: it sets TCP_USER_TIMEOUT and the keepalive options through
// golang.org/x/sys/unix.
//
// The one call a newcomer needs:
//
//	t, err := xprt.New(xprt.Config{Addr: "10.0.0.5:2049"})
//	if err != nil { ... }
//	defer t.Close()
//	client := rpc.NewClient(t, rpc.Config{}) // or let nfs4 wire both
//
// A Transport's life is explained at [State]; the reconnect policies, and
// why NFSv3 and NFSv4.0 want the old port back, in package policy. With
// Config.TLS every connection, each reconnect included, is secured with
// RPC-over-TLS (RFC 9289) after the dial the policy chose: see TLSOptions.
//
// # Detecting a dead path
//
// Two questions are kept apart. Is the server too slow for this call? That
// is the RPC timeout (timeo × retrans), package rpc's, which reports it with
// Fail. Is the network path dead? That is this package's, and the answer can
// come fast, because a server that is merely slow still acknowledges every
// segment at the TCP level (its kernel does), while a dead path or host
// acknowledges nothing.
//
// The path watch asks the question while replies are awaited. The protocol
// layer above (package rpc) registers each connection with Watch, saying
// how to tell whether replies are awaited and how to send a probe, an RPC
// NULL call. One goroutine per connection wakes at the first write after
// an idle spell and then looks at the socket's TCP_INFO about once per
// suspect interval, until no reply is awaited; it costs nothing per call.
// It reads the time since the server was last heard from (its last data or
// acknowledgement) and the connection's retransmission timeout (RTO):
//
//   - After 2 RTOs of silence (at least 300ms, at most 3s) with replies
//     awaited, the path must prove itself. If all sent data is
//     acknowledged, a probe is sent; if data is unacknowledged, the
//     kernel's retransmissions are the probe already; if data waits unsent
//     with nothing in flight and the kernel's window probes go unanswered
//     (a request written after the path fell silent and dropped before it
//     left the host, by a local firewall for instance), those window
//     probes are (two in a row unanswered: the kernel spaces them out, so
//     one lost may be the last for seconds).
//   - If nothing at all is heard from the server within 3 RTOs of that (at
//     least 400ms, at most 5s), the connection is failed with ErrDeadPath
//     (policy.CauseProbeTimeout) and the policy decides the redial. The
//     calls in flight are re-sent on the next connection by package rpc.
//     "Heard from" is the kernel's count of segments received
//     (tcpi_segs_in), which does not depend on when it is read; the time
//     runs from a moment the probe was certainly out (after our probe's
//     write returned, or after the reading that saw the kernel's probes
//     unanswered) to a moment before the reading that finds nothing heard.
//     A watch that runs late on a loaded machine only gives the path more
//     time, never less.
//   - If the server's kernel acknowledges but its replies stay overdue, the
//     server is slow, not gone: the silence tolerated before the next probe
//     doubles, up to 5s, until data arrives. A slow server is never
//     mistaken for a dead path, and a stopped one costs a few NULL calls.
//   - While data waits for the server to open its receive window and the
//     server's kernel answers the kernel's zero-window probes (tcpi_probes
//     is back to 0), the host is alive; no probe is sent, and the
//     zero-window probes, bounded by TCP_USER_TIMEOUT, watch that state.
//
// On a path with Linux's minimum RTO of 200ms a dead path is noticed about
// 1s after the server was last heard from, whether the client was sending
// (an upload) or only waiting (a download, where no data of the client's is
// unacknowledged and TCP_USER_TIMEOUT could never fire); docs/lab.md has
// the measurements.
//
// The socket options are the backstop for connections nobody watches (no
// reply awaited, or a transport used without package rpc) and for a
// window closed by the server; with the defaults a dead path is declared:
//
//   - with data in flight after 15s: TCP_USER_TIMEOUT
//     (SocketOptions.UserTimeout) aborts the connection once sent data has
//     gone unacknowledged that long (the kernel clamps its retransmission
//     timer to the user timeout).
//   - when idle after 20s: after 15s without a segment from the server
//     (KeepAliveIdle) the first keepalive probe goes out; at the next
//     keepalive timer, 5s later (KeepAliveInterval), more than UserTimeout
//     has passed since the server was last heard from and a probe is
//     outstanding, so Linux aborts: 15s + 5s = 20s. When TCP_USER_TIMEOUT
//     is set, Linux uses it instead of KeepAliveCount; the count (3, giving
//     15s + 3 × 5s = 30s) decides only when UserTimeout is negative.
//
// A merely slow server causes no reconnect there either: it acknowledges
// requests and keepalive probes, and a server that stops reading answers
// zero-window probes, which (since Linux 5.11) do not count against
// TCP_USER_TIMEOUT. The Linux NFS client instead derives these options from
// its RPC timeout, and without a path watch detects a dead path only after
// 180s by default; KernelSocketOptions reproduces its options.
//
// # Spare connections
//
// When the path watch finds a connection suspect (replies overdue, the
// server silent: see above) the transport asks its policy for a spare
// connection (policy.CauseSuspect) and dials it at once, beside the
// probe. If the probe goes unanswered, the verdict is followed by the
// spare's use instead of a dial and a TLS handshake; if the path proves
// alive, the spare is closed unused. A server found slow (alive but
// silent) gets no further spare until it sends data, and none is dialed
// for 10s after one went unused, so a server with slow moments is not
// dialed at each of them.
//
// The spare does not replace the policy, which is consulted at the
// verdict as after any lost connection: it stands in for a leg of that
// dial to the spare's address that asks for the spare's port, or for any
// port but the lost connection's. So a Decision that asks for the old
// port with a fresh-port hedge (policy.Hedged) dials the old port first
// and takes the spare, instead of dialing, when the hedge is due; one that
// asks for a fresh port (NewReservedPort, Ephemeral) takes the spare at
// once; and one that keeps the port (SameReservedPort) gets a spare only
// when its address has moved (a name looked up again), which it then
// takes. A spare that no leg asks for is closed.
//
// A spare is not bound to anything until it is used (package rpc binds the
// connection it is handed), so a server that limits a session's
// connections sees only the spares that replace one: NFS-Ganesha 4.3
// remembers at most 16 address and port pairs per session, for good.
// Stats counts spares made and used.
package xprt
