// Package rpc implements the ONC RPC version 2 protocol of RFC 5531 over
// TCP, with its data in the External Data Representation of RFC 4506
// (package xdr).
//
// The package has these parts:
//
//   - Message headers. AppendCall encodes a CALL header and ParseReply
//     decodes a REPLY header, both without allocating; the procedure's
//     arguments and results are encoded and decoded by the caller on the
//     same buffer.
//
//   - Typed errors. A reply that is not SUCCESS becomes an *AcceptError or
//     a *DeniedError. Their status values (AcceptStat, RejectStat,
//     AuthStat) are errors themselves, as syscall.Errno is, so
//     errors.Is(err, rpc.ProgMismatch) and errors.Is(err, rpc.AuthTooWeak)
//     answer the common questions and errors.As recovers the details, such
//     as the version range a server supports. Undecodable messages wrap
//     ErrMalformed.
//
//   - Authentication. An Auth writes each call's credential and verifier
//     and checks each reply's verifier. AuthNone and AuthSys (from
//     NewAuthSys) are provided; the interface leaves room for RPCSEC_GSS.
//
//   - Record marking (RFC 5531 section 11), which frames messages on a
//     byte stream.
//
//   - Client, which pipelines calls on one connection, matches replies to
//     calls by XID, and re-sends calls in flight when its Transport
//     reconnects.
//
// A call header for the NFS NULL procedure, with AUTH_SYS credentials:
//
//	auth, err := rpc.NewAuthSys(rpc.SysCred{Machine: "client", UID: 1000, GID: 1000})
//	if err != nil { ... }
//	var e xdr.Encoder
//	rpc.AppendCall(&e, xid, 100003, 4, 0, auth)
//
// and the reply, read from the record that came back:
//
//	d := xdr.NewDecoder(record)
//	xid, err := rpc.ParseReply(d, auth)
//	if errors.Is(err, rpc.AuthTooWeak) { ... }
//	// on success d is positioned at the results
package rpc
