#!/usr/bin/env bash
# knfsd-image.sh builds (once per recipe; then it returns at once) the cached
# guest of internal/knfsd, the Linux kernel NFS server in user-mode Linux
# that tests start: a Debian trixie root file system with tlshd, its own
# UML kernel from Debian unstable, and a UML kernel for mutual TLS built from
# unstable's kernel source (about 10 minutes on 2 cores), so that no build runs
# inside some test's time budget. It needs root and the packages
# scripts/install-deps.sh installs (debootstrap, e2fsprogs,
# debian-archive-keyring). The guest goes to $GONFS_KNFSD_CACHE, default
# /var/cache/gonfs/knfsd.
set -euo pipefail
cd "$(dirname "$0")/.."
exec env GONFS_REQUIRE_GANESHA=1 "${GO:-go}" test -count=1 -timeout 60m -run '^TestImage$' -v ./internal/knfsd/
