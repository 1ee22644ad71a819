package knfsd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RPC-over-TLS guests (Config.TLS). Debian 12's UML kernel (6.1) has no
// kernel TLS handshake upcall; Debian 13's (6.12) has it
// (CONFIG_NET_HANDSHAKE=y, tls.ko) and trixie has tlshd (ktls-utils), the
// daemon that performs the handshakes for the kernel. So a TLS guest is a
// trixie root file system that carries its own UML kernel: the image build
// installs user-mode-linux into it and copies the kernel binary out,
// patched (patchelf, run inside the tree) to use the tree's dynamic loader
// and libc, since the host's glibc (2.36) is older than the binary needs
// (2.38). The loader and libc are copied next to it in the cache.
// Everything is cached per recipe, like the bookworm image.
//
// Trixie's UML kernel lacks CONFIG_ASYMMETRIC_KEY_TYPE: tlshd verifies a
// client certificate but cannot hand the kernel its identity, so an
// xprtsec=mtls export refuses every client (NFS4ERR_WRONGSEC). Mutual TLS
// needs a UML kernel built with that option; this package does not build
// one (see TLSMutualWorks).

// TLSMutualWorks reports whether the TLS guest's kernel can admit mutual
// TLS clients to an xprtsec=mtls export. It cannot with Debian's UML
// kernels (no CONFIG_ASYMMETRIC_KEY_TYPE); see the comment above.
const TLSMutualWorks = false

// TLS makes the server offer RPC-over-TLS: tlshd runs in the guest with
// this certificate, and besides the root export (which takes plain and TLS
// clients) two more are exported:
//
//	TLSExport   xprtsec=tls   a plain client gets NFS4ERR_WRONGSEC on LOOKUP into it
//	MTLSExport  xprtsec=mtls  (refuses everyone with Debian's kernels: TLSMutualWorks)
//
// Each is a directory of the export disk bind-mounted on itself (NFSv4
// LOOKUP changes export only at a mount point), with the root export's
// options but fsid.
type TLS struct {
	// CertPEM and KeyPEM are the server's certificate (chain) and key.
	CertPEM, KeyPEM []byte
	// CAPEM is tlshd's trust store, for client certificates.
	CAPEM []byte
}

// The TLS exports' paths in the NFSv4 namespace (and under ExportPath in
// the guest).
const (
	TLSExport  = "/tls"
	MTLSExport = "/mtls"
)

// The TLS guest's recipe; changing any of it changes tlsImageKey.
const (
	tlsRecipeVersion = 1
	tlsSuite         = "trixie"
	// tlsBuildTimeout bounds the build: 6 min on a busy 2-core machine,
	// 10 min on one at load 19.
	tlsBuildTimeout = 15 * time.Minute
)

// tlsPackages are installed besides minbase. user-mode-linux and patchelf
// are there for the build (the kernel binary, its modules, patching it).
var tlsPackages = []string{"nfs-kernel-server", "kmod", "iproute2", "procps", "ktls-utils", "user-mode-linux", "patchelf"}

// tlsBootInit is the TLS guest's PID 1. The 6.12 hostfs takes the host
// directory from the kernel command line (hostfs=), not from mount -o.
const tlsBootInit = `#!/bin/sh
# PID 1 of a gonfs knfsd TLS guest (internal/knfsd): mount the server's
# state directory (hostfs= on the kernel command line) and run its init.sh.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /gonfs
if ! mount -t hostfs none /gonfs; then
	echo "gonfs-init: cannot mount the state directory"
	exit 1
fi
exec /bin/sh /gonfs/init.sh
`

func tlsImageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %d\nsuite %s\nsize %s\n", tlsRecipeVersion, tlsSuite, imageSize)
	fmt.Fprintf(h, "packages %s\ntrimmed %s\ninit %s\n", strings.Join(tlsPackages, ","), strings.Join(trimmed, ","), tlsBootInit)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// tlsGuest is a built TLS guest: its directory in the cache holds
// rootfs.ext4, linux.uml and lib/.
type tlsGuest struct{ dir string }

func (g tlsGuest) image() string  { return filepath.Join(g.dir, "rootfs.ext4") }
func (g tlsGuest) kernel() string { return filepath.Join(g.dir, "linux.uml") }

