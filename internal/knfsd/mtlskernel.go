package knfsd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The mutual-TLS kernel: a UML kernel built from source as part of the
// guest, which TLS servers (Config.TLS) boot instead of Debian's.
//
// Debian's UML kernels lack CONFIG_ASYMMETRIC_KEY_TYPE: tlshd verifies a
// client's certificate but cannot hand its identity to the kernel
// (add_key fails), so the kernel counts the connection as TLS without a
// client identity and an xprtsec=mtls export refuses every client. This
// kernel is built from Debian unstable's linux-source package of the same
// series as the user-mode-linux package (7.2 when this was written), with
// that package's configuration plus the asymmetric key type and the X.509
// parser.
//
// Debian's own nfsd.ko and tls.ko cannot be used with it: unstable's
// linux-source is usually a few stable releases ahead of the source its
// UML package was built from (7.2.13 against 7.2.7), and modules load
// only into the release they were built for. So every module the TLS
// guest loads is built in, and the rest of Debian's modules are left out,
// which also keeps the build to about 9 minutes on 2 cores (Debian's 860
// modules would take several times as long; an estimate). Its release carries a suffix of its
// own, so its (nearly empty) module tree in the guest, which modprobe
// needs to find nfsd and tls built in, never collides with Debian's.
//
// Only TLS servers boot it; every other server keeps Debian's binary
// kernel, the one the rest of the suite was written against and whose
// behaviour the docs describe. A kernel we configure is one more thing
// that can differ from what users run, so it is used only where Debian's
// cannot do the job.
const (
	// mtlsKernelFile is the kernel's name in the guest's directory.
	mtlsKernelFile = "linux-mtls.uml"
	// mtlsLocalVersion ends the kernel's release string.
	mtlsLocalVersion = "-gonfs-mtls"
)

// mtlsBuildPackages are installed in the build tree (a copy of the
// guest's) to build the kernel; kmod's depmod is already there.
var mtlsBuildPackages = []string{"build-essential", "flex", "bison", "bc", "xz-utils", "libelf-dev", "python3"}

// mtlsBuildScript runs in the build tree as `sh /build/build.sh SERIES
// LIBDIR`: it unpacks linux-source-SERIES, configures and builds the
// kernel, installs its module tree under /build/mods, and leaves the
// stripped kernel, patched to use the loader and libc in LIBDIR (the
// guest's), in /build/linux.uml and its release in /build/release.
//
// The configuration is Debian's UML one with every module turned off,
// then these built in: nfsd and sunrpc, tls, the AEAD ciphers kernel TLS
// may be asked for (TLS 1.3: AES-GCM, AES-CCM, ChaCha20-Poly1305), and
// what tlshd needs to hand the kernel a client certificate's identity
// (the asymmetric key type, its public-key subtype, the X.509 parser, RSA
// and ECDSA). No debug information: it only slows the build.
const mtlsBuildScript = `set -eux
series=$1
lib=$2
cd /build
tar -xf /usr/src/linux-source-$series.tar.xz
cd linux-source-$series
zcat /usr/share/doc/user-mode-linux/config.gz | sed -e 's/^\(CONFIG_[A-Z0-9_]*\)=m$/# \1 is not set/' >.config
./scripts/config --set-str LOCALVERSION ` + mtlsLocalVersion + ` --disable LOCALVERSION_AUTO \
	--disable DEBUG_INFO --enable DEBUG_INFO_NONE --disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT \
	--enable NFSD --enable SUNRPC --enable SUNRPC_GSS --enable LOCKD --enable TLS \
	--enable CRYPTO_GCM --enable CRYPTO_CTR --enable CRYPTO_CCM --enable CRYPTO_CHACHA20POLY1305 \
	--enable ASYMMETRIC_KEY_TYPE --enable ASYMMETRIC_PUBLIC_KEY_SUBTYPE --enable X509_CERTIFICATE_PARSER \
	--enable CRYPTO_RSA --enable CRYPTO_ECDSA
make ARCH=um olddefconfig
for o in NFSD NFSD_V4 SUNRPC TLS NET_HANDSHAKE ASYMMETRIC_KEY_TYPE ASYMMETRIC_PUBLIC_KEY_SUBTYPE \
	X509_CERTIFICATE_PARSER CRYPTO_RSA CRYPTO_ECDSA CRYPTO_GCM HOSTFS UML_NET_VECTOR EXT4_FS BLK_DEV_UBD; do
	grep -qx "CONFIG_$o=y" .config || { echo "gonfs: CONFIG_$o is not built in"; exit 1; }
done
make ARCH=um -j"$(nproc)" linux modules
make ARCH=um modules_install INSTALL_MOD_PATH=/build/mods
make ARCH=um -s kernelrelease >/build/release
rm -f /build/mods/lib/modules/*/build
strip -o /build/linux.uml linux
patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --set-rpath "$lib" /build/linux.uml
`

// buildMTLSKernel builds the mutual-TLS kernel in a copy of root (the
// guest's tree, with unstable's sources still configured and the UML
// package installed), puts its module tree into root and the kernel into
// out, and returns a line for the kernel-version file. series is the
// UML package's kernel series ("7.2"); lib is where the guest's loader
// and libc will be.
func buildMTLSKernel(ctx context.Context, log, root, out, series, lib string) (string, error) {
	kb := filepath.Join(out, "kbuild")
	defer os.RemoveAll(kb)
	source := "linux-source-" + series
	if err := run(ctx, log, "cp", "-a", root, kb); err != nil {
		return "", err
	}
	install := append([]string{"chroot", kb, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "--no-install-recommends", "install"},
		mtlsBuildPackages...)
	if err := run(ctx, log, append(install, source+"/"+kernelSuite)...); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(kb, "build"), 0o755); err != nil {
		return "", fmt.Errorf("knfsd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(kb, "build/build.sh"), []byte(mtlsBuildScript), 0o644); err != nil {
		return "", fmt.Errorf("knfsd: %w", err)
	}
	if err := run(ctx, log, "chroot", kb, "sh", "/build/build.sh", series, lib); err != nil {
		return "", err
	}
	rel, err := os.ReadFile(filepath.Join(kb, "build/release"))
	if err != nil {
		return "", fmt.Errorf("knfsd: the mTLS kernel's release: %w", err)
	}
	release := strings.TrimSpace(string(rel))
	if !strings.HasSuffix(release, mtlsLocalVersion) || strings.ContainsAny(release, "/ ") {
		return "", fmt.Errorf("knfsd: the mTLS kernel's release is %q", release)
	}
	version, err := exec.CommandContext(ctx, "chroot", kb, "dpkg-query", "-W", "-f", "${Version}", source).Output()
	if err != nil {
		return "", fmt.Errorf("knfsd: the kernel source's version: %w", err)
	}
	steps := [][]string{
		{"mkdir", "-p", filepath.Join(root, "lib/modules")},
		{"cp", "-a", filepath.Join(kb, "build/mods/lib/modules", release), filepath.Join(root, "lib/modules/")},
		{"mv", filepath.Join(kb, "build/linux.uml"), filepath.Join(out, mtlsKernelFile)},
	}
	for _, args := range steps {
		if err := run(ctx, log, args...); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("mtls kernel: %s %s (release %s)\n", source, version, release), nil
}

// mtlsKernel is the guest's mutual-TLS kernel.
func (g guest) mtlsKernel() string { return filepath.Join(g.dir, mtlsKernelFile) }
