package main

import (
	"net"
	"strings"

	"github.com/gonfs/nfs/krb5"
	"github.com/gonfs/nfs/rpc"
)

// Kerberos (RPCSEC_GSS), asked for per server by the sec setting, as
// mount(8) and libnfs spell it: sys (AUTH_SYS, the default), krb5
// (authentication), krb5i (and a checksum over every call and reply) or
// krb5p (and encryption). The client's credentials are the user's
// credential cache ($KRB5CCNAME, as kinit fills it), or a keytab's
// (--keytab and --krb5-principal, for services); the server's principal is
// nfs/HOST unless --krb5-service names another; realms come from
// krb5.conf (--krb5-conf, else $KRB5_CONFIG, else /etc/krb5.conf).

// secNames are the values of the sec setting.
var secNames = []string{"sys", "krb5", "krb5i", "krb5p"}

// krb5Options are the Kerberos flags.
type krb5Options struct {
	conf      string // --krb5-conf
	keytab    string // --keytab
	principal string // --krb5-principal: the client's principal in the keytab
	service   string // --krb5-service: the server's principal; "": nfs/HOST
}

// gssAuth returns the RPCSEC_GSS flavor that sec (krb5, krb5i or krb5p)
// names for the server host, and the mechanism, which the caller closes
// after the client.
func (o krb5Options) gssAuth(sec, host string) (*rpc.GSSAuth, *krb5.Mechanism, error) {
	creds := krb5.CCache("")
	if o.keytab != "" {
		creds = krb5.Keytab(o.keytab, o.principal)
	}
	service := o.service
	if service == "" {
		service = defaultService(host)
	}
	mech, err := krb5.New(krb5.Config{Krb5Conf: o.conf, Credentials: creds, Service: service})
	if err != nil {
		return nil, nil, err
	}
	svc := rpc.GSSNone
	switch sec {
	case "krb5i":
		svc = rpc.GSSIntegrity
	case "krb5p":
		svc = rpc.GSSPrivacy
	}
	auth, err := rpc.NewGSSAuth(mech, svc)
	if err != nil {
		mech.Close()
		return nil, nil, err
	}
	return auth, mech, nil
}

// check checks the Kerberos flags together.
func (o krb5Options) check() error {
	if (o.keytab == "") != (o.principal == "") {
		return &argError{msg: "--keytab and --krb5-principal go together: the keytab FILE and the client's principal in it"}
	}
	return nil
}

// defaultService is the server's principal when --krb5-service names none:
// nfs/ and the host as the URL names it, without its port or brackets.
func defaultService(host string) string {
	name := strings.Trim(host, "[]")
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	return "nfs/" + name
}
