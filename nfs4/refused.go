package nfs4

import (
	"errors"
	"fmt"
	"strings"
)

// Refusals that a bare status would leave a user guessing about: what
// happened, and what to change.

// PortRefusedError reports that the server refused a request sent from an
// unreserved source port: its export accepts only ports below 1024. A
// server that does (the Linux server's `secure` export option, its
// default) answers the file handle operations of a client on any other
// port with NFS4ERR_PERM, which alone reads "operation not permitted". Either
// export with `insecure` (Linux) or connect from a reserved port, which
// needs a reserved-port policy and root or CAP_NET_BIND_SERVICE. It
// matches ErrPerm and fs.ErrPermission with errors.Is.
type PortRefusedError struct {
	// Port is the source port the server refused.
	Port int
}

func (e *PortRefusedError) Error() string {
	return fmt.Sprintf("nfs4: NFS4ERR_PERM from source port %d: the export accepts only reserved ports (below 1024); "+
		"export it with \"insecure\", or connect from a reserved port (a reserved-port policy, as root or with CAP_NET_BIND_SERVICE)", e.Port)
}

func (e *PortRefusedError) Unwrap() error { return ErrPerm }

// reservedPortLimit is the first port that is not reserved.
const reservedPortLimit = 1024

// refusesPort reports whether err, the failure of a COMPOUND whose failed
// operation is op, is the refusal of a source port: NFS4ERR_PERM from an
// operation that needs no privilege beyond access to the export. (The
// Linux server refuses the port at the first operation that uses the file
// handle: after PUTROOTFH, its GETATTR.)
func refusesPort(op uint32, err error) bool {
	switch op {
	case opPutRootFH, opPutPubFH, opPutFH, opLookup, opLookupP, opGetFH, opGetattr, opAccess, opSecinfo, opSecinfoNoName:
		return errors.Is(err, ErrPerm)
	}
	return false
}

// portRefused returns err as a PortRefusedError if the connection the
// request went on has an unreserved source port, and err unchanged if not.
func (c *Client) portRefused(err error) error {
	port := c.tr.Stats().LocalPort
	if port < reservedPortLimit {
		return err
	}
	return &PortRefusedError{Port: port}
}

// VersionError reports a server that speaks none of the NFSv4 minor
// versions this client implements. It matches ErrMinorVersMismatch with
// errors.Is.
type VersionError struct {
	// Tried are the minor versions offered, in the order tried.
	Tried []uint32
}

func (e *VersionError) Error() string {
	vs := make([]string, len(e.Tried))
	for i, v := range e.Tried {
		vs[i] = fmt.Sprintf("4.%d", v)
	}
	return "nfs4: the server refused NFSv" + strings.Join(vs, ", NFSv") + " (NFS4ERR_MINOR_VERS_MISMATCH), every version this client speaks"
}

func (e *VersionError) Unwrap() error { return ErrMinorVersMismatch }
