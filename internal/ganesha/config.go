package ganesha

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config describes one Ganesha server. The zero value serves a fresh
// temporary directory over NFSv4 on a free port of 127.0.0.1, without a
// grace period.
type Config struct {
	// Port is the NFS TCP port. 0 picks a port that is free on
	// 127.0.0.1 (on the host, also when NetNS is set).
	Port int

	// BindAddr is the IP address the server listens on. Default
	// "127.0.0.1".
	BindAddr string

	// ExportDir is the directory exported; it must exist. "" means a
	// fresh t.TempDir(). Ganesha's VFS FSAL needs a file system with
	// file handles (name_to_handle_at(2)); ext4, xfs and btrfs have
	// them.
	ExportDir string

	// Pseudo is the export's path in the NFSv4 pseudo file system, and
	// its NFSv3 mount path. Default "/export".
	Pseudo string

	// StateDir holds the generated ganesha.conf, the log, the pid file,
	// stdout/stderr, the NFSv4 recovery root and the Kerberos
	// credential cache. "" means a fresh t.TempDir(). Give two servers
	// two StateDirs; Restart keeps it, so that clients can reclaim.
	StateDir string

	// Lease is the NFSv4 lease lifetime (Lease_Lifetime), rounded up to
	// whole seconds, at most 120 s. Default 5 s.
	Lease time.Duration

	// Grace is the NFSv4 grace period (Grace_Period) after a start,
	// rounded up to whole seconds, at most 180 s. 0, the default, means
	// no grace period at all (Graceless), which most tests want. Tests
	// of state reclaim set it, preferably to at least Lease. Ganesha
	// ends the grace period early when no client of the previous
	// instance remains to reclaim (so a first start is never in grace),
	// or once every such client has sent RECLAIM_COMPLETE.
	Grace time.Duration

	// NFSv3 also serves NFSv3 and MOUNT (TCP only). Ganesha needs an
	// rpcbind for that: one already answering on 127.0.0.1:111 (in
	// NetNS if set) is used, else Start starts one and stops it after
	// the last server of this process that needed it.
	NFSv3 bool

	// MountPort is the MOUNT protocol's TCP port when NFSv3 is set. 0
	// picks a free port as for Port.
	MountPort int

	// NetNS, if set, names a network namespace (as `ip netns` does) to
	// run the server in, with a private tmpfs on /run. The namespace
	// must exist, have lo up, and own an IPv4 address on some interface
	// other than lo: Ganesha resolves BindAddr with AI_ADDRCONFIG,
	// which ignores loopback addresses, and refuses to start without.
	NetNS string

	// MinorVersions, if set, are the NFSv4 minor versions served
	// (NFSV4 { Minor_Versions }), of 0, 1 and 2; others are refused
	// with NFS4ERR_MINOR_VERS_MISMATCH. Default: all three.
	MinorVersions []int

	// ServerOwner and ServerScope, if set, are the server owner's major
	// ID and the server scope that EXCHANGE_ID returns (NFSV4 {
	// Server_Owner, Server_Scope }). Default: Ganesha's, the host name and
	// the host name followed by "_NFS-Ganesha", so that every server of one
	// host claims to be the same server (RFC 8881 §2.10.5). Tests of two
	// servers that a client must tell apart give them two owners.
	ServerOwner, ServerScope string

	// Kerberos, if set, turns on RPCSEC_GSS with Kerberos V5 (NFS_KRB5),
	// so that SecType may name krb5, krb5i and krb5p. Default: off.
	Kerberos *Kerberos

	// SecType are the security flavors the export accepts (EXPORT {
	// SecType }), of "none", "sys", "krb5", "krb5i" and "krb5p"; the
	// last three need Kerberos. Default: "sys". Ganesha 4.3 lists every
	// one named in its SECINFO reply, but see Kerberos for what it
	// accepts.
	SecType []string

	// Extra is raw configuration appended to the generated file, for
	// example a CLIENT block or a second EXPORT. Do not repeat a block
	// the generated file has (NFS_CORE_PARAM, NFS_KRB5, NFSV4, EXPORT
	// with Export_Id 1, LOG): Ganesha accepts that without error, but
	// not reliably as an override. Use the fields instead.
	Extra string
}

