package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

// An nfs:// URL names a file on an NFS server, in the style of libnfs:
//
//	nfs://host[:port]/path[?key=value&...]
//
// The path is the file's path in the server's NFSv4 namespace (its pseudo
// file system, e.g. /export/dir/file), percent-decoded. The query holds
// per-server settings (see applySetting); flags override them.

// location is one command-line argument: a local path, or a path on an NFS
// server together with the settings used to talk to it.
type location struct {
	arg    string    // the argument as given, for messages
	remote *endpoint // nil for a local path
	path   string    // local path, or absolute path in the server's namespace
	dirSyn bool      // the argument ended in "/": it must be a directory
}

// endpoint is a server and the settings of the connection to it.
// Locations with equal endpoints share one nfs4.Client.
type endpoint struct {
	host     string // as written in the URL, for messages: "h", "h:2050", "[::1]:2050"
	addr     string // host:port to dial
	settings settings
}

// key identifies the connection an endpoint needs: the same server with
// the same settings.
func (e *endpoint) key() string { return e.addr + " " + e.settings.String() }

// url formats p on e as an nfs:// URL without the query, for messages.
func (e *endpoint) url(p string) string {
	u := url.URL{Scheme: "nfs", Host: e.host, Path: p}
	return u.String()
}

// name returns how messages refer to the location: a local path as given
// (quoted if it must be, see quoteName), or an nfs:// URL without its
// query, whose path is percent-encoded.
func (l location) name() string {
	if l.remote != nil {
		return l.remote.url(l.path)
	}
	if l.arg != "" {
		return quoteName(l.arg)
	}
	return quoteName(l.path)
}

// child returns the location of the entry name inside the directory l.
func (l location) child(name string) location {
	return location{remote: l.remote, path: path.Join(l.path, name)}
}

// settings are the per-server options a URL query or the flags can set.
type settings struct {
	Version string        // "4": 4.2, else 4.1, else 4.0; "4.0", "4.1" or "4.2": that version only
	Policy  string        // reconnect policy name; see policyNames
	UID     int           // AUTH_SYS uid; -1: this process's
	GID     int           // AUTH_SYS gid; -1: this process's
	RSize   int           // largest READ asked for; 0: the library's default (1 MiB)
	WSize   int           // largest WRITE asked for; 0: the library's default (1 MiB)
	Timeo   time.Duration // RPC timeout of one transmission; 0: the library's default (60 s)
	Retrans int           // timeouts of Timeo that make a major timeout; 0: the library's default (2)
	Soft    bool          // fail a call a major timeout after it started instead of retrying
	XprtSec string        // RPC-over-TLS: "none", "tls" or "mtls"; see xprtSecNames
	Sec     string        // security flavors allowed, in order of preference, ":"-separated: of "sys", "krb5", "krb5i", "krb5p"
}

// defaultSettings are the settings before any URL parameter or flag.
func defaultSettings() settings {
	return settings{Version: "4", Policy: "hedged", UID: -1, GID: -1, XprtSec: "none", Sec: "sys"}
}

// String gives the settings in a canonical form (the connection key).
func (s settings) String() string {
	return fmt.Sprintf("v%s %s uid=%d gid=%d r=%d w=%d timeo=%s retrans=%d soft=%t xprtsec=%s sec=%s",
		s.Version, s.Policy, s.UID, s.GID, s.RSize, s.WSize, s.Timeo, s.Retrans, s.Soft, s.XprtSec, s.Sec)
}

// policyNames are the values of the policy setting.
var policyNames = []string{"same-reserved", "new-reserved", "ephemeral", "hedged"}

// xprtSecNames are the values of the xprtsec setting, as libnfs and
// Linux's mount option spell them: plain TCP, RPC-over-TLS, and
// RPC-over-TLS with a client certificate.
var xprtSecNames = []string{"none", "tls", "mtls"}

// settingKeys are the URL query keys, in the order usage lists them.
var settingKeys = []string{"version", "vers", "policy", "uid", "gid", "rsize", "wsize", "timeo", "retrans", "soft", "hard", "xprtsec", "sec"}

