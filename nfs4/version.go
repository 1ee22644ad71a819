package nfs4

import (
	"fmt"
	"strings"
)

// Version chooses the NFSv4 minor version a Client speaks (Config.Version).
// The zero value negotiates.
type Version int

const (
	// VersionAny tries NFSv4.1 and falls back to NFSv4.0 if the server
	// answers NFS4ERR_MINOR_VERS_MISMATCH. The default.
	VersionAny Version = iota
	// Version40 speaks NFSv4.0 (RFC 7530) only.
	Version40
	// Version41 speaks NFSv4.1 (RFC 8881) only.
	Version41
)

func (v Version) String() string {
	switch v {
	case VersionAny:
		return "4"
	case Version40:
		return "4.0"
	case Version41:
		return "4.1"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// ParseVersion parses a version as users write it: "4" (or "") for
// VersionAny, "4.0" and "4.1" (also "4.1" spelled "41" or "v4.1").
func ParseVersion(s string) (Version, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "v") {
	case "", "4":
		return VersionAny, nil
	case "4.0", "40":
		return Version40, nil
	case "4.1", "41":
		return Version41, nil
	}
	return 0, fmt.Errorf("nfs4: unknown NFS version %q; want 4 (either minor version), 4.0 or 4.1", s)
}

// MinorVersion returns the NFSv4 minor version the Client speaks: 0 or 1.
func (c *Client) MinorVersion() int {
	if c.v40 {
		return 0
	}
	return minorVersion
}
