// Package nfs4 is an NFSv4.1 client: COMPOUND requests, sessions, state,
// and a file API on top of them.
//
// The protocol is NFSv4.1 (RFC 8881, XDR in RFC 5662), with NFSv4.0
// (RFC 7530) for background and the NFSv4.2 additions (RFC 7862) where
// noted. Errors from the server are Status values, which match the io/fs
// sentinels and syscall errnos:
//
//	if errors.Is(err, fs.ErrNotExist) { ... }
package nfs4
