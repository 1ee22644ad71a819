# The two commands a new user types on a fresh Debian machine (as root):
#   make demo   installs what is missing, then copies a 256 MiB file into a
#               local NFS-Ganesha and back with nfscp while the server is
#               killed and restarted mid-copy
#   make test   installs what is missing, then gofmt, go vet, staticcheck, the
#               importer check, the race-enabled test suite of every module
#               (real NFS-Ganesha servers included) and every fuzz target briefly
#
# The repository holds four modules: the library (.), the Kerberos V5
# mechanism (krb5/, which brings gokrb5), the example tools (examples/) and
# the benchmarks (bench/); each of the last three requires the library
# through a replace directive, so their dependencies never reach a service
# that imports the library (scripts/check-importer.sh checks that).

GO          ?= go
FUZZTIME    ?= 100000x
MODULES     := . krb5 examples bench
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test deps knfsd-image vet unit fuzz sweep bench demo lab soak nfscp-rss

test: deps knfsd-image vet unit fuzz

deps:
	bash scripts/install-deps.sh

# The Linux kernel NFS server's guest image (internal/knfsd), built once and
# cached in /var/cache/gonfs/knfsd so no test pays for it.
knfsd-image: deps
	GO=$(GO) bash scripts/knfsd-image.sh

vet:
	@files=$$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'); \
	test -z "$$(gofmt -l $$files)" || { echo "gofmt needed:"; gofmt -l $$files; exit 1; }
	@for m in $(MODULES); do \
		echo "vet: $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; \
	done
	bash scripts/check-importer.sh

# GONFS_REQUIRE_GANESHA turns a missing or failing NFS-Ganesha into a test
# failure instead of a skip. The library's, the Kerberos mechanism's and the
# examples' suites run side by side; the benchmarks' runs after them,
# because its NFSv3 peer finds Ganesha's MOUNT service through the host's one rpcbind, where the other
# suites' Ganesha servers register and unregister theirs.
unit:
	GONFS_REQUIRE_GANESHA=1 GO=$(GO) bash scripts/unit.sh . krb5 examples
	GONFS_REQUIRE_GANESHA=1 GO=$(GO) bash scripts/unit.sh bench

# The hostile-server sweeps in full (docs/testing.md); make test runs a sample.
sweep:
	GONFS_SWEEP=long $(GO) test -race -count=1 -timeout 0 -run 'TestSweep' -v ./nfs4/

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh $(MODULES)

# Benchmarks: the micro-benchmarks, 5 runs each, then the comparison against
# the peers on one Ganesha and, for the same-server copy, knfsd
# (bench/cmd/benchrun), which writes bench/results/REPORT.md, results.csv
# and throughput.png.
# BENCH_CONDITIONS describes the machine's load for the report.
BENCH_RUNS       ?= 5
BENCH_CONDITIONS ?= not stated
BENCH_MICRO      := $(CURDIR)/bench/results/micro.txt
bench: deps knfsd-image
	mkdir -p bench/results
	GONFS_REQUIRE_GANESHA=1 $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_RUNS) ./rpc/ ./xprt/ > $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	GONFS_REQUIRE_GANESHA=1 $(GO) test -run '^$$' -bench 'BuildReadCompound|DecodeReadReply|Getattr' -benchmem -count $(BENCH_RUNS) ./nfs4/ >> $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	cd bench && GONFS_REQUIRE_GANESHA=1 $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_RUNS) . >> $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	cat $(BENCH_MICRO)
	cd bench && $(GO) run ./cmd/benchrun -runs $(BENCH_RUNS) -out $(CURDIR)/bench/results -micro $(BENCH_MICRO) -lab $(CURDIR)/lab/results/latest.csv -conditions '$(BENCH_CONDITIONS)'

# nfscp against a Ganesha on loopback that is killed and restarted mid-copy.
demo: deps
	cd examples && $(GO) run ./nfscp/internal/demo

# Peak RSS of nfscp -r copying trees of 1,000, 100,000 and 1,000,000 empty
# files from a Ganesha on loopback (docs/nfscp.md has the results); about
# 20 minutes on two cores. RSS_FLAGS=-files=1000,100000 for a shorter run.
RSS_FLAGS ?=
nfscp-rss: deps
	cd examples && $(GO) run ./nfscp/internal/rss $(RSS_FLAGS)

# The fault lab: every stock policy against every field failure, in network
# namespaces with real Ganesha servers (root needed). Writes the matrix to
# lab/results/latest.md and latest.csv, the full log to LABLOG. make test
# runs the same tests under -race without writing them.
LABLOG ?= /tmp/gonfs-lab.log
lab: deps
	GONFS_REQUIRE_GANESHA=1 GONFS_LAB_RESULTS=$(CURDIR)/lab/results LAB_OUTAGES=15s,60s,5m $(GO) test -count=1 -timeout 15m -v ./lab/ >$(LABLOG) 2>&1; \
	status=$$?; grep -E '^(--- |ok|FAIL)|×' $(LABLOG); cat lab/results/latest.md; echo "full log: $(LABLOG)"; exit $$status

# The chaos soak (lab/soak, root needed): four goroutines on one client
# while every lab fault hits it in random order, for SOAK_DURATION, under
# the race detector; then everything acknowledged is checked on the
# server's disk. Writes lab/results/soak-latest.md and prints it, the
# full log to SOAKLOG. SOAK_SEED=N replays a run's schedule; SOAK_TIMEOUT
# must exceed SOAK_DURATION by 10 minutes. make test runs one round of
# faults (about a minute). docs/soak.md has the details.
SOAK_DURATION ?= 30m
SOAK_TIMEOUT  ?= 60m
SOAKLOG       ?= /tmp/gonfs-soak.log
soak: deps
	rm -f lab/results/soak-latest.md
	GONFS_REQUIRE_GANESHA=1 GONFS_SOAK_RESULTS=$(CURDIR)/lab/results SOAK_DURATION=$(SOAK_DURATION) $(GO) test -race -count=1 -timeout $(SOAK_TIMEOUT) -v -run '^TestSoak$$' ./lab/soak/ >$(SOAKLOG) 2>&1; \
	status=$$?; grep -E '^(--- |ok|FAIL)|soak: seed' $(SOAKLOG); cat lab/results/soak-latest.md 2>/dev/null; echo "full log: $(SOAKLOG)"; exit $$status
