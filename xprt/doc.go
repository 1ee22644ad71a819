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
// With Config.TLS every connection, each reconnect included, is secured with
// RPC-over-TLS (RFC 9289) after the dial the policy chose: see TLSOptions.
//
// How soon a dead path is noticed, and why that is kept apart from the RPC
// timeout, is explained at [SocketOptions]; a Transport's life at [State];
// the reconnect policies, and why NFSv3 and NFSv4.0 want the old port
// back, in package policy.
package xprt
