package ganesha

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/kdc"
)

// TestKerberosStart: a Ganesha with Kerberos from internal/kdc and a
// krb5 export starts and serves, reads the realm's krb5.conf rather than
// /etc/krb5.conf, and finds its service key: it logs no Kerberos error
// (Ganesha reports a keytab it cannot use only in its log, as a CRIT
// line of the NFS CB component, and serves on), and the KDC issued it
// the ticket it gets at start for NFSv4.0 callbacks.
func TestKerberosStart(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	s := Start(t, Config{
		Kerberos: &Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: k.Keytab(t, "nfs/localhost")},
		SecType:  []string{"krb5"},
	})
	dialNull(t, s)
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, ":CRIT :") && !strings.Contains(line, ":DBUS :") {
			t.Errorf("Ganesha with Kerberos logged an error: %s", line)
		}
	}
	kdcLog, err := os.ReadFile(k.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	issued := false
	for _, line := range strings.Split(string(kdcLog), "\n") {
		issued = issued || strings.Contains(line, "ISSUE: authtime") && strings.Contains(line, " nfs/localhost@"+k.Realm()+" for krbtgt/")
	}
	if !issued {
		t.Errorf("the KDC issued Ganesha no ticket for nfs/localhost at its start; KDC log:\n%s", kdcLog)
	}
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID()) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "KRB5_CONFIG=" + k.Krb5Conf(); !strings.Contains(string(environ), want+"\x00") {
		t.Errorf("ganesha.nfsd's environment lacks %s", want)
	}
}

// TestKerberosWrongKeytab: a keytab without Ganesha's nfs/localhost key
// is what the log's Kerberos CRIT line is about; TestKerberosStart relies
// on that line to tell a usable keytab.
func TestKerberosWrongKeytab(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	s := Start(t, Config{
		Kerberos: &Kerberos{Krb5Conf: k.Krb5Conf(), Keytab: k.Keytab(t, "host/elsewhere")},
		SecType:  []string{"krb5"},
	})
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "no usable keytab entry") {
		t.Errorf("Ganesha with a keytab lacking nfs/localhost logged no complaint:\n%s", log)
	}
}
