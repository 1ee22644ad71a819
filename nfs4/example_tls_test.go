package nfs4_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log"
	"os"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/xprt"
)

// Dial with RPC-over-TLS (RFC 9289), the server authenticated by a private
// CA. Trust rests on the certificate, not on a reserved source port, so
// reconnecting from a fresh ephemeral port gives nothing away. (This
// example needs a server, so it is compiled but not run by go test.)
func ExampleDial_tls() {
	ctx := context.Background()
	caPEM, err := os.ReadFile("/etc/nfs/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	c, err := nfs4.Dial(ctx, "nfs.example:2049", nfs4.Config{
		Policy: policy.Ephemeral(policy.Options{}),
		TLS: xprt.TLSOptions{
			Mode:   xprt.TLSRequired,            // xprt.TLSMutual with Certificates for mutual TLS
			Config: &tls.Config{RootCAs: roots}, // ServerName: "nfs.example" by default
		},
	})
	var te *xprt.TLSError
	switch {
	case errors.Is(err, xprt.ErrTLSNotOffered):
		log.Fatal("the server does not offer TLS: ", err) // never a silent plain-text fallback
	case errors.As(err, &te):
		log.Fatal("TLS failed: ", err) // a certificate refused, by either side
	case err != nil:
		log.Fatal(err)
	}
	defer c.Close()
	log.Printf("%d TLS handshakes so far", c.Stats().Transport.Handshakes)
}
