#!/usr/bin/env bash
# install-deps.sh installs the Debian packages this module's tests need:
# NFS-Ganesha with its VFS backend (the real server every integration test
# starts), rpcbind (Ganesha's NFSv3 needs it), the tools the network lab
# uses (nftables, conntrack, iproute2, capsh, setpriv, fsfreeze), libnfs's nfs-cp,
# a peer the benchmarks compare against (make bench), MIT Kerberos (the
# KDC, kadmin.local, kinit and klist that internal/kdc runs, and
# libfaketime for a KDC with its clock off), and what building
# the Linux kernel NFS server's user-mode Linux guest needs (debootstrap,
# e2fsprogs, debian-archive-keyring; scripts/knfsd-image.sh then builds
# the guest once, its UML kernel included, from Debian's archive).
#
# It is idempotent and quick when everything is present: each package is
# probed first (by a command it provides, or for nfs-ganesha-vfs by its
# plugin file), and apt-get runs once, only for what is missing.
# Installing needs root; run as another user it lists what is missing and
# exits 1. Go itself is assumed to be installed (/usr/local/go).
#
# Tested on Debian 12 (bookworm).
set -euo pipefail

# The sbin directories are often missing from a non-root PATH; the probes
# below look for tools that live there.
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

packages=(
	nfs-ganesha
	nfs-ganesha-vfs
	rpcbind
	nftables
	conntrack
	iproute2
	libcap2-bin
	util-linux
	libnfs-utils
	debootstrap
	e2fsprogs
	debian-archive-keyring
	krb5-kdc
	krb5-admin-server
	krb5-user
	faketime
)

# probe PKG succeeds when what the tests use from PKG is installed.
probe() {
	case "$1" in
	nfs-ganesha) command -v ganesha.nfsd ;;
	nfs-ganesha-vfs)
		# Debian's multiarch plugin directory, or the upstream default.
		compgen -G '/usr/lib/*/ganesha/libfsalvfs.so' ||
			compgen -G '/usr/lib*/ganesha/libfsalvfs.so'
		;;
	rpcbind) command -v rpcbind ;;
	nftables) command -v nft ;;
	conntrack) command -v conntrack ;;
	iproute2) command -v ip ;;
	libcap2-bin) command -v capsh ;;
	util-linux) command -v setpriv && command -v unshare && command -v nsenter && command -v fsfreeze ;;
	libnfs-utils) command -v nfs-cp ;;
	debootstrap) command -v debootstrap ;;
	e2fsprogs) command -v mkfs.ext4 ;;
	debian-archive-keyring) test -f /usr/share/keyrings/debian-archive-keyring.gpg ;;
	krb5-kdc) command -v krb5kdc && command -v kdb5_util ;;
	krb5-admin-server) command -v kadmin.local ;;
	krb5-user) command -v kinit && command -v klist ;;
	faketime) compgen -G '/usr/lib/*/faketime/libfaketime.so.1' ;;
	*)
		echo "install-deps: no probe for package $1" >&2
		return 2
		;;
	esac >/dev/null
}

missing() {
	local pkg
	for pkg in "${packages[@]}"; do
		probe "$pkg" || echo "$pkg"
	done
}

if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	echo "install-deps: warning: Go is not installed (expected in /usr/local/go or on PATH)" >&2
fi

mapfile -t need < <(missing)
if [ "${#need[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${need[*]}" >&2
	echo "install-deps: run as root (or: sudo apt-get install --no-install-recommends ${need[*]})" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null; then
	echo "install-deps: missing packages: ${need[*]}; apt-get not found, install them by hand" >&2
	exit 1
fi

# Noninteractive, krb5-config asks nothing and writes Debian's example
# /etc/krb5.conf (realm ATHENA.MIT.EDU) if there is none; the packages'
# KDC and kadmind services find no database and do not run. Neither
# matters: internal/kdc points every tool, and Ganesha, at files of its
# own (KRB5_CONFIG, KRB5_KDC_PROFILE) and never reads /etc/krb5.conf.
echo "install-deps: installing ${need[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"

mapfile -t still < <(missing)
if [ "${#still[@]}" -ne 0 ]; then
	echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
