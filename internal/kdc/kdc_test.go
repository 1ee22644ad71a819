package kdc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/proc"
	"github.com/gonfs/nfs/internal/testutil"
)

// TestMain checks for goroutine leaks once, after every test: each
// test's KDC is stopped by its cleanups.
func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }

// kinit runs MIT's kinit for principal with password on stdin, writing
// ccache, and returns its output and error.
func kinit(t *testing.T, k *KDC, ccache, principal, password string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := k.Command(ctx, "kinit", append(append([]string{"-c", "FILE:" + ccache}, args...), principal)...)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// klist returns klist's listing of ccache (-e: with encryption types).
func klist(t *testing.T, k *KDC, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := k.Command(ctx, "klist", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("klist %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestPassword: kinit with the right password gets a ticket-granting
// ticket, and with a wrong one is refused by the KDC.
func TestPassword(t *testing.T) {
	k := Start(t, Config{})
	k.AddPrincipal(t, "alice", "right-password")

	cc := k.Kinit(t, "alice", "right-password")
	list := klist(t, k, "-c", cc)
	for _, want := range []string{"Default principal: alice@GONFS.TEST", "krbtgt/GONFS.TEST@GONFS.TEST"} {
		if !strings.Contains(list, want) {
			t.Errorf("klist of the ccache Kinit wrote lacks %q:\n%s", want, list)
		}
	}

	out, err := kinit(t, k, t.TempDir()+"/cc", "alice", "wrong-password")
	if err == nil || !strings.Contains(out, "Password incorrect") {
		t.Errorf("kinit with a wrong password: %v, %q; want a failure saying \"Password incorrect\"", err, out)
	}
	out, err = kinit(t, k, t.TempDir()+"/cc", "nobody", "x")
	if err == nil || !strings.Contains(out, "not found in Kerberos database") {
		t.Errorf("kinit of an unknown principal: %v, %q; want a failure saying it is not in the database", err, out)
	}
}

// TestKeytab: a service principal's keytab gets a ticket (kinit -k) with
// keys of every configured type, and exporting a user's keys keeps the
// password working.
func TestKeytab(t *testing.T) {
	k := Start(t, Config{})
	kt := k.Keytab(t, "nfs/localhost")
	entries := klist(t, k, "-k", "-e", kt)
	for _, e := range DefaultEnctypes {
		if !strings.Contains(entries, "nfs/localhost@GONFS.TEST ("+e+")") {
			t.Errorf("keytab lacks an %s key for nfs/localhost:\n%s", e, entries)
		}
	}
	cc := t.TempDir() + "/cc"
	if out, err := kinit(t, k, cc, "nfs/localhost", "", "-k", "-t", kt); err != nil {
		t.Fatalf("kinit -k -t %s nfs/localhost: %v\n%s", kt, err, out)
	}
	if list := klist(t, k, "-c", cc); !strings.Contains(list, "Default principal: nfs/localhost@GONFS.TEST") {
		t.Errorf("klist after kinit -k:\n%s", list)
	}

	// A second keytab of the same principal holds the same keys: the
	// first still works.
	k.Keytab(t, "nfs/localhost")
	if out, err := kinit(t, k, cc, "nfs/localhost", "", "-k", "-t", kt); err != nil {
		t.Fatalf("kinit -k with the first keytab after a second was exported: %v\n%s", err, out)
	}

	k.AddPrincipal(t, "bob", "bobs-password")
	both := k.Keytab(t, "bob", "nfs/localhost")
	if list := klist(t, k, "-k", both); !strings.Contains(list, "bob@GONFS.TEST") || !strings.Contains(list, "nfs/localhost@GONFS.TEST") {
		t.Errorf("keytab of bob and nfs/localhost:\n%s", list)
	}
	k.Kinit(t, "bob", "bobs-password") // fails the test if the export changed the key
}

// TestEnctypes: Config.Enctypes limits the keys to the types named, and
// the KDC issues tickets of that type.
func TestEnctypes(t *testing.T) {
	const sha384 = "aes256-cts-hmac-sha384-192"
	k := Start(t, Config{Enctypes: []string{sha384}})
	k.AddPrincipal(t, "carol", "carols-password")
	cc := k.Kinit(t, "carol", "carols-password")
	list := klist(t, k, "-e", "-c", cc)
	if !strings.Contains(list, "Etype (skey, tkt): "+sha384+", "+sha384) {
		t.Errorf("ticket not of %s:\n%s", sha384, list)
	}
	entries := klist(t, k, "-k", "-e", k.Keytab(t, "nfs/localhost"))
	if strings.Contains(entries, "sha1") || !strings.Contains(entries, sha384) {
		t.Errorf("keytab with Enctypes %s alone:\n%s", sha384, entries)
	}
}

// TestClockOffset: a KDC whose clock is 10 minutes ahead is refused by
// kinit with a clock-skew error, as gokrb5 would refuse it.
func TestClockOffset(t *testing.T) {
	k := Start(t, Config{ClockOffset: 10 * time.Minute})
	k.AddPrincipal(t, "dave", "daves-password")
	out, err := kinit(t, k, t.TempDir()+"/cc", "dave", "daves-password")
	if err == nil || !strings.Contains(out, "Clock skew too great") {
		t.Errorf("kinit against a KDC 10 min ahead: %v, %q; want a failure saying \"Clock skew too great\"", err, out)
	}
}

// TestMaxLife: with MaxLife 20 s, the ticket klist shows expires within
// 20 s of its start.
func TestMaxLife(t *testing.T) {
	const life = 20 * time.Second
	k := Start(t, Config{MaxLife: life})
	k.AddPrincipal(t, "erin", "erins-password")
	before := time.Now().Truncate(time.Second)
	cc := k.Kinit(t, "erin", "erins-password")
	list := klist(t, k, "-c", cc)
	start, end, ok := tgtTimes(list, "krbtgt/GONFS.TEST@GONFS.TEST")
	if !ok {
		t.Fatalf("no ticket-granting ticket with readable times in klist's output:\n%s", list)
	}
	if d := end.Sub(start); d <= 0 || d > life {
		t.Errorf("ticket valid from %v to %v (%v); want at most %v:\n%s", start, end, d, life, list)
	}
	if end.After(before.Add(life + 5*time.Second)) {
		t.Errorf("ticket expires at %v, more than %v after kinit began (%v)", end, life, before)
	}
}

// tgtTimes finds the line of klist's output for service and parses its
// "Valid starting" and "Expires" columns (C locale), in local time.
func tgtTimes(list, service string) (start, end time.Time, ok bool) {
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[4] != service {
			continue
		}
		for _, layout := range []string{"01/02/06 15:04:05", "01/02/2006 15:04:05"} {
			s, err1 := time.ParseInLocation(layout, f[0]+" "+f[1], time.Local)
			e, err2 := time.ParseInLocation(layout, f[2]+" "+f[3], time.Local)
			if err1 == nil && err2 == nil {
				return s, e, true
			}
		}
	}
	return time.Time{}, time.Time{}, false
}

// TestStopRestart: a stopped KDC is gone (its process reaped, clients
// refused) and Restart brings back the same realm on the same address.
func TestStopRestart(t *testing.T) {
	k := Start(t, Config{})
	k.AddPrincipal(t, "frank", "franks-password")
	addr, pid := k.Addr(), k.PID()
	k.Stop()
	if proc.Alive(pid) || k.Running() {
		t.Fatalf("krb5kdc (pid %d) still alive after Stop", pid)
	}
	out, err := kinit(t, k, t.TempDir()+"/cc", "frank", "franks-password")
	if err == nil || !strings.Contains(out, "Cannot contact any KDC") {
		t.Errorf("kinit with the KDC stopped: %v, %q; want \"Cannot contact any KDC\"", err, out)
	}
	k.Restart(t)
	if k.Addr() != addr || k.PID() == pid {
		t.Errorf("after Restart: address %s, pid %d; was %s, %d", k.Addr(), k.PID(), addr, pid)
	}
	k.Kinit(t, "frank", "franks-password")
}

// TestKrb5Conf: the clients' krb5.conf names the realm, the KDC's
// address and the encryption types, and turns DNS and time sync off.
func TestKrb5Conf(t *testing.T) {
	k := Start(t, Config{Realm: "OTHER.TEST"})
	data, err := os.ReadFile(k.Krb5Conf())
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	for _, want := range []string{
		"default_realm = OTHER.TEST",
		"kdc = " + k.Addr(),
		"dns_lookup_kdc = false",
		"kdc_timesync = 0",
		"permitted_enctypes = " + strings.Join(DefaultEnctypes, " "),
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("krb5.conf lacks %q:\n%s", want, conf)
		}
	}
	k.AddPrincipal(t, "grace", "graces-password")
	if list := klist(t, k, "-c", k.Kinit(t, "grace", "graces-password")); !strings.Contains(list, "krbtgt/OTHER.TEST@OTHER.TEST") {
		t.Errorf("klist in realm OTHER.TEST:\n%s", list)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"blank in realm", Config{Realm: "A B"}, "Realm"},
		{"brace in realm", Config{Realm: "A}"}, "Realm"},
		{"negative max life", Config{MaxLife: -time.Second}, "MaxLife"},
		{"empty enctype", Config{Enctypes: []string{""}}, "Enctypes"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "kdc: ") {
			t.Errorf("%s: withDefaults = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}
