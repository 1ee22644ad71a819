package nfs4

import (
	"fmt"
	"strings"
)

// Version chooses the NFSv4 minor version a Client speaks (Config.Version).
// The zero value negotiates.
type Version int

const (
	// VersionAny tries NFSv4.2, then NFSv4.1, then NFSv4.0, each when the
	// server answers the one before with NFS4ERR_MINOR_VERS_MISMATCH. The
	// default. A 4.2 Client is a 4.1 Client that can also send 4.2's
	// operations (File.Seek with SeekData and SeekHole, Allocate,
	// PunchHole, CopyRange, CloneRange).
	VersionAny Version = iota
	// Version40 speaks NFSv4.0 (RFC 7530) only.
	Version40
	// Version41 speaks NFSv4.1 (RFC 8881) only.
	Version41
	// Version42 speaks NFSv4.2 (RFC 7862) only.
	Version42
)

func (v Version) String() string {
	switch v {
	case VersionAny:
		return "4"
	case Version40:
		return "4.0"
	case Version41:
		return "4.1"
	case Version42:
		return "4.2"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// ParseVersion parses a version as users write it: "4" (or "") for
// VersionAny, "4.0", "4.1" and "4.2" (also spelled "41" or "v4.1").
func ParseVersion(s string) (Version, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "v") {
	case "", "4":
		return VersionAny, nil
	case "4.0", "40":
		return Version40, nil
	case "4.1", "41":
		return Version41, nil
	case "4.2", "42":
		return Version42, nil
	}
	return 0, fmt.Errorf("nfs4: unknown NFS version %q; want 4 (any minor version), 4.0, 4.1 or 4.2", s)
}

// sessionMinors are the session minor versions (4.1 and up) that v
// offers, in the order tried.
func (v Version) sessionMinors() []uint32 {
	switch v {
	case Version41:
		return []uint32{1}
	case Version42:
		return []uint32{2}
	case Version40:
		return nil
	}
	return []uint32{2, 1}
}

// MinorVersion returns the NFSv4 minor version the Client speaks: 0, 1
// or 2.
func (c *Client) MinorVersion() int {
	if c.v40 {
		return 0
	}
	return int(c.minor)
}
