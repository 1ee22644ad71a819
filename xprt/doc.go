// Package xprt keeps one logical TCP connection to an NFS server alive: it
// dials from the local port a policy chooses, sets the socket options that
// detect a dead network path, and redials when the connection breaks.
//
// A Transport is what rpc.Client sends its calls over. It hands out one
// connection at a time, numbered by generation from 1. The RPC client
// reports a broken connection with Fail(gen, cause) and asks for the next
// one with Conn; calls in flight belong to the RPC client and are re-sent
// on the new connection. This package knows nothing of RPC (RFC 5531) or
// NFS (RFC 8881, RFC 7530); it only moves bytes.
//
// # The one call a newcomer needs
//
//	t, err := xprt.New(xprt.Config{Addr: "10.0.0.5:2049"})
//	if err != nil { ... }
//	defer t.Close()
//	client := rpc.NewClient(t, rpc.Config{}) // or let nfs4 wire both
//
// New does not dial; the first Conn does. The zero Config uses
// policy.Hedged: reconnect from the old reserved port and, if that has not
// connected within 300ms, race a fresh one, so that a NAT or load balancer
// holding stale state for the old 4-tuple costs 300ms, not minutes.
//
// # States
//
//	Idle ──Conn──▶ Connecting ──connected──▶ Ready ──Fail──▶ Idle
//	                │      ▲
//	    dial failed │      │ wait over
//	                ▼      │
//	          TransientFailure ──policy gives up──▶ stays; Conn returns the error
//
//	any state ──Close──▶ Shutdown
//
// A supervisor goroutine runs only while a connection is being made. Before
// each dial it asks the policy (policy.Policy) for the local port, how long
// to wait and whether to hedge; it never asks per call. A dial that fails
// only because the local port is taken (EADDRINUSE, or EADDRNOTAVAIL for a
// 4-tuple still in use) is retried at once with the port the policy picks
// next. When the policy gives up, the transport fails for good: Conn
// returns the *DialError from then on, and the owner may Close it and make
// a new one.
//
// Closing a connection sends a RST (SO_LINGER 0) rather than a FIN, so its
// reserved port does not sit in TIME_WAIT and can be dialed from again at
// once.
//
// # Detecting a dead path
//
// A slow server still acknowledges every TCP segment; silence at the TCP
// level means the path or the host is gone. The default SocketOptions use
// that to notice a dead path quickly, and leave "this call is too slow" to
// the RPC timeout in package rpc:
//
//   - data in flight: TCP_USER_TIMEOUT 15s aborts the connection once sent
//     data has gone unacknowledged for 15s.
//   - idle: the first keepalive probe leaves after 15s of silence
//     (TCP_KEEPIDLE); at the next probe time, 5s later (TCP_KEEPINTVL), the
//     server has been silent for longer than the 15s user timeout with a
//     probe outstanding, so Linux aborts: 15s + 5s = 20s.
//
// The connection's next read then fails with ETIMEDOUT, which Classify
// reports as policy.CauseDeadPeer. The Linux NFS client instead takes 180s
// by default (KernelSocketOptions(60s, 2) reproduces it).
//
// This package is Linux-only: it sets TCP_USER_TIMEOUT and the keepalive
// options through golang.org/x/sys/unix.
package xprt