// maxIOSize bounds rsize and wsize; servers grant far less.
const maxIOSize = 64 << 20

// applySetting sets one setting from its textual form, as in a URL query
// (soft and hard take an empty value there) or on the command line.
func applySetting(s *settings, key, val string) error {
	switch key {
	case "version", "vers", "nfs-version":
		v, err := nfs4.ParseVersion(val)
		if err != nil || val == "" {
			return fmt.Errorf("version %q not supported: this client speaks NFSv4.0, NFSv4.1 and NFSv4.2 (version=4 for any, 4.0, 4.1 or 4.2)", val)
		}
		s.Version = v.String()
	case "policy":
		if !slices.Contains(policyNames, val) {
			return fmt.Errorf("unknown policy %q (want %s)", val, strings.Join(policyNames, ", "))
		}
		s.Policy = val
	case "xprtsec":
		if !slices.Contains(xprtSecNames, val) {
			return fmt.Errorf("unknown xprtsec %q (want %s)", val, strings.Join(xprtSecNames, ", "))
		}
		s.XprtSec = val
	case "sec":
		flavors := strings.Split(val, ":")
		for i, f := range flavors {
			if !slices.Contains(secNames, f) || slices.Contains(flavors[:i], f) {
				return fmt.Errorf("sec %q is not a list of distinct flavors of %s, separated by colons", val, strings.Join(secNames, ", "))
			}
		}
		s.Sec = val
	case "uid", "gid":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fmt.Errorf("%s %q is not a number from 0 to 4294967295", key, val)
		}
		if key == "uid" {
			s.UID = int(n)
		} else {
			s.GID = int(n)
		}
	case "rsize", "wsize":
		n, err := parseSize(val)
		if err != nil || n < 4096 || n > maxIOSize {
			return fmt.Errorf("%s %q is not a size from 4k to 64m", key, val)
		}
		if key == "rsize" {
			s.RSize = int(n)
		} else {
			s.WSize = int(n)
		}
	case "timeo":
		d, err := parseTimeo(val)
		if err != nil {
			return err
		}
		s.Timeo = d
	case "retrans":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("retrans %q is not a number from 1 to 100", val)
		}
		s.Retrans = n
	case "soft", "hard":
		b := true
		if val != "" {
			var err error
			if b, err = strconv.ParseBool(val); err != nil {
				return fmt.Errorf("%s=%q: want no value, true or false", key, val)
			}
		}
		s.Soft = b == (key == "soft")
	default:
		return fmt.Errorf("unknown parameter %q (known: %s)", key, strings.Join(settingKeys, ", "))
	}
	return nil
}

// parseTimeo reads a timeout as a Go duration ("1.5s", "500ms") or, as
// mount(8) and libnfs write it, a whole number of tenths of a second.
func parseTimeo(val string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseUint(val, 10, 32); err == nil {
		d = time.Duration(n) * 100 * time.Millisecond
	} else if d, err = time.ParseDuration(val); err != nil {
		d = -1
	}
	if d < 100*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("timeo %q is not a duration from 100ms to 1h (or tenths of a second, as in mount(8))", val)
	}
	return d, nil
}

