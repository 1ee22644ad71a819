#!/usr/bin/env bash
# fuzz.sh MODULE...: runs every fuzz target in the given modules (default:
# the library's) for a short, bounded search. Each target's committed corpus
# (testdata/fuzz/<Name>/) is also replayed by plain `go test`; this adds new
# random inputs on top.
#
# The budget is a count of executions (FUZZTIME, default 100000x), not a
# duration: with a duration, Go 1.26's fuzz coordinator can report a
# spurious "context deadline exceeded" failure when the deadline lands
# while it is busy (golang/go#75804, fixed in Go 1.27). A count never takes
# that path. -timeout still bounds each target's wall-clock time, so a
# hanging input fails the run instead of stalling it.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
fuzztime=${FUZZTIME:-100000x}
[ "$#" -gt 0 ] || set -- .
n=0
for m in "$@"; do
	for pkg in $(cd "$m" && "$go" list ./...); do
		for target in $(cd "$m" && "$go" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
			echo "fuzz: $pkg $target ($fuzztime)"
			(cd "$m" && "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -timeout 5m "$pkg")
			n=$((n + 1))
		done
	done
done
echo "fuzz: $n targets ran for $fuzztime each"
