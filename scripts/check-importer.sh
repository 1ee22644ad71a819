#!/usr/bin/env bash
# check-importer.sh: what a service that imports the library gets.
#
# It builds a scratch module that imports the library's packages (nfs4, rpc,
# rpc/xdr, xprt, policy) through a replace directive pointing at this
# repository, and fails if
#   - its module graph (go list -m all) holds anything but the library, the
#     modules the library's go.mod requires (golang.org/x/sys,
#     cenkalti/backoff/v4, and go.uber.org/goleak and buildbarn/go-xdr, which
#     only the library's own tests use), or
#   - the packages it links come from any module but the library, x/sys and
#     backoff.
# The tools' dependencies (progressbar, x/term, gonum, vmware/go-nfs-client)
# live in the examples and bench modules, and gokrb5 in the krb5 module; they
# must never appear here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cat >"$scratch/go.mod" <<MOD
module example.com/importer

go 1.24

require github.com/gonfs/nfs v0.0.0

replace github.com/gonfs/nfs => $root
MOD
cat >"$scratch/main.go" <<'GO'
package main

import (
	_ "github.com/gonfs/nfs/nfs4"
	_ "github.com/gonfs/nfs/policy"
	_ "github.com/gonfs/nfs/rpc"
	_ "github.com/gonfs/nfs/rpc/xdr"
	_ "github.com/gonfs/nfs/xprt"
)

func main() {}
GO

cd "$scratch"
export GOWORK=off GOFLAGS=-mod=mod
go mod tidy

status=0
graph=$(go list -m -f '{{.Path}}' all)
for m in $graph; do
	case "$m" in
	example.com/importer | github.com/gonfs/nfs | golang.org/x/sys | github.com/cenkalti/backoff/v4 | \
		go.uber.org/goleak | github.com/buildbarn/go-xdr) ;;
	*)
		echo "check-importer: an importer's module graph holds $m" >&2
		status=1
		;;
	esac
done
linked=$(go list -deps -f '{{if not .Standard}}{{.Module.Path}}{{end}}' . | sort -u)
for m in $linked; do
	case "$m" in
	example.com/importer | github.com/gonfs/nfs | golang.org/x/sys | github.com/cenkalti/backoff/v4) ;;
	*)
		echo "check-importer: an importer links packages of $m" >&2
		status=1
		;;
	esac
done
if [ "$status" -eq 0 ]; then
	echo "check-importer: an importer's module graph:" $graph
	echo "check-importer: modules it links:" $linked
fi
exit "$status"
