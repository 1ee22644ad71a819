// Package bench measures this module against the NFS clients a user would
// pick instead, side by side in one run on one machine, and against the
// machine's own limits.
//
// Absolute numbers drift on shared machines; ratios measured in the same
// run, with every contender interleaved (A B C, B C A ..., never AAA BBB
// CCC), hold much better. That is the point of the package.
//
// It has two halves:
//
//   - micro_test.go: go test -bench benchmarks of the reconnect cost per
//     stock policy against an in-process responder and of single calls to
//     a real Ganesha, and the proof that the reconnect machinery adds no
//     allocation to a steady-state call. The hot RPC path's benchmarks
//     live in rpc, xprt and nfs4; make bench runs them all.
//   - the macro comparison, driven by cmd/benchrun: a real NFS-Ganesha on
//     loopback (Setup), a 1 GiB file, and Contenders that copy it in and
//     out — this library in-process, the nfscp tool, libnfs's nfs-cp,
//     github.com/vmware/go-nfs-client, raw loopback TCP and a local read —
//     plus OpsContenders for small operations (GETATTR, LOOKUP) at 1, 8
//     and 64 goroutines. Summarize, WriteCSV, WriteReport and WriteChart
//     turn the samples into bench/results/.
//
// Only this package imports github.com/vmware/go-nfs-client; the library's
// own packages never do.
//
// Run everything with
//
//	make bench
//
// which runs the micro-benchmarks and then
//
//	go run ./bench/cmd/benchrun -runs 5 -out bench/results
package bench