// Kerberos configures Ganesha's Kerberos V5 acceptor. internal/kdc makes
// the files it names: kdc.KDC's Krb5Conf, and a Keytab of the service
// principal, which should be nfs/localhost: Ganesha 4.3 also gets itself
// a ticket from the keytab at start, for NFSv4.0 callbacks, as
// nfs/localhost (its default host name, not the machine's), and without
// that key logs a CRIT line "no usable keytab entry" (and serves on).
//
// What Ganesha 4.3 does with SecType, seen from an AUTH_SYS client: the
// pseudo root takes every flavor (its SECINFO lists krb5p, krb5i, krb5,
// sys and none), so mounting it works; every call into a Kerberos-only
// export fails with NFS4ERR_WRONGSEC; SECINFO of the export lists exactly
// the services named, privacy first, then sys. With a GSS client (seen
// by hand, not by this package's tests): a context for any principal in
// the keytab is accepted, whatever host it names, and an export of one
// service refuses the other two with NFS4ERR_WRONGSEC. The
// server's GSS detail is in its TIRPC log component at FULL_DEBUG
// (Extra: LOG { COMPONENTS { TIRPC = FULL_DEBUG; } }).
type Kerberos struct {
	// Krb5Conf is the krb5.conf Ganesha's Kerberos library reads
	// (KRB5_CONFIG); it must exist. Ganesha never reads /etc/krb5.conf
	// then.
	Krb5Conf string

	// Keytab is the keytab holding the service principal's keys
	// (KeytabPath, and KRB5_KTNAME); it must exist.
	Keytab string

	// Principal is the service name (PrincipalName), the first part of
	// the principal, as in nfs/HOST@REALM. Default "nfs".
	Principal string
}

// Defaults for the zero Config.
const (
	defaultBindAddr = "127.0.0.1"
	defaultPseudo   = "/export"
	defaultLease    = 5 * time.Second
	maxLease        = 120 * time.Second
	maxGrace        = 180 * time.Second
	defaultSecType  = "sys"
	defaultKrb5Name = "nfs"
)

