// Package hostile runs a deliberately broken NFSv4.1 server on loopback,
// for tests of how the client survives servers that lie, loop or break the
// protocol.
//
// By default the server is well behaved, enough for a real nfs4.Client to
// dial (EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE, the root's
// attributes, SECINFO_NO_NAME), look up, GETATTR, OPEN, READ, READDIR,
// CLOSE and close its session, in a fixed tree: /file and /dir. Faults
// make it misbehave on command: one status forever for an operation, a
// READ that never reports the end of the file, a file size of its choosing,
// a READDIR whose cookie never advances, goes round in a circle or never
// ends, names and modes of its choosing, and, through Faults.Reply, any
// reply truncated, mutated, extended, sent twice, with a wrong XID, never
// sent, or cut off with the connection closed.
//
//	s := hostile.Start(t, hostile.Faults{ReadNoEOF: true})
//	c, err := nfs4.Dial(ctx, s.Addr(), nfs4.Config{})
//
// # Why it has its own XDR
//
// The server encodes and decodes everything itself, with encoding/binary,
// from the XDR of RFC 5531 and RFC 8881: it imports neither package rpc
// nor nfs4, nor rpc/xdr. A mistake shared by both ends of the socket would
// otherwise hide itself.
//
// # Lifetime
//
// Start registers Close as a cleanup of its testing.TB; Close closes every
// connection and waits for every goroutine the server started. A
// Faults.Reply hook runs on a connection's goroutine and must not block.
package hostile
