// Package policy decides, before each dial of an NFS transport, which local
// port to dial from and how long to wait first.
//
// NFS clients reconnect often: servers drop idle connections, fail over and
// reboot. Which source port a client redials from decides whether it is back
// in milliseconds or hangs for minutes behind NAT, a load balancer or a
// floating IP that still holds state for the old 4-tuple. Here that choice
// is a Policy the program picks, not a mount option baked into the client.
// The package does no I/O: a transport asks Policy.Next before every dial
// and calls Policy.Reset once a connection has answered a call.
//
// The stock policies model what the Linux kernel client does, plus one of
// our own:
//
//   - SameReservedPort: NFSv3 and NFSv4.0 with resvport (the default). One
//     reserved port for the life of the transport.
//   - NewReservedPort: NFSv4.1 and later with resvport. A new random
//     reserved port for each dial.
//   - Ephemeral: noresvport. Port 0, a new kernel-chosen port each dial.
//   - Hedged: redial from the old port and, if it has not connected within
//     300ms, race a second dial from a fresh one.
//
// While a connection is suspect (its path gone silent with replies
// overdue, and probed), a transport may ask for a spare connection with
// CauseSuspect, answered without a wait or a backoff step:
// SameReservedPort answers its one port, which declines the spare unless
// the server's address has moved (a name looked up again); the others
// name a fresh port (0 for Ephemeral). The spare replaces the connection
// only if the probe goes unanswered; package xprt explains when it is used.
//
// Reserved ports are 665–1023 by default, Linux's sunrpc.min_resvport and
// sunrpc.max_resvport; binding them needs root or CAP_NET_BIND_SERVICE.
//
// The one call a newcomer needs, for an NFSv4.1 mount:
//
//	p := policy.Hedged(policy.Options{})
//
// and p goes to the transport that dials. Each transport needs its own
// policy value: the stock policies keep state and are not safe for
// concurrent use.
//
// # Duplicate request caches
//
// NFSv3 and NFSv4.0 servers recognise a retransmitted call in their
// duplicate request cache by its XID and the client's address and port. A
// non-idempotent call (RENAME, REMOVE, CREATE) re-sent from a new port after
// a reconnect may therefore run twice, and the second run fails with an
// error although the first succeeded. NFSv4.1 sessions carry the replay
// identity in the slot and sequence ID (RFC 8881 §2.10.6), so a port change
// is safe there.
// That is why Linux keeps the port for v3 and v4.0 and not for v4.1.
//
// This is the other side of the port choice, and the fault lab measures it
// (docs/lab.md, the reset-v4.0 and lb-failover-v4.0 cells). Over NFSv4.0
// against NFS-Ganesha, the server reset the connection after MKDIRs had
// run on it but before their replies arrived: the client re-sent them with their
// XIDs on the new connection, and from the old port (SameReservedPort,
// Hedged) the server answered them from its cache, never a duplicate in
// any run; from a new port (NewReservedPort, Ephemeral) it ran some of
// them again and they failed with NFS4ERR_EXIST (up to 6 of the 8 probes
// in flight; 0 in some runs, when the lost replies were those of the
// probes' idempotent LOOKUPs rather than of their CREATEs). Behind a load
// balancer that still maps the old 4-tuple to a dead backend the old port
// is the one that hangs, and the port changers recover.
//
// Hedged is meant to have both: on a live path its redial from the old
// port connects at once and keeps the cache, and it leaves the port only
// when that dial has not connected within HedgeAfter, as behind the stale
// balancer, where it recovered over NFSv4.0 too. What it cannot do is make
// a port change safe: calls in flight when it does leave the port may run
// twice on an NFSv3 or NFSv4.0 server. Behind a failed-over balancer that
// costs nothing extra: the new backend does not have the old one's cache,
// so a call that ran on the old one runs again from any port. Two limits
// hold for every policy: the cache is the server's (Linux knfsd keeps none
// for NFSv4.0, so there only NFSv4.1 sessions give exactly-once), and it
// is best effort (bounded in size and time, lost when the server
// restarts).
//
// # Waiting
//
// The first redial after a connection that answered a call is immediate.
// Failed dials after it wait for the next step of the policy's
// backoff.BackOff (github.com/cenkalti/backoff/v4), which Options.BackOff
// can replace.
//
// Every stock policy paces its dials the same way by default: 250ms,
// 500ms, then 1s between the starts of two dials for as long as the outage
// lasts, each wait within ±25% of its step. The wait counts from the start
// of the failed dial, so a dial that timed out after longer than the step
// is followed at once: its SYN leaves about when the kernel would have
// retransmitted the old one. A server that comes back after an outage of
// any length is found about half a second later (at worst 1.25s), at a
// cost of one dial a second per client while it is away: a refused dial is
// one SYN and one RST, and an unanswered one (the transport's default 2s
// dial timeout, with the kernel's retransmission 1s in) is two SYNs. The
// grace period a restarted server gives its clients to reclaim their state
// (the Linux server's defaults to 90s and may be as short as 10s; NFS-Ganesha's
// is configurable) is never missed for our own waiting. Against 500
// simulated outages each:
//
//	outage   refused dials              unanswered dials
//	         found late by              found late by
//	         median, worst; dials/min   median, worst; dials/min
//	5s       0.5s, 1.2s; 83             0.5s, 1.0s; 40
//	15s      0.5s, 1.2s; 68             0.5s, 1.0s; 34
//	60s      0.5s, 1.2s; 62             0.5s, 1.0s; 30
//	5min     0.5s, 1.2s; 60             0.5s, 1.0s; 30
//
// The Linux client waits 3s between dials, doubling to 60s: in the same
// simulation it found the server 3.5s late after a 5s outage, 5.5s after
// 15s and 33s after a minute or more (medians), at 20 to 2 dials a minute.
// Options.BackOff asks for those steps, or any others.
//
// A busy local port is replaced at once, without a step, up to eight times
// in a row; SameReservedPort first tries the port of its last connection
// again eight times, 25ms apart, since leaving it loses the server's
// duplicate request cache. A connection that closes before carrying data earns
// no immediate redial, so a server that accepts and hangs up is not
// redialed in a tight loop. Options.BackOff documents the traps of
// backoff.ExponentialBackOff.
//
// SameReservedPort and NewReservedPort give up when reserved ports are
// denied; otherwise a stock policy gives up only when its BackOff returns
// backoff.Stop, which the defaults never do.
package policy
