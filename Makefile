# The two commands a new user types on a fresh Debian machine:
#   make test   installs what is missing, then runs vet, the race-enabled
#               test suite (a real NFS-Ganesha included) and every fuzz target briefly
#   make demo   installs what is missing, then copies a 256 MiB file into a
#               local NFS-Ganesha and back with nfscp while the server is
#               killed and restarted mid-copy (examples/nfscp)

GO       ?= go
FUZZTIME ?= 100000x
PKGS     := ./...

.PHONY: test deps vet unit fuzz bench demo lab

test: deps vet unit fuzz

deps:
	bash scripts/install-deps.sh

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# GONFS_REQUIRE_GANESHA turns a missing or failing NFS-Ganesha into a test
# failure instead of a skip.
unit:
	GONFS_REQUIRE_GANESHA=1 $(GO) test -race -count=1 -timeout 12m $(PKGS)

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# Benchmarks (issue 7): the micro-benchmarks, 5 runs each, then the macro
# comparison against the peers on one Ganesha (bench/cmd/benchrun), which
# writes bench/results/REPORT.md, results.csv and throughput.png.
# BENCH_CONDITIONS describes the machine's load for the report.
BENCH_RUNS       ?= 5
BENCH_CONDITIONS ?= not stated
BENCH_MICRO      := bench/results/micro.txt
bench: deps
	mkdir -p bench/results
	GONFS_REQUIRE_GANESHA=1 $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_RUNS) ./rpc/ ./xprt/ ./bench/ > $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	GONFS_REQUIRE_GANESHA=1 $(GO) test -run '^$$' -bench 'BuildReadCompound|DecodeReadReply|Getattr' -benchmem -count $(BENCH_RUNS) ./nfs4/ >> $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	cat $(BENCH_MICRO)
	$(GO) run ./bench/cmd/benchrun -runs $(BENCH_RUNS) -out bench/results -micro $(BENCH_MICRO) -lab lab/results/latest.csv -conditions '$(BENCH_CONDITIONS)'

# nfscp against a Ganesha on loopback that is killed and restarted mid-copy.
demo: deps
	$(GO) run ./examples/nfscp/internal/demo

# The fault lab (lab/, issue 5): every stock policy against every field
# failure, in network namespaces with real Ganesha servers (root needed).
# Writes the matrix to lab/results/latest.md and latest.csv, the full log to
# LABLOG. make test runs the same tests under -race without writing them.
LABLOG ?= /tmp/gonfs-lab.log
lab: deps
	GONFS_REQUIRE_GANESHA=1 GONFS_LAB_RESULTS=$(CURDIR)/lab/results $(GO) test -count=1 -timeout 10m -v ./lab/ >$(LABLOG) 2>&1; \
	status=$$?; grep -E '^(--- |ok|FAIL)|×' $(LABLOG); cat lab/results/latest.md; echo "full log: $(LABLOG)"; exit $$status
