package ganesha

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestResolveRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bind address", Config{BindAddr: "localhost"}, "BindAddr"},
		{"relative pseudo", Config{Pseudo: "export"}, "Pseudo"},
		{"lease too long", Config{Lease: 121 * time.Second}, "Lease"},
		{"negative lease", Config{Lease: -time.Second}, "Lease"},
		{"grace too long", Config{Grace: 181 * time.Second}, "Grace"},
		{"port", Config{Port: 70000}, "port"},
		{"same ports", Config{NFSv3: true, Port: 2049, MountPort: 2049}, "both"},
		{"quote in path", Config{ExportDir: `/tmp/a"b`}, "quote"},
		{"newline in pseudo", Config{Pseudo: "/a\nb"}, "control"},
		{"netns path", Config{NetNS: "../x"}, "NetNS"},
		{"quote in server owner", Config{ServerOwner: `a"b`}, "ServerOwner"},
		{"newline in server scope", Config{ServerScope: "a\nb"}, "ServerScope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.resolve(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resolve(%+v) = %v, want an error about %s", tc.cfg, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "ganesha: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	c, err := Config{NFSv3: true}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.BindAddr != "127.0.0.1" || c.Pseudo != "/export" || c.Lease != 5*time.Second || c.Grace != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Port == 0 || c.MountPort == 0 || c.Port == c.MountPort {
		t.Fatalf("ports not chosen, or chosen twice: NFS %d, MOUNT %d", c.Port, c.MountPort)
	}
	if c.ExportDir == "" || c.StateDir == "" || c.ExportDir == c.StateDir {
		t.Fatalf("directories: export %q, state %q", c.ExportDir, c.StateDir)
	}

	c, err = Config{MountPort: 20048}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.MountPort != 0 {
		t.Fatalf("MountPort = %d without NFSv3, want 0", c.MountPort)
	}
}

// TestRenderGrace checks the choice between a grace period and none, and
// the rounding of durations up to whole seconds.
func TestRenderGrace(t *testing.T) {
	for _, tc := range []struct {
		lease, grace time.Duration
		want, reject []string
	}{
		{5 * time.Second, 0, []string{"Lease_Lifetime = 5;", "Graceless = true;"}, []string{"Grace_Period"}},
		{1500 * time.Millisecond, 2500 * time.Millisecond, []string{"Lease_Lifetime = 2;", "Grace_Period = 3;", "Graceless = false;"}, nil},
		{time.Nanosecond, time.Second, []string{"Lease_Lifetime = 1;", "Grace_Period = 1;"}, []string{"Graceless = true"}},
	} {
		c, err := Config{Lease: tc.lease, Grace: tc.grace}.resolve(t)
		if err != nil {
			t.Fatal(err)
		}
		conf := c.render(t.Name())
		for _, w := range tc.want {
			if !strings.Contains(conf, w) {
				t.Errorf("lease %v, grace %v: configuration lacks %q:\n%s", tc.lease, tc.grace, w, conf)
			}
		}
		for _, r := range tc.reject {
			if strings.Contains(conf, r) {
				t.Errorf("lease %v, grace %v: configuration has %q:\n%s", tc.lease, tc.grace, r, conf)
			}
		}
	}
}

// The server owner and scope are written only when set: Ganesha's own
// (the host name) otherwise.
func TestRenderServerOwner(t *testing.T) {
	c, err := Config{ServerOwner: "owner-a", ServerScope: "scope-a"}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	conf := c.render(t.Name())
	for _, w := range []string{`Server_Owner = "owner-a";`, `Server_Scope = "scope-a";`} {
		if !strings.Contains(conf, w) {
			t.Errorf("configuration lacks %q:\n%s", w, conf)
		}
	}
	c, err = Config{}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	if conf := c.render(t.Name()); strings.Contains(conf, "Server_Owner") || strings.Contains(conf, "Server_Scope") {
		t.Errorf("the default configuration sets the server owner or scope:\n%s", conf)
	}
}

func TestEpochsDistinct(t *testing.T) {
	const goroutines, each = 8, 100
	var (
		mu   sync.Mutex
		seen = make(map[uint32]bool)
		wg   sync.WaitGroup
	)
	before := uint32(time.Now().Unix())
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := uint32(0)
			for range each {
				e := nextEpoch()
				if e <= prev {
					t.Errorf("epoch %d after %d: not increasing", e, prev)
				}
				prev = e
				mu.Lock()
				if seen[e] {
					t.Errorf("epoch %d handed out twice", e)
				}
				seen[e] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for e := range seen {
		if e < before {
			t.Fatalf("epoch %d is before the test started (%d)", e, before)
		}
	}
}

// Kerberos turns NFS_KRB5 on with the principal and keytab given, and
// SecType lists the export's flavors; without either the configuration
// is as it always was.
func TestRenderKerberos(t *testing.T) {
	dir := t.TempDir()
	krb5conf, keytab := dir+"/krb5.conf", dir+"/keytab"
	for _, f := range []string{krb5conf, keytab} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Config{Kerberos: &Kerberos{Krb5Conf: krb5conf, Keytab: keytab}, SecType: []string{"krb5p", "sys"}}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	conf := c.render(t.Name())
	want := "NFS_KRB5 {\n" +
		"\tActive_krb5 = true;\n" +
		"\tPrincipalName = \"nfs\";\n" +
		"\tKeytabPath = \"" + keytab + "\";\n" +
		"\tCCacheDir = \"" + c.StateDir + "/krb5cc\";\n" +
		"}\n"
	if !strings.Contains(conf, want) {
		t.Errorf("configuration lacks\n%s\nin:\n%s", want, conf)
	}
	if !strings.Contains(conf, "\tSecType = krb5p, sys;\n") {
		t.Errorf("configuration lacks SecType = krb5p, sys:\n%s", conf)
	}

	c, err = Config{}.resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	conf = c.render(t.Name())
	for _, w := range []string{"\tActive_krb5 = false;\n", "\tSecType = sys;\n"} {
		if !strings.Contains(conf, w) {
			t.Errorf("default configuration lacks %q:\n%s", w, conf)
		}
	}
	if strings.Contains(conf, "KeytabPath") || strings.Contains(conf, "PrincipalName") {
		t.Errorf("default configuration names a keytab or principal:\n%s", conf)
	}
}

func TestResolveRejectsSecurity(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/f", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"krb5 without Kerberos", Config{SecType: []string{"krb5i"}}, "needs Kerberos"},
		{"unknown flavor", Config{SecType: []string{"tls"}}, "not one of"},
		{"no keytab", Config{Kerberos: &Kerberos{Krb5Conf: dir + "/f"}}, "Kerberos.Keytab"},
		{"missing krb5.conf", Config{Kerberos: &Kerberos{Krb5Conf: dir + "/none", Keytab: dir + "/f"}}, "Kerberos.Krb5Conf"},
		{"quote in principal", Config{Kerberos: &Kerberos{Krb5Conf: dir + "/f", Keytab: dir + "/f", Principal: `n"fs`}}, "Principal"},
	} {
		if _, err := tc.cfg.resolve(t); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ganesha: ") {
			t.Errorf("%s: resolve = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}
