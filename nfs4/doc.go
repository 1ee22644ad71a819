// Package nfs4 is an NFSv4.2 (RFC 7862), NFSv4.1 (RFC 8881) and NFSv4.0
// (RFC 7530) client for Go programs that use NFS without a kernel mount.
//
//	c, err := nfs4.Dial(ctx, "nfs.example:2049", nfs4.Config{})
//	if err != nil { ... }
//	defer c.Close()
//	f, err := c.Create(ctx, "/export/hello.txt")
//	...
//	fsys := c.FS("/export") // an io/fs.FS
//
// A Client holds one session with one server over one TCP connection, or
// several (Config.Connections, each bound to the session). Calls from many
// goroutines are pipelined on them up to the number of session slots; each COMPOUND starts with SEQUENCE, whose (slot, sequence id) pair
// gives a request re-sent after a reconnect exactly-once semantics through
// the server's reply cache. The connection is redialed by package xprt from
// the local port that Config.Policy (package policy) chooses; RPC framing,
// XIDs and retransmission are package rpc's.
//
// # NFSv4.0
//
// Config.Version chooses the minor version; by default Dial tries 4.2, then
// 4.1, then 4.0, each when the server answers the one before with
// NFS4ERR_MINOR_VERS_MISMATCH.
// A 4.0 Client has the same API and recovery, without a session: a
// request re-sent after a reconnect keeps its XID, but whether the server
// recognises it as a retransmission depends on its duplicate-request
// cache, which also matches the client's source port, so a policy that
// reconnects from a new port can make a non-idempotent call run twice.
// The design is in v40.go.
//
// # NFSv4.2
//
// A 4.2 session is a 4.1 session that can also send 4.2's operations on a
// file's data, as File methods: Seek with SeekData and SeekHole (SEEK,
// lseek's SEEK_DATA and SEEK_HOLE), Allocate (ALLOCATE), PunchHole
// (DEALLOCATE), CopyRange (COPY, intra-server and synchronous; the
// asynchronous form needs a callback channel, which this client does not
// offer) and CloneRange (CLONE). Over 4.1 and 4.0 they fail with
// ErrNeedsV42 without asking the server; that error and a server's
// NFS4ERR_NOTSUPP both match errors.ErrUnsupported. A copy the server will
// not do matches ErrCopyRefused: copy the data through the client then.
// Against the Linux server (ext4) all but CLONE work; NFS-Ganesha 4.3's VFS
// backend has SEEK, ALLOCATE and DEALLOCATE but not COPY or CLONE. The
// design is in v42.go and copy.go.
//
// # Recovery
//
// A caller holding an open File sees a failure only as a pause. A lost
// session is replaced on the same client ID; a lost client ID (the server
// restarted, another server took over the address, the lease expired) is
// replaced by a new one, and every open File is reclaimed (CLAIM_PREVIOUS,
// in the server's grace period) or opened again by handle (CLAIM_FH)
// before any call runs on the new session. Data written UNSTABLE is kept
// until a COMMIT returns its write verifier, and written again otherwise.
// A File whose state cannot be re-established fails from then on with an
// error matching ErrStateLost. Client.Stats().Recovery counts every step;
// Config.Logger receives each as an event (see RecoveryStats).
//
// # Metadata cache
//
// File handles and attributes of looked-up paths are cached with the Linux
// client's rules (Config.ACRegMin and the fields after it): Open always asks
// the server, this Client's own changes are seen at once, and another
// client's are seen within ACRegMax (ACDirMax for directories). The rules
// are in cache.go, what a caller may see in docs/consistency.md;
// Config.NoAC turns the cache off.
//
// # Errors
//
// NFS status codes are the Status type, an error whose Is method maps to
// the io/fs sentinels (NFS4ERR_NOENT is fs.ErrNotExist, NFS4ERR_EXIST is
// fs.ErrExist, NFS4ERR_ACCESS and NFS4ERR_PERM are fs.ErrPermission) and to
// syscall errnos (errors.Is(err, syscall.ENOTEMPTY)). Path operations return
// *fs.PathError, two-path operations *os.LinkError, as package os does.
// Two refusals come with what to change: a *PortRefusedError when an
// export accepts only reserved source ports and the client used another,
// and a *VersionError when the server speaks no minor version this client
// does.
//
// # Specifications
//
// RFC 8881 (NFSv4.1), RFC 7530 (NFSv4.0), RFC 7862
// (NFSv4.2), RFC 5531 (ONC RPC) and RFC 4506 (XDR). The XDR of
// every request and reply is cross-checked in tests with an independently
// generated decoder (github.com/buildbarn/go-xdr, RFC 7863's XDR).
package nfs4
