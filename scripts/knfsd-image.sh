#!/usr/bin/env bash
# knfsd-image.sh builds (once per recipe; then it returns at once) the cached
# guest image of internal/knfsd, the Linux kernel NFS server in user-mode
# Linux that tests start, so that the 2–4 minute debootstrap does not run
# inside some test's time budget. It needs root and the packages
# scripts/install-deps.sh installs (user-mode-linux, debootstrap, e2fsprogs,
# debian-archive-keyring). The image goes to $GONFS_KNFSD_CACHE, default
# /var/cache/gonfs/knfsd.
set -euo pipefail
cd "$(dirname "$0")/.."
exec env GONFS_REQUIRE_GANESHA=1 "${GO:-go}" test -count=1 -timeout 15m -run '^TestImage$' -v ./internal/knfsd/
