// Package soak is the chaos soak: several goroutines share one
// nfs4.Client and create, write, read back, rename, remove and list files
// for a long time while the lab (package lab, internal/netlab) breaks the
// path to the server at random moments: connection resets, a server
// killed with SIGKILL and restarted, silent blackholes shorter and longer
// than the lease, and a failover to a standby server behind a stateful
// load balancer. Every result is checked against a model the test keeps;
// afterwards the exported directory must hold exactly what the client was
// told it holds.
//
// The soak is the package's test. go test ./lab/soak/ runs one round of
// every fault (under a minute); SOAK_DURATION=30m runs rounds until that
// much time has passed, and SOAK_SEED reproduces a run's fault schedule
// and workload choices (not its timing). make soak runs the long version
// and writes its report to lab/results/soak-latest.md; docs/soak.md
// explains what is checked and what a run found.
package soak
