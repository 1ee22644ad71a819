package main

import (
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/testcert"
	"github.com/gonfs/nfs/xprt"
)

func TestParseLocation(t *testing.T) {
	def := defaultSettings()
	for _, c := range []struct {
		arg      string
		local    bool
		host     string // endpoint.host
		addr     string
		path     string
		dirSyn   bool
		settings func(*settings)
		name     string // location.name()
	}{
		{arg: "file.txt", local: true, path: "file.txt", name: "file.txt"},
		{arg: "dir/", local: true, path: "dir/", dirSyn: true, name: "dir/"},
		{arg: "./nfs://x", local: true, path: "./nfs://x", name: "./nfs://x"},
		{arg: "/abs/with space", local: true, path: "/abs/with space", name: "/abs/with space"},
		{arg: "nfs://srv/export/f", host: "srv", addr: "srv:2049", path: "/export/f", name: "nfs://srv/export/f"},
		{arg: "NFS://srv:2050/export/d/", host: "srv:2050", addr: "srv:2050", path: "/export/d", dirSyn: true, name: "nfs://srv:2050/export/d"},
		{arg: "nfs://[::1]:2050/e/./x/../f", host: "[::1]:2050", addr: "[::1]:2050", path: "/e/f", name: "nfs://[::1]:2050/e/f"},
		{arg: "nfs://srv", host: "srv", addr: "srv:2049", path: "/", dirSyn: true, name: "nfs://srv/"},
		{arg: "nfs://srv/a%20b", host: "srv", addr: "srv:2049", path: "/a b", name: "nfs://srv/a%20b"},
		{arg: "nfs://10.0.0.1/e/f?version=4&uid=1000&gid=100&rsize=64k&wsize=1m&timeo=15&retrans=3&soft&policy=ephemeral",
			host: "10.0.0.1", addr: "10.0.0.1:2049", path: "/e/f", name: "nfs://10.0.0.1/e/f",
			settings: func(s *settings) {
				s.UID, s.GID, s.RSize, s.WSize, s.Timeo, s.Retrans, s.Soft, s.Policy =
					1000, 100, 64<<10, 1<<20, 1500*time.Millisecond, 3, true, "ephemeral"
			}},
		{arg: "nfs://h/f?timeo=2s&hard=true&vers=4.1", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f",
			settings: func(s *settings) { s.Timeo, s.Version = 2*time.Second, "4.1" }},
		{arg: "nfs://h/f?version=4.0", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f",
			settings: func(s *settings) { s.Version = "4.0" }},
		{arg: "nfs://h/f?soft=false", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f"},
		{arg: "nfs://h/f?xprtsec=tls", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f",
			settings: func(s *settings) { s.XprtSec = "tls" }},
		{arg: "nfs://h:2050/f?policy=ephemeral&xprtsec=mtls", host: "h:2050", addr: "h:2050", path: "/f", name: "nfs://h:2050/f",
			settings: func(s *settings) { s.XprtSec, s.Policy = "mtls", "ephemeral" }},
		{arg: "nfs://h/f?xprtsec=none", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f"},
		{arg: "nfs://h/f?sec=krb5p", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f",
			settings: func(s *settings) { s.Sec = "krb5p" }},
		{arg: "nfs://h/f?sec=krb5p:krb5i:sys", host: "h", addr: "h:2049", path: "/f", name: "nfs://h/f",
			settings: func(s *settings) { s.Sec = "krb5p:krb5i:sys" }},
	} {
		l, err := parseLocation(c.arg, def, nil)
		if err != nil {
			t.Errorf("%q: %v", c.arg, err)
			continue
		}
		if c.local != (l.remote == nil) || l.path != c.path || l.dirSyn != c.dirSyn || l.name() != c.name {
			t.Errorf("%q: local %t path %q dirSyn %t name %q; want %t %q %t %q",
				c.arg, l.remote == nil, l.path, l.dirSyn, l.name(), c.local, c.path, c.dirSyn, c.name)
			continue
		}
		if c.local {
			continue
		}
		want := defaultSettings()
		if c.settings != nil {
			c.settings(&want)
		}
		if l.remote.host != c.host || l.remote.addr != c.addr || l.remote.settings != want {
			t.Errorf("%q: endpoint %+v, want host %q addr %q settings %+v", c.arg, *l.remote, c.host, c.addr, want)
		}
	}
}

func TestParseLocationErrors(t *testing.T) {
	for arg, want := range map[string]string{
		"":                                   `"": empty path`,
		"nfs://":                             "missing host",
		"nfs:///export/f":                    "missing host",
		"nfs://h:0/f":                        `invalid port "0"`,
		"nfs://h:65536/f":                    `invalid port "65536"`,
		"nfs://h:/f":                         "empty port after ':'",
		"nfs://h:x/f":                        "malformed URL",
		"nfs://u:p@h/f":                      "user names are not supported",
		"nfs://h/f#frag":                     "unexpected fragment",
		"nfs://h/f%00":                       "NUL byte in path",
		"nfs://h/f%":                         "malformed URL",
		"nfs://h/f?version=4.3":              `version "4.3" not supported`,
		"nfs://h/f?version=3":                `version "3" not supported`,
		"nfs://h/f?uid=-1":                   `uid "-1" is not a number`,
		"nfs://h/f?gid=4294967296":           `gid "4294967296" is not a number`,
		"nfs://h/f?rsize=1":                  `rsize "1" is not a size`,
		"nfs://h/f?wsize=1t":                 `wsize "1t" is not a size`,
		"nfs://h/f?wsize=128m":               `wsize "128m" is not a size`,
		"nfs://h/f?timeo=0":                  `timeo "0" is not a duration`,
		"nfs://h/f?timeo=-1s":                `timeo "-1s" is not a duration`,
		"nfs://h/f?retrans=0":                `retrans "0" is not a number`,
		"nfs://h/f?soft=maybe":               `soft="maybe": want no value, true or false`,
		"nfs://h/f?soft&hard":                "both soft and hard given",
		"nfs://h/f?uid=1&uid=2":              `parameter "uid" given 2 times`,
		"nfs://h/f?policy=random":            `unknown policy "random"`,
		"nfs://h/f?nfsport=2049":             `unknown parameter "nfsport"`,
		"nfs://h/f?%zz":                      "malformed query",
		"smb://h/share":                      `unsupported scheme "smb"`,
		"nfs:relative":                       "", // no "://": a local path
		"nfs://h/f?version=4&bogus=":         `unknown parameter "bogus"`,
		"nfs://h/f?xprtsec=krb5":             `unknown xprtsec "krb5" (want none, tls, mtls)`,
		"nfs://h/f?xprtsec=TLS":              `unknown xprtsec "TLS"`,
		"nfs://h/f?xprtsec":                  `unknown xprtsec ""`,
		"nfs://h/f?xprtsec=tls&xprtsec=mtls": `parameter "xprtsec" given 2 times`,
		"nfs://h/f?sec=krb6":                 `sec "krb6" is not a list of distinct flavors of sys, krb5, krb5i, krb5p`,
		"nfs://h/f?sec=krb5:krb5":            `sec "krb5:krb5" is not a list`,
		"nfs://h/f?sec=":                     `sec "" is not a list`,
	} {
		_, err := parseLocation(arg, defaultSettings(), nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v, want a local path", arg, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want one containing %q", arg, err, want)
		case want != "" && arg != "" && !strings.HasPrefix(err.Error(), arg+": "):
			t.Errorf("%q: error %q does not start with the argument", arg, err)
		}
	}
}

// TestFlagsOverrideQuery checks that a flag beats the URL's query, for
// every server of the command line.
func TestFlagsOverrideQuery(t *testing.T) {
	cmd, err := parseArgs([]string{"-rv", "--uid=7", "-soft", "--timeo", "2s", "-j", "2", "--policy", "ephemeral",
		"nfs://a/x?uid=1&gid=2&timeo=50&hard&policy=same-reserved", "nfs://b:3000/y/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cmd.copy.recursive || !cmd.copy.preserve || !cmd.dial.verbose || cmd.copy.jobs != 2 {
		t.Errorf("flags: %+v %+v", cmd.copy, cmd.dial)
	}
	a, b := cmd.srcs[0].remote.settings, cmd.dst.remote.settings
	if a.UID != 7 || a.GID != 2 || a.Timeo != 2*time.Second || !a.Soft || a.Policy != "ephemeral" {
		t.Errorf("first server: %+v", a)
	}
	if b.UID != 7 || b.GID != -1 || b.Timeo != 2*time.Second || !b.Soft || b.Policy != "ephemeral" {
		t.Errorf("second server: %+v", b)
	}
	if cmd.srcs[0].remote.key() == cmd.dst.remote.key() {
		t.Errorf("two servers share a connection key")
	}

	// --xprtsec beats the query too; the same server with and without
	// TLS is two connections.
	cmd, err = parseArgs([]string{"--xprtsec", "tls", "nfs://a/x?xprtsec=none", "nfs://a/y"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := cmd.srcs[0].remote.settings, cmd.dst.remote.settings; a.XprtSec != "tls" || b.XprtSec != "tls" {
		t.Errorf("--xprtsec tls: %+v, %+v", a, b)
	}
	cmd, err = parseArgs([]string{"nfs://a/x?xprtsec=tls", "nfs://a/y"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.srcs[0].remote.key() == cmd.dst.remote.key() {
		t.Errorf("a TLS and a plain connection to one server share a key")
	}
}

// TestTLSFlags checks the command-line errors of the TLS flags: mtls
// without a client certificate, half a key pair, files that are missing
// or hold no certificate; and that a CA and a key pair load.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "nfscp test CA")
	client := ca.Client(t, "client.test")
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	for name, data := range map[string][]byte{caFile: ca.PEM(), certFile: client.CertPEM, keyFile: client.KeyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nfs://h/x?xprtsec=mtls", "."}, "nfs://h/x?xprtsec=mtls: xprtsec=mtls needs a client certificate: --tls-cert FILE and --tls-key FILE"},
		{[]string{"--xprtsec=mtls", "--tls-ca", caFile, ".", "nfs://h/x"}, "nfs://h/x: xprtsec=mtls needs a client certificate: --tls-cert FILE and --tls-key FILE"},
		{[]string{"--tls-cert", certFile, "nfs://h/x?xprtsec=mtls", "."}, "--tls-cert needs --tls-key, the certificate's private key"},
		{[]string{"--tls-key", keyFile, "nfs://h/x?xprtsec=mtls", "."}, "--tls-key needs --tls-cert, the client certificate"},
		{[]string{"--tls-ca", filepath.Join(dir, "nope"), "nfs://h/x?xprtsec=tls", "."}, "--tls-ca: no such file or directory: " + filepath.Join(dir, "nope")},
		{[]string{"--tls-ca", keyFile, "nfs://h/x?xprtsec=tls", "."}, "--tls-ca: no PEM certificate in " + keyFile},
		{[]string{"--tls-cert", certFile, "--tls-key", caFile, "nfs://h/x?xprtsec=mtls", "."}, "--tls-cert, --tls-key: tls: found a certificate rather than a key in the PEM for the private key"},
		{[]string{"--xprtsec", "ssh", ".", "nfs://h/x"}, `invalid value "ssh" for flag -xprtsec: unknown xprtsec "ssh" (want none, tls, mtls) (see nfscp -h)`},
	} {
		_, err := parseArgs(c.args, io.Discard)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}

	cmd, err := parseArgs([]string{"--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile, "nfs://h/x?xprtsec=mtls", "."}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cmd.dial.tlsOptions(cmd.srcs[0].remote.settings.XprtSec)
	if o.Mode != xprt.TLSMutual || len(o.Config.Certificates) != 1 || o.Config.RootCAs == nil || !o.Config.RootCAs.Equal(ca.Pool()) {
		t.Errorf("mtls options: %+v", o)
	}
	// tls sends no certificate, even when one is given: Linux refuses a
	// client that presents one on an xprtsec=tls export.
	if o := cmd.dial.tlsOptions("tls"); o.Mode != xprt.TLSRequired || len(o.Config.Certificates) != 0 {
		t.Errorf("tls options: %+v", o)
	}
	if o := cmd.dial.tlsOptions("none"); o.Mode != xprt.TLSNone {
		t.Errorf("none options: %+v", o)
	}
}

func TestExpandShortFlags(t *testing.T) {
	takesValue := func(n string) bool { return n == "j" || n == "timeout" }
	for in, want := range map[string]string{
		"-rpv a b":            "-r -p -v a b",
		"-j 4 -rq a b":        "-j 4 -r -q a b",
		"--timeout 3s -vr a":  "--timeout 3s -v -r a",
		"-rx a":               "-rx a", // not all known: left for flag to refuse
		"a -rv":               "a -rv",
		"-- -rv":              "-- -rv",
		"-j=4 -rv a":          "-j=4 -r -v a",
		"--verify --stats -r": "--verify --stats -r",
	} {
		if got := strings.Join(expandShortFlags(strings.Fields(in), takesValue), " "); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestParseTimeoAndSize(t *testing.T) {
	for in, want := range map[string]time.Duration{"1": 100 * time.Millisecond, "600": time.Minute, "1.5s": 1500 * time.Millisecond, "250ms": 250 * time.Millisecond} {
		if got, err := parseTimeo(in); err != nil || got != want {
			t.Errorf("parseTimeo(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "64k": 64 << 10, "1M": 1 << 20, "2g": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5m", "1kb", "99999999999999999999", "4611686018427387904k"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// FuzzParseNFSURL checks that any argument parses or fails cleanly, and
// that what parses is sane: an absolute clean path, a dialable address, a
// URL for messages that parses back to the same server and path, and
// settings within their bounds.
func FuzzParseNFSURL(f *testing.F) {
	for _, s := range []string{
		"nfs://h/export/f",
		"nfs://127.0.0.1:2049/export/dir/?version=4.1&uid=0&gid=0",
		"nfs://[fe80::1%25eth0]:2050/a/../b?soft&timeo=10&retrans=2",
		"nfs://h/%2e%2e/x?rsize=64k&wsize=1m&policy=hedged",
		"NfS://H:1/?hard",
		"nfs://h/f?soft&hard",
		"nfs://h/f?xprtsec=mtls&policy=ephemeral",
		"nfs://h/f?sec=krb5p:krb5i&version=4.2",
		"file.txt",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		l, err := parseLocation(arg, defaultSettings(), nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), quoteName(arg)+": ") && arg != "" {
				t.Fatalf("%q: error %q does not name the argument", arg, err)
			}
			return
		}
		if l.remote == nil {
			if l.path != arg {
				t.Fatalf("%q: local path %q", arg, l.path)
			}
			return
		}
		if !path.IsAbs(l.path) || path.Clean(l.path) != l.path {
			t.Fatalf("%q: path %q is not absolute and clean", arg, l.path)
		}
		host, port, err := net.SplitHostPort(l.remote.addr)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			t.Fatalf("%q: address %q", arg, l.remote.addr)
		}
		u, err := url.Parse(l.name())
		if err != nil || u.Host != l.remote.host || path.Clean("/"+u.Path) != l.path {
			t.Fatalf("%q: message name %q does not parse back (%v)", arg, l.name(), err)
		}
		s := l.remote.settings
		if !slices.Contains([]string{"4", "4.0", "4.1", "4.2"}, s.Version) || (s.UID < -1) || (s.GID < -1) || s.RSize < 0 || s.RSize > maxIOSize ||
			s.WSize < 0 || s.WSize > maxIOSize || s.Timeo < 0 || s.Retrans < 0 || !knownPolicy(s.Policy) ||
			(s.XprtSec != "none" && s.XprtSec != "tls" && s.XprtSec != "mtls") {
			t.Fatalf("%q: settings %+v", arg, s)
		}
		for _, f := range strings.Split(s.Sec, ":") {
			if !slices.Contains(secNames, f) {
				t.Fatalf("%q: sec %q", arg, s.Sec)
			}
		}
	})
}

func knownPolicy(p string) bool {
	for _, n := range policyNames {
		if p == n {
			return true
		}
	}
	return false
}
