package knfsd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RPCSEC_GSS with Kerberos V5 (Config.Kerberos). Debian's UML kernel has
// the server side as modules (auth_rpcgss, rpcsec_gss_krb5), and the
// guest's nfs-common has rpc.svcgssd, the daemon that answers the
// kernel's context-creation upcall (/proc/net/rpc/auth.rpcsec.init): it
// accepts the client's AP-REQ with MIT's GSS-API and the keytab, and
// hands the kernel the session key and the credential the principal maps
// to. So the guest needs nothing that its image lacks: no gssproxy (not
// installed; nothing writes /proc/net/rpc/use-gss-proxy, so the kernel
// takes the legacy upcall at the first context and the file reads 0
// after), no KDC (an acceptor needs only its keytab; the guest's
// namespace has no route to the host's loopback, where internal/kdc
// serves, and the contexts are made all the same).
//
// svcgssd runs with -n, an acceptor of no name of its own, so it accepts
// a ticket for any principal in the keytab, as Ganesha's acceptor does,
// whatever host the principal names. A principal that libnfsidmap cannot
// map to a user of the guest (every test principal: the guest's passwd
// has the system users alone) is the export's anonymous user (65534), so
// the Kerberos exports' directories are writable by everyone.

// Kerberos makes the server accept RPCSEC_GSS with Kerberos V5: the
// guest gets this krb5.conf and keytab, starts rpc.svcgssd, and besides
// the root export, which takes sys, krb5, krb5i and krb5p, exports three
// more, one per service:
//
//	Krb5Export   sec=krb5   authentication alone
//	Krb5iExport  sec=krb5i  integrity
//	Krb5pExport  sec=krb5p  privacy
//
// A client of another flavor gets NFS4ERR_WRONGSEC in them. Each is a
// directory of the export disk bind-mounted on itself, writable by
// everyone, with the root export's options but fsid. Kerberos cannot be
// combined with TLS: the mutual-TLS kernel has no RPCSEC_GSS Kerberos
// mechanism.
type Kerberos struct {
	// Krb5Conf is the host path of the krb5.conf the guest's Kerberos
	// library reads (/etc/krb5.conf there); its default_realm is the
	// realm principals map in. The KDCs it names are never contacted.
	// internal/kdc's KDC.Krb5Conf is one.
	Krb5Conf string
	// Keytab is the host path of the keytab holding the service
	// principals' keys (/etc/krb5.keytab in the guest), such as one of
	// nfs/localhost from internal/kdc's KDC.Keytab.
	Keytab string
}

// The Kerberos exports' paths in the NFSv4 namespace (and under
// ExportPath in the guest).
const (
	Krb5Export  = "/krb5"
	Krb5iExport = "/krb5i"
	Krb5pExport = "/krb5p"
)

// rootSec returns what the root export's options end with: with
// Kerberos, every flavor (",sec=sys:krb5:krb5i:krb5p"), so that a
// Kerberos client may LOOKUP from it into the Kerberos exports and an
// AUTH_SYS one still works as without; "" without.
func (s *Server) rootSec() string {
	if s.cfg.Kerberos == nil {
		return ""
	}
	return ",sec=sys:krb5:krb5i:krb5p"
}

// checkKerberos reports what is wrong with c's Kerberos, if set.
func (c Config) checkKerberos() error {
	k := c.Kerberos
	if k == nil {
		return nil
	}
	if c.TLS != nil {
		return errors.New("knfsd: Kerberos and TLS together: the mutual-TLS kernel has no rpcsec_gss_krb5")
	}
	for _, f := range [...][2]string{{"Krb5Conf", k.Krb5Conf}, {"Keytab", k.Keytab}} {
		if f[1] == "" {
			return fmt.Errorf("knfsd: Kerberos.%s is empty", f[0])
		}
	}
	return nil
}

// writeKerberosFiles copies the krb5.conf and the keytab into the state
// directory, where init.sh finds them.
func writeKerberosFiles(dir string, k *Kerberos) error {
	for _, f := range [...][2]string{{k.Krb5Conf, "krb5.conf"}, {k.Keytab, "krb5.keytab"}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			return fmt.Errorf("knfsd: Kerberos: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f[1]), data, 0o600); err != nil {
			return fmt.Errorf("knfsd: %w", err)
		}
	}
	return nil
}

// krb5Init returns the part of init.sh, run after the export is mounted
// and before exportfs, that loads the Kerberos mechanism, starts
// rpc.svcgssd and prepares the Kerberos exports' mount points; "" without
// Kerberos. svcgssd logs to StateDir/svcgssd.log.
func (s *Server) krb5Init() string {
	if s.cfg.Kerberos == nil {
		return ""
	}
	return fmt.Sprintf(`modprobe rpcsec_gss_krb5
cp /gonfs/krb5.conf /etc/krb5.conf
cp /gonfs/krb5.keytab /etc/krb5.keytab
chmod 600 /etc/krb5.keytab
rpc.svcgssd -f -n -v >/gonfs/svcgssd.log 2>&1 &
for d in %[1]s%[2]s %[1]s%[3]s %[1]s%[4]s; do
	mkdir -p $d
	chmod 777 $d
	mount --bind $d $d
done
`, ExportPath, Krb5Export, Krb5iExport, Krb5pExport)
}

// FlushGSSContexts empties the kernel's cache of RPCSEC_GSS contexts,
// as a reboot of the server would: a client's next call under one of them
// is refused (RPCSEC_GSS_CREDPROBLEM) and the client must create a new
// one. RestartNFSD alone keeps them: they live in the sunrpc cache of
// the guest's network namespace, not in nfsd. Call it between StopNFSD
// and StartNFSD for a restart that loses them.
func (s *Server) FlushGSSContexts(ctx context.Context) error {
	_, err := s.Exec(ctx, "echo 1 >/proc/net/rpc/auth.rpcsec.context/flush")
	return err
}

// krb5Exports returns the lines /etc/exports gets for the Kerberos
// exports.
func (s *Server) krb5Exports() string {
	if s.cfg.Kerberos == nil {
		return ""
	}
	base := strings.Replace(s.cfg.exportOptions(), "fsid=0", "fsid=%d", 1)
	var b strings.Builder
	for i, e := range [...][2]string{{Krb5Export, "krb5"}, {Krb5iExport, "krb5i"}, {Krb5pExport, "krb5p"}} {
		fmt.Fprintf(&b, "echo '%s%s %s(%s,sec=%s)' >>/etc/exports\n", ExportPath, e[0], guestNet, fmt.Sprintf(base, 111+i), e[1])
	}
	return b.String()
}
