// Package rpctest runs scripted ONC RPC servers (RFC 5531) on real loopback
// TCP sockets, for the tests and benchmarks of the RPC client and the layers
// above it.
//
// A test starts a server with a Handler that decides, call by call, what the
// peer does: reply at once, keep the call and reply later (out of order, or on
// another connection), reply with an error status, write arbitrary bytes,
// close the connection with a FIN, reset it, or never answer.
//
//	s := rpctest.Start(t, func(c *rpctest.Conn, call *rpctest.Call) {
//		if call.Proc == 0 {
//			c.Reply(call, nil) // NULL procedure: empty results
//			return
//		}
//		c.Abort() // anything else: the connection is reset
//	})
//	// dial s.Addr(), make calls, then:
//	recs := s.WaitCalls(t, 2, 0)
//
// StartResponder starts a server for benchmarks instead, which answers every
// call with an empty success as cheaply as it can, so that the client, not
// the peer, dominates the profile.
//
// # Why this package does not use package rpc
//
// The server side of the wire protocol (record marking, call decoding, reply
// encoding) is written here a second time, from RFC 5531, using only package
// xdr and encoding/binary. Were it built on package rpc's own encoders, a
// mistake there (a field out of order, a wrong constant, a marker without its
// last-fragment bit) would be made identically on both ends of the socket and
// the client's tests would pass. Keeping the two implementations independent
// turns such a mistake into a failing test.
//
// # Lifetime
//
// Start registers a cleanup on its testing.TB that closes the listener and
// every connection and waits for every goroutine the server started. A
// Handler must therefore return once its connection is closed; one that
// blocks forever blocks the cleanup.
//
// # Protocol errors
//
// The server is a test peer, not a hardened server, but it never panics on
// what a client sends. A record it cannot frame or decode as a call closes
// that connection and is reported by Server.Err, so that a test can assert
// the client under test never sent one.
package rpctest