// resolve returns c with every default filled in and its ports chosen.
// It creates the temporary directories through tb, which removes them
// after the test.
func (c Config) resolve(tb TB) (Config, error) {
	if c.BindAddr == "" {
		c.BindAddr = defaultBindAddr
	}
	if net.ParseIP(c.BindAddr) == nil {
		return c, fmt.Errorf("ganesha: BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.Pseudo == "" {
		c.Pseudo = defaultPseudo
	}
	if !strings.HasPrefix(c.Pseudo, "/") {
		return c, fmt.Errorf("ganesha: Pseudo %q is not an absolute path", c.Pseudo)
	}
	if c.Lease == 0 {
		c.Lease = defaultLease
	}
	if c.Lease < 0 || c.Lease > maxLease {
		return c, fmt.Errorf("ganesha: Lease %v outside (0, %v]", c.Lease, maxLease)
	}
	if c.Grace < 0 || c.Grace > maxGrace {
		return c, fmt.Errorf("ganesha: Grace %v outside [0, %v]", c.Grace, maxGrace)
	}
	if c.Port < 0 || c.Port > 65535 || c.MountPort < 0 || c.MountPort > 65535 {
		return c, fmt.Errorf("ganesha: port %d or %d outside [0, 65535]", c.Port, c.MountPort)
	}
	if !c.NFSv3 {
		c.MountPort = 0
	}
	if c.NFSv3 && c.Port != 0 && c.Port == c.MountPort {
		return c, fmt.Errorf("ganesha: Port and MountPort are both %d", c.Port)
	}
	var err error
	if c.ExportDir, err = absDir(tb, "ExportDir", c.ExportDir); err != nil {
		return c, err
	}
	if c.StateDir, err = absDir(tb, "StateDir", c.StateDir); err != nil {
		return c, err
	}
	for _, dir := range []string{c.ExportDir, c.StateDir} {
		if fi, err := os.Stat(dir); err != nil {
			return c, fmt.Errorf("ganesha: %w", err)
		} else if !fi.IsDir() {
			return c, fmt.Errorf("ganesha: %s is not a directory", dir)
		}
	}
	if err := checkString("Pseudo", c.Pseudo); err != nil {
		return c, err
	}
	if err := checkString("ServerOwner", c.ServerOwner); err != nil {
		return c, err
	}
	if err := checkString("ServerScope", c.ServerScope); err != nil {
		return c, err
	}
	if c.NetNS != "" && (strings.ContainsRune(c.NetNS, '/') || c.NetNS == "." || c.NetNS == "..") {
		return c, fmt.Errorf("ganesha: NetNS %q is not a namespace name", c.NetNS)
	}

	if err := c.resolveSecurity(); err != nil {
		return c, err
	}

	need := 0
	if c.Port == 0 {
		need++
	}
	if c.NFSv3 && c.MountPort == 0 {
		need++
	}
	if need > 0 {
		host := c.BindAddr
		if c.NetNS != "" {
			host = defaultBindAddr
		}
		ports, err := pickPorts(host, need)
		if err != nil {
			return c, err
		}
		if c.Port == 0 {
			c.Port, ports = ports[0], ports[1:]
		}
		if c.NFSv3 && c.MountPort == 0 {
			c.MountPort = ports[0]
		}
	}
	return c, nil
}

// resolveSecurity checks SecType and Kerberos, and fills in their
// defaults. A resolved Config's Kerberos is a copy: the caller's is never
// changed.
func (c *Config) resolveSecurity() error {
	if len(c.SecType) == 0 {
		c.SecType = []string{defaultSecType}
	}
	for _, f := range c.SecType {
		switch f {
		case "none", "sys":
		case "krb5", "krb5i", "krb5p":
			if c.Kerberos == nil {
				return fmt.Errorf("ganesha: SecType %s needs Kerberos", f)
			}
		default:
			return fmt.Errorf("ganesha: SecType %q is not one of none, sys, krb5, krb5i, krb5p", f)
		}
	}
	if c.Kerberos == nil {
		return nil
	}
	k := *c.Kerberos
	if k.Principal == "" {
		k.Principal = defaultKrb5Name
	}
	if err := checkString("Kerberos.Principal", k.Principal); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		path *string
	}{{"Kerberos.Krb5Conf", &k.Krb5Conf}, {"Kerberos.Keytab", &k.Keytab}} {
		if *f.path == "" {
			return fmt.Errorf("ganesha: %s is not set", f.name)
		}
		abs, err := filepath.Abs(*f.path)
		if err != nil {
			return fmt.Errorf("ganesha: %s: %w", f.name, err)
		}
		if err := checkString(f.name, abs); err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("ganesha: %s: %w", f.name, err)
		}
		*f.path = abs
	}
	c.Kerberos = &k
	return nil
}

// absDir returns dir as an absolute path, or a fresh t.TempDir() if dir is "".
func absDir(tb TB, field, dir string) (string, error) {
	if dir == "" {
		dir = tb.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("ganesha: %s: %w", field, err)
	}
	return abs, checkString(field, abs)
}

// checkString rejects what cannot appear inside a quoted string of a
// Ganesha configuration file.
func checkString(field, s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' || r == 0x7f }) {
		return fmt.Errorf("ganesha: %s %q contains a quote, backslash or control character", field, s)
	}
	return nil
}

