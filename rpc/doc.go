// Package rpc implements the ONC RPC version 2 protocol of RFC 5531 over
// TCP, with its data in the External Data Representation of RFC 4506
// (package xdr).
//
// The package has these parts:
//
//   - Client, which pipelines calls on one connection (NewClient) or
//     several (NewTrunk, AddTransport: each call on the least busy),
//     matches replies to calls by XID, and re-sends calls in flight when
//     their connection dies: on another ready connection, or when its
//     Transport reconnects (package xprt provides one).
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
//     NewAuthSys, for instance with ProcessCred, the calling process's
//     credential) are provided, and RPCSEC_GSS (NewGSSAuth, RFC 2203) with
//     a GSSMechanism such as the Kerberos V5 one of module
//     github.com/gonfs/nfs/krb5: a Client makes its security context with
//     the server, seals every call and checks every reply.
//
//   - Record marking (RFC 5531 section 11), which frames messages on a
//     byte stream.
//
// The one call a newcomer needs, the NFS NULL procedure with the process's
// AUTH_SYS credential:
//
//	auth, err := rpc.NewAuthSys(rpc.ProcessCred())
//	if err != nil { ... }
//	c := rpc.NewClient(transport, rpc.Config{Prog: 100003, Vers: 4, Auth: auth})
//	defer c.Close()
//	err = c.Call(ctx, 0, nil, nil)
//	if errors.Is(err, rpc.AuthTooWeak) { ... }
package rpc
