package krb5_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/gonfs/nfs/krb5"
	"github.com/gonfs/nfs/rpc"
)

// A service that mounts with sec=krb5p as its host's NFS client principal,
// whose keys are in the system keytab. krb5.conf is $KRB5_CONFIG or
// /etc/krb5.conf.
func Example() {
	mech, err := krb5.New(krb5.Config{
		Credentials: krb5.Keytab("/etc/krb5.keytab", "nfs-client/host.example.com"),
		Service:     "nfs/server.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mech.Close()

	// mech is what RPCSEC_GSS needs; the service it protects calls with
	// is chosen there: rpc.GSSNone (krb5), GSSIntegrity (krb5i) or
	// GSSPrivacy (krb5p).
	var _ rpc.GSSMechanism = mech
}

// A tool run by a user after kinit: the credentials are the user's cache,
// and an expired ticket is reported so the user knows what to do.
func ExampleCCache() {
	mech, err := krb5.New(krb5.Config{
		Credentials: krb5.CCache(""), // $KRB5CCNAME, else /tmp/krb5cc_<uid>
		Service:     "nfs/server.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mech.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = mech.InitContext(ctx)
	switch {
	case errors.Is(err, krb5.ErrExpired):
		log.Fatal("your Kerberos ticket has expired: run kinit")
	case errors.Is(err, krb5.ErrClockSkew):
		log.Fatal("this machine's clock is off: check NTP")
	case err != nil:
		log.Fatal(err)
	}
}