// parseSize reads a byte count with an optional binary suffix: k, m or g
// (KiB, MiB, GiB), in either case.
func parseSize(val string) (int64, error) {
	mult := int64(1)
	if n := len(val); n > 0 {
		switch val[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			val = val[:n-1]
		}
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}

// isURL reports whether arg is meant as a URL rather than a local path:
// it starts with a scheme followed by "://". A local path that looks like
// that can be written as ./path.
func isURL(arg string) bool {
	i := strings.Index(arg, "://")
	if i <= 0 {
		return false
	}
	for j, r := range arg[:i] {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case j > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// parseNFSURL parses an nfs:// URL into the server address, the path in
// the server's namespace, whether the path ended in "/", and the query's
// settings applied over base. Errors say what is wrong, without the URL.
func parseNFSURL(raw string, base settings) (host, addr, p string, dirSyn bool, s settings, err error) {
	s = base
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", "", false, s, fmt.Errorf("malformed URL: %v", err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "nfs"):
		return "", "", "", false, s, fmt.Errorf("unsupported scheme %q (want nfs://host[:port]/path)", u.Scheme)
	case u.Opaque != "":
		return "", "", "", false, s, errors.New("malformed URL: want nfs://host[:port]/path")
	case u.User != nil:
		return "", "", "", false, s, errors.New("user names are not supported in nfs:// URLs (use ?uid=N&gid=N)")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return "", "", "", false, s, errors.New("malformed URL: unexpected fragment (#)")
	case u.Hostname() == "":
		return "", "", "", false, s, errors.New("missing host (want nfs://host[:port]/path)")
	case !validHost(u.Hostname(), strings.HasPrefix(u.Host, "[")):
		return "", "", "", false, s, fmt.Errorf("invalid host %q", u.Hostname())
	}
	port := 2049
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return "", "", "", false, s, fmt.Errorf("invalid port %q", ps)
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", "", false, s, errors.New("empty port after ':'")
	}
	if strings.ContainsRune(u.Path, 0) {
		return "", "", "", false, s, errors.New("malformed URL: NUL byte in path")
	}
	p = u.Path
	if p == "" {
		p = "/"
	}
	dirSyn = strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	p = path.Clean(p)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", "", false, s, fmt.Errorf("malformed query: %v", err)
	}
	// Apply in the documented key order, so the result does not depend on
	// map order; a repeated key is ambiguous and refused.
	seen := 0
	for _, k := range settingKeys {
		vs, ok := q[k]
		if !ok {
			continue
		}
		seen++
		if len(vs) > 1 {
			return "", "", "", false, s, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
		if err := applySetting(&s, k, vs[0]); err != nil {
			return "", "", "", false, s, err
		}
	}
	if _, ok := q["soft"]; ok {
		if _, ok := q["hard"]; ok {
			return "", "", "", false, s, errors.New("both soft and hard given")
		}
	}
	if seen != len(q) {
		for k := range q {
			if !knownKey(k) {
				return "", "", "", false, s, fmt.Errorf("unknown parameter %q (known: %s)", k, strings.Join(settingKeys, ", "))
			}
		}
	}
	return u.Host, net.JoinHostPort(u.Hostname(), strconv.Itoa(port)), p, dirSyn, s, nil
}

// validHost reports whether h is an IPv4 address, an IPv6 address in
// brackets (with an optional zone), or a host name of letters, digits, '-',
// '_' and '.'.
func validHost(h string, bracketed bool) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Is4() != bracketed && validName(a.Zone())
	}
	return !bracketed && len(h) <= 253 && validName(h)
}

func validName(h string) bool {
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

func knownKey(k string) bool {
	for _, c := range settingKeys {
		if k == c {
			return true
		}
	}
	return false
}

// parseLocation turns a command-line argument into a location. For an
// nfs:// URL the settings are base with the URL's query applied, then
// override (the flags given on the command line).
func parseLocation(arg string, base settings, override func(*settings)) (location, error) {
	if arg == "" {
		return location{}, &argError{arg: `""`, msg: "empty path"}
	}
	if !isURL(arg) {
		return location{arg: arg, path: arg, dirSyn: strings.HasSuffix(arg, "/")}, nil
	}
	host, addr, p, dirSyn, s, err := parseNFSURL(arg, base)
	if err != nil {
		return location{}, &argError{arg: arg, msg: err.Error()}
	}
	if override != nil {
		override(&s)
	}
	return location{arg: arg, remote: &endpoint{host: host, addr: addr, settings: s}, path: p, dirSyn: dirSyn}, nil
}

// argError is a bad command line: the program exits with status 2.
type argError struct {
	arg string // the argument at fault, or "" for the command line as a whole
	msg string
}

func (e *argError) Error() string {
	if e.arg == "" {
		return e.msg
	}
	return quoteName(e.arg) + ": " + e.msg
}
