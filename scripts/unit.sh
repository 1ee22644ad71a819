#!/usr/bin/env bash
# unit.sh MODULE...: the race-enabled test suite of each module (a directory
# holding a go.mod), the modules side by side. Each module's output is
# printed when it finishes; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

declare -A pid
for m in "$@"; do
	log="$logs/$(echo "$m" | tr / _).log"
	echo "unit: testing module $m"
	(cd "$m" && exec "$go" test -race -count=1 -timeout 25m ./...) >"$log" 2>&1 &
	pid[$m]=$!
done

status=0
for m in "$@"; do
	if wait "${pid[$m]}"; then
		echo "unit: module $m: ok"
	else
		echo "unit: module $m: FAILED"
		status=1
	fi
	cat "$logs/$(echo "$m" | tr / _).log"
done
exit "$status"
