package knfsd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RPC-over-TLS (Config.TLS). The guest's kernel has the kernel TLS
// handshake upcall (CONFIG_NET_HANDSHAKE=y, tls) and the guest has tlshd
// (ktls-utils), the daemon that performs the handshakes for it. A TLS
// server boots the guest's mutual-TLS kernel (mtlskernel.go): with
// Debian's, tlshd verifies a client certificate but cannot hand the
// kernel its identity, and an xprtsec=mtls export refuses every client.

// TLS makes the server offer RPC-over-TLS: tlshd runs in the guest with
// this certificate, trusting CAPEM for client certificates, and besides
// the root export (which takes plain and TLS clients) three more are
// exported:
//
//	TLSExport     xprtsec=tls       TLS without a client certificate; a plain
//	                                client, or one that presents a certificate,
//	                                gets NFS4ERR_WRONGSEC on LOOKUP into it
//	MTLSExport    xprtsec=mtls      TLS with a client certificate CAPEM trusts
//	AnyTLSExport  xprtsec=tls:mtls  either
//
// Each is a directory of the export disk bind-mounted on itself (NFSv4
// LOOKUP changes export only at a mount point), with the root export's
// options (`insecure` too, with Config.Insecure) but fsid.
type TLS struct {
	// CertPEM and KeyPEM are the server's certificate (chain) and key.
	CertPEM, KeyPEM []byte
	// CAPEM is tlshd's trust store, for client certificates.
	CAPEM []byte
}

// The TLS exports' paths in the NFSv4 namespace (and under ExportPath in
// the guest).
const (
	TLSExport    = "/tls"
	MTLSExport   = "/mtls"
	AnyTLSExport = "/anytls"
)

// writeTLSFiles puts the certificate, key and trust store in the state
// directory, where init.sh finds them.
func writeTLSFiles(dir string, t *TLS) error {
	for name, data := range map[string][]byte{"tls-cert.pem": t.CertPEM, "tls-key.pem": t.KeyPEM, "tls-ca.pem": t.CAPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("knfsd: %w", err)
		}
	}
	return nil
}

// tlsInit returns the part of init.sh, run after the export is mounted
// and before exportfs, that starts tlshd and prepares the TLS exports'
// mount points; "" without TLS.
func (s *Server) tlsInit() string {
	if s.cfg.TLS == nil {
		return ""
	}
	return fmt.Sprintf(`modprobe tls
mkdir -p /etc/tlshd
cp /gonfs/tls-cert.pem /gonfs/tls-key.pem /gonfs/tls-ca.pem /etc/tlshd/
cat >/etc/tlshd.conf <<'EOF'
[debug]
loglevel=1
tls=1
nl=1
[authenticate]
[authenticate.client]
x509.truststore=/etc/tlshd/tls-ca.pem
[authenticate.server]
x509.certificate=/etc/tlshd/tls-cert.pem
x509.private_key=/etc/tlshd/tls-key.pem
x509.truststore=/etc/tlshd/tls-ca.pem
EOF
tlshd -s >/gonfs/tlshd.log 2>&1 &
for d in %[1]s%[2]s %[1]s%[3]s %[1]s%[4]s; do
	mkdir -p $d
	chmod 777 $d
	mount --bind $d $d
done
`, ExportPath, TLSExport, MTLSExport, AnyTLSExport)
}

// tlsExports returns the lines /etc/exports gets for the TLS exports.
func (s *Server) tlsExports() string {
	if s.cfg.TLS == nil {
		return ""
	}
	base := strings.Replace(s.cfg.exportOptions(), "fsid=0", "fsid=%d", 1)
	var b strings.Builder
	for i, e := range [...][2]string{{TLSExport, "tls"}, {MTLSExport, "mtls"}, {AnyTLSExport, "tls:mtls"}} {
		fmt.Fprintf(&b, "echo '%s%s %s(%s,xprtsec=%s)' >>/etc/exports\n", ExportPath, e[0], guestNet, fmt.Sprintf(base, 101+i), e[1])
	}
	return b.String()
}
