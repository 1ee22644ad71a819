package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/xprt"
)

// RPC-over-TLS (RFC 9289), asked for per server by the xprtsec setting:
// tls verifies the server's certificate against --tls-ca (or the system's
// roots), mtls also presents the client certificate of --tls-cert and
// --tls-key. Neither ever falls back to plain text: a server that does not
// offer TLS is an error.

// loadTLS reads the files the --tls flags name, and checks that every
// server asked for with xprtsec=mtls has a client certificate to present.
// Its errors are command-line errors.
func (o *dialOptions) loadTLS(locs []location) error {
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return &argError{msg: "--tls-ca: " + reason(err) + ": " + o.tlsCA}
		}
		o.tlsRoots = x509.NewCertPool()
		if !o.tlsRoots.AppendCertsFromPEM(pem) {
			return &argError{msg: "--tls-ca: no PEM certificate in " + o.tlsCA}
		}
	}
	switch {
	case o.tlsCert != "" && o.tlsKey == "":
		return &argError{msg: "--tls-cert needs --tls-key, the certificate's private key"}
	case o.tlsKey != "" && o.tlsCert == "":
		return &argError{msg: "--tls-key needs --tls-cert, the client certificate"}
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return &argError{msg: "--tls-cert, --tls-key: " + reason(pe.Err) + ": " + pe.Path}
			}
			return &argError{msg: "--tls-cert, --tls-key: " + err.Error()}
		}
		o.tlsClient = &cert
	}
	for _, l := range locs {
		if l.remote != nil && l.remote.settings.XprtSec == "mtls" && o.tlsClient == nil {
			return &argError{arg: l.arg, msg: "xprtsec=mtls needs a client certificate: --tls-cert FILE and --tls-key FILE"}
		}
	}
	return nil
}

// tlsOptions are the transport's TLS options for the xprtsec setting x.
// The client certificate goes only with mtls: a Linux server refuses a
// client that presents one on an xprtsec=tls export.
func (o *dialOptions) tlsOptions(x string) xprt.TLSOptions {
	cfg := &tls.Config{RootCAs: o.tlsRoots}
	switch x {
	case "tls":
		return xprt.TLSOptions{Mode: xprt.TLSRequired, Config: cfg}
	case "mtls":
		cfg.Certificates = []tls.Certificate{*o.tlsClient} // loadTLS has checked it is there
		return xprt.TLSOptions{Mode: xprt.TLSMutual, Config: cfg}
	}
	return xprt.TLSOptions{}
}

// tlsReason words a connection that could not be secured, or a refusal
// that may come from the export's xprtsec option; "" for other errors.
func tlsReason(err error) string {
	var te *xprt.TLSError
	if errors.Is(err, nfs4.ErrWrongSec) {
		return "the export refuses this client's security (NFS4ERR_WRONGSEC): it may need Kerberos (sec=krb5, krb5i or krb5p), RPC-over-TLS (xprtsec=tls), " +
			"a client certificate (xprtsec=mtls), or no client certificate (Linux's xprtsec=tls exports)"
	}
	if !errors.As(err, &te) {
		return ""
	}
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var oe *net.OpError
	switch {
	case errors.Is(err, xprt.ErrTLSNotOffered):
		return fmt.Sprintf("the server does not offer RPC-over-TLS, which xprtsec=%s asks for (a Linux server needs tlshd running)", te.Mode)
	case errors.As(err, &cve):
		msg := "the server's certificate does not verify: " + cve.Err.Error()
		if errors.As(err, &ua) {
			msg += " (give its CA with --tls-ca)"
		}
		return msg
	case te.Final && errors.As(err, &oe) && oe.Op == "remote error":
		if te.Mode == xprt.TLSMutual {
			return "the server refused the client certificate (--tls-cert): " + oe.Error()
		}
		return "the server refused the TLS session: " + oe.Error()
	}
	return ""
}
