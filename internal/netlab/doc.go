// Package netlab builds small networks for fault-injection tests out of
// Linux network namespaces, veth pairs, nftables rulesets and traffic
// shaping, and runs processes inside them.
//
//	l := netlab.New(t)
//	c, s := l.NS("client"), l.NS("server")
//	l.Link(c, "10.77.1.2/24", s, "10.77.1.1/24")
//	s.Nft(`table inet f { chain in { type filter hook input priority 0; policy drop; } }`)
//
// Everything a Lab creates is removed when the test ends, also when it
// fails: processes by PID, then namespaces by name (deleting a namespace
// deletes its interfaces, routes, rulesets and connection-tracking table).
// A test binary that is interrupted (SIGINT, SIGTERM) removes them too if
// TestMain called TrapInterrupts; one killed outright leaves them behind,
// and the next run's Sweep deletes them.
//
// Names: every namespace is called "gonfslab-PID-SEQ-ROLE", PID being the
// test process that made it, so that parallel runs never collide and a
// sweep can tell an abandoned namespace (its PID is gone) from a live one.
// Interfaces are created directly inside their namespaces and named after
// the peer's role, so they never appear in the host's namespace.
//
// The namespaces have no link to the host's: traffic sent inside them can
// only reach addresses inside them. Use private addresses (10.0.0.0/8).
//
// Every external command runs with a timeout (CommandTimeout unless the
// caller's context is shorter). It needs root and the tools ip and tc
// (iproute2), nft (nftables) and conntrack; Available says which are
// missing.
package netlab
