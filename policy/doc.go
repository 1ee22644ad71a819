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
//     reserved port for the life of the transport; 3s, doubling, 60s cap.
//   - NewReservedPort: NFSv4.1 and later with resvport. A new random
//     reserved port for each dial.
//   - Ephemeral: noresvport. Port 0, a new kernel-chosen port each dial.
//   - Hedged: redial from the old port and, if it has not connected within
//     300ms, race a second dial from a fresh one.
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
// duplicate request cache by its XID and the client's port. A
// non-idempotent call (RENAME, REMOVE, CREATE) re-sent from a new port after
// a reconnect may therefore run twice, and the second run fails with an
// error although the first succeeded. NFSv4.1 sessions carry the replay
// identity in the slot and sequence ID (RFC 8881 §2.10.6), so a port change
// is safe there.
// That is why Linux keeps the port for v3 and v4.0 and not for v4.1.
//
// # Waiting
//
// The first redial after a connection that answered a call is immediate.
// Failed dials after it wait for the next step of the policy's
// backoff.BackOff (github.com/cenkalti/backoff/v4), which Options.BackOff
// can replace. A busy local port is replaced at once, without a step, up to
// eight times in a row. A connection that closes before carrying data earns
// no immediate redial, so a server that accepts and hangs up is not
// redialed in a tight loop. Options.BackOff documents the traps of
// backoff.ExponentialBackOff.
//
// SameReservedPort and NewReservedPort give up when reserved ports are
// denied; otherwise a stock policy gives up only when its BackOff returns
// backoff.Stop, which the defaults never do.
package policy