// EnsureTLSImage builds the TLS guest unless it is cached, and returns
// its directory (see EnsureImage).
func EnsureTLSImage() (string, error) {
	g, err := ensureTLSGuest(func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
	return g.dir, err
}

func ensureTLSGuest(logf func(format string, args ...any)) (tlsGuest, error) {
	g := tlsGuest{dir: filepath.Join(CacheDir(), "tls-"+tlsSuite+"-"+tlsImageKey())}
	if _, err := os.Stat(g.kernel()); err == nil {
		return g, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return g, fmt.Errorf("knfsd: %w", err)
	}
	// A lock of its own: a bookworm build need not wait for this longer
	// one, nor this one for it.
	unlock, err := lockFile(filepath.Join(CacheDir(), "lock-tls"), tlsBuildTimeout+time.Minute, func() {
		logf("knfsd: waiting for another process to build %s", g.dir)
	})
	if err != nil {
		return g, err
	}
	defer unlock()
	if _, err := os.Stat(g.kernel()); err == nil {
		return g, nil
	}
	start := time.Now()
	logf("knfsd: building the TLS guest %s (debootstrap %s with its UML kernel and tlshd; about 6 minutes, once per recipe)", g.dir, tlsSuite)
	ctx, cancel := context.WithTimeout(context.Background(), tlsBuildTimeout)
	defer cancel()
	if err := buildTLSGuest(ctx, g); err != nil {
		return g, err
	}
	logf("knfsd: built %s in %v", g.dir, time.Since(start).Round(time.Second))
	return g, nil
}

// buildTLSGuest builds into a directory of its own and renames it to
// g.dir. The kernel binary is patched for g.dir, its final place.
func buildTLSGuest(ctx context.Context, g tlsGuest) error {
	dir, mirror, err := startBuild("tlsbuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	log := filepath.Join(dir, "build.log")
	if err := run(ctx, log, "debootstrap", "--variant=minbase", "--include="+strings.Join(tlsPackages, ","), tlsSuite, root, mirror); err != nil {
		return err
	}
	return assembleTLSGuest(ctx, log, root, dir, g)
}

// assembleTLSGuest turns the debootstrapped tree root into the guest: the
// kernel copied out and patched, its loader and libc, its modules in the
// tree, the init, the ext4 image. out is the directory renamed to g.dir.
func assembleTLSGuest(ctx context.Context, log, root, out string, g tlsGuest) error {
	mods, err := filepath.Glob(filepath.Join(root, "usr/lib/uml/modules/*"))
	if err != nil || len(mods) != 1 {
		return fmt.Errorf("knfsd: want one UML kernel release in the %s tree, found %v", tlsSuite, mods)
	}
	lib := filepath.Join(g.dir, "lib")
	steps := [][]string{
		{"mkdir", "-p", filepath.Join(out, "lib"), filepath.Join(root, "lib/modules")},
		{"cp", "-L", filepath.Join(root, "lib64/ld-linux-x86-64.so.2"), filepath.Join(out, "lib/")},
		{"cp", "-L", filepath.Join(root, "lib/x86_64-linux-gnu/libc.so.6"), filepath.Join(out, "lib/")},
		{"cp", "-a", mods[0], filepath.Join(root, "lib/modules/")},
		{"cp", filepath.Join(root, "usr/bin/linux.uml"), filepath.Join(root, "tmp/linux.uml")},
		{"chroot", root, "patchelf", "--set-interpreter", filepath.Join(lib, "ld-linux-x86-64.so.2"), "--set-rpath", lib, "/tmp/linux.uml"},
		{"mv", filepath.Join(root, "tmp/linux.uml"), filepath.Join(out, "linux.uml.new")},
	}
	for _, p := range append(trimmed, "usr/lib/uml", "usr/bin/linux.uml") {
		steps = append(steps, []string{"rm", "-rf", filepath.Join(root, p)})
	}
	for _, args := range steps {
		if err := run(ctx, log, args...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "sbin/gonfs-init"), []byte(tlsBootInit), 0o755); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	if err := run(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "gonfsroot", "-d", root, filepath.Join(out, "rootfs.ext4"), imageSize); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	if err := os.Chmod(out, 0o755); err != nil { // MkdirTemp made it 0700
		return fmt.Errorf("knfsd: %w", err)
	}
	os.Remove(log)
	if err := os.Rename(out, g.dir); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	// The kernel last: its presence marks a finished guest.
	if err := os.Rename(filepath.Join(g.dir, "linux.uml.new"), g.kernel()); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	return nil
}

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
for d in %[1]s%[2]s %[1]s%[3]s; do
	mkdir -p $d
	chmod 777 $d
	mount --bind $d $d
done
`, ExportPath, TLSExport, MTLSExport)
}

// tlsExports returns the lines /etc/exports gets for the TLS exports.
func (s *Server) tlsExports() string {
	if s.cfg.TLS == nil {
		return ""
	}
	base := strings.Replace(s.cfg.exportOptions(), "fsid=0", "fsid=%d", 1)
	var b strings.Builder
	for i, e := range [...][2]string{{TLSExport, "tls"}, {MTLSExport, "mtls"}} {
		fmt.Fprintf(&b, "echo '%s%s %s(%s,xprtsec=%s)' >>/etc/exports\n", ExportPath, e[0], guestNet, fmt.Sprintf(base, 101+i), e[1])
	}
	return b.String()
}