// quote quotes s, which checkString has accepted, for the configuration file.
func quote(s string) string { return `"` + s + `"` }

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// render returns the Ganesha configuration for a resolved Config.
func (c Config) render(name string) string {
	protocols := "4"
	if c.NFSv3 {
		protocols = "3, 4"
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("# Generated by github.com/gonfs/nfs/internal/ganesha for %s.", strings.ReplaceAll(name, "\n", " "))
	p("NFS_CORE_PARAM {")
	p("\tProtocols = %s;", protocols)
	p("\tNFS_Port = %d;", c.Port)
	if c.NFSv3 {
		p("\tMNT_Port = %d;", c.MountPort)
		// The NFSv3 mount path is Pseudo, as for NFSv4, not ExportDir.
		p("\tmount_path_pseudo = true;")
	}
	p("\tBind_addr = %s;", c.BindAddr) // a bare address: Ganesha rejects a quoted one
	p("\tEnable_NLM = false;")
	p("\tEnable_RQUOTA = false;")
	// TCP only; also the only way Ganesha starts without an rpcbind.
	p("\tEnable_UDP = false;")
	p("}")

	if k := c.Kerberos; k != nil {
		p("NFS_KRB5 {")
		p("\tActive_krb5 = true;")
		p("\tPrincipalName = %s;", quote(k.Principal))
		p("\tKeytabPath = %s;", quote(k.Keytab))
		p("\tCCacheDir = %s;", quote(filepath.Join(c.StateDir, "krb5cc")))
		p("}")
	} else {
		// Kerberos is unused; keep its credential cache out of the shared
		// /run/ganesha, which Ganesha then never creates.
		p("NFS_KRB5 {")
		p("\tActive_krb5 = false;")
		p("\tCCacheDir = %s;", quote(filepath.Join(c.StateDir, "krb5cc")))
		p("}")
	}

	p("NFSV4 {")
	p("\tLease_Lifetime = %d;", seconds(c.Lease))
	if c.Grace > 0 {
		p("\tGrace_Period = %d;", seconds(c.Grace))
		p("\tGraceless = false;")
	} else {
		p("\tGraceless = true;")
	}
	// Client records for reclaim after a restart; per instance, or two
	// servers would overwrite each other's.
	p("\tRecoveryRoot = %s;", quote(filepath.Join(c.StateDir, "recovery")))
	if len(c.MinorVersions) > 0 {
		vs := make([]string, len(c.MinorVersions))
		for i, v := range c.MinorVersions {
			vs[i] = strconv.Itoa(v)
		}
		p("\tMinor_Versions = %s;", strings.Join(vs, ", "))
	}
	if c.ServerOwner != "" {
		p("\tServer_Owner = %s;", quote(c.ServerOwner))
	}
	if c.ServerScope != "" {
		p("\tServer_Scope = %s;", quote(c.ServerScope))
	}
	p("}")

	p("EXPORT {")
	p("\tExport_Id = 1;")
	p("\tPath = %s;", quote(c.ExportDir))
	p("\tPseudo = %s;", quote(c.Pseudo))
	p("\tProtocols = %s;", protocols)
	p("\tTransports = TCP;")
	p("\tAccess_Type = RW;")
	p("\tSquash = No_Root_Squash;")
	p("\tSecType = %s;", strings.Join(c.SecType, ", "))
	// Accept clients on any source port, not only reserved ones (<1024).
	// This is Ganesha's default; written out because the library's
	// clients reconnect from ephemeral ports.
	p("\tPrivilegedPort = false;")
	// No attribute caching: files may change behind Ganesha's back (tests
	// write ExportDir directly; two servers may share it).
	p("\tAttr_Expiration_Time = 0;")
	p("\tFSAL { Name = VFS; }")
	p("}")

	p("LOG {")
	p("\tDefault_Log_Level = EVENT;")
	// Microsecond timestamps, to line the log up with a client's trace,
	// and the client's address on each request line.
	p("\tFORMAT { date_format = ISO-8601; time_format = syslog_usec; CLIENTIP = true; }")
	p("}")

	if c.Extra != "" {
		p("# Config.Extra")
		p("%s", c.Extra)
	}
	return b.String()
}
