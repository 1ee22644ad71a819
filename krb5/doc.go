// Package krb5 is the Kerberos V5 GSS-API mechanism (RFC 4121) for the
// RPCSEC_GSS security of package rpc (RFC 2203; mount's sec=krb5, krb5i and
// krb5p). It gets tickets with github.com/jcmturner/gokrb5 (RFC 4120: AS and
// TGS exchanges, keytabs, credential caches, krb5.conf, the RFC 3961, 3962
// and 8009 encryption types) and makes the per-message tokens of RFC 4121
// itself. It is a module of its own so that services without Kerberos do
// not link gokrb5.
//
// A service with a keytab:
//
//	mech, err := krb5.New(krb5.Config{
//		Credentials: krb5.Keytab("/etc/krb5.keytab", "nfs-client/host.example.com"),
//		Service:     "nfs/server.example.com",
//	})
//
// mech is an rpc.GSSMechanism; Example shows the whole setup.
package krb5
