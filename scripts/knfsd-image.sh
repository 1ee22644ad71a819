#!/usr/bin/env bash
# knfsd-image.sh builds (once per recipe; then it returns at once) the cached
# guest images of internal/knfsd, the Linux kernel NFS server in user-mode
# Linux that tests start — the bookworm guest (2–4 minutes of debootstrap)
# and the trixie guest with its own UML kernel and tlshd for RPC-over-TLS
# (about 6 minutes) — so that no build runs inside some test's time budget. It needs root and the packages
# scripts/install-deps.sh installs (user-mode-linux, debootstrap, e2fsprogs,
# debian-archive-keyring). The image goes to $GONFS_KNFSD_CACHE, default
# /var/cache/gonfs/knfsd.
set -euo pipefail
cd "$(dirname "$0")/.."
exec env GONFS_REQUIRE_GANESHA=1 "${GO:-go}" test -count=1 -timeout 30m -run '^(TestImage|TestTLSImage)$' -v ./internal/knfsd/
