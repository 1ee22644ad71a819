package nfs4

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// The counters a Client keeps, and their snapshot (Client.Stats).

// Stats is a snapshot of a Client's counters.
type Stats struct {
	RPC       rpc.Stats  // calls, retransmits, major timeouts, unknown XIDs, connections ready now
	Transport xprt.Stats // the first connection's connects, reconnects, failed dials by cause, bytes, ports, time disconnected
	// Connections holds every connection's transport statistics
	// (Config.Connections of them, one over NFSv4.0), Transport first.
	Connections []xprt.Stats
	// SeqStatusFlags holds the SEQ4_STATUS_* bits of the latest SEQUENCE
	// reply that carried any.
	SeqStatusFlags uint32
	RSize, WSize   int           // negotiated READ and WRITE sizes
	Slots          int           // session slots granted
	Lease          time.Duration // the server's lease time
	// Recovery counts session re-binds, session and client ID resets,
	// reclaims, re-opens, replayed slots, re-sent bytes and recovery times.
	Recovery RecoveryStats
	// Cache counts the metadata cache's hits and misses and what it holds
	// (zero with Config.NoAC).
	Cache CacheStats
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	rs := c.rpc.Stats()
	conns := make([]xprt.Stats, len(c.trs))
	for i, t := range c.trs {
		conns[i] = t.Stats()
	}
	return Stats{
		RPC:            rs,
		Transport:      conns[0],
		Connections:    conns,
		SeqStatusFlags: c.flags.Load(),
		RSize:          c.rsize,
		WSize:          c.wsize,
		Slots:          len(c.st.Load().slots.slots),
		Lease:          c.lease,
		Recovery:       c.rstats.snapshot(rs.Retransmits),
		Cache:          c.cache.stats(),
	}
}

// recoveryCounters are the Client's recovery statistics.
type recoveryCounters struct {
	rebinds, sessionResets, clientIDResets, redriven atomic.Uint64
	reclaims, reopens, lostFiles, resentBytes        atomic.Uint64
	graceWaits, addrsVerified, otherServers          atomic.Uint64

	mu       sync.Mutex
	n        uint64
	min, max time.Duration
	recent   [recentRecoveries]time.Duration // ring of the latest durations
}

// recentRecoveries is how many recovery times the median is taken over.
const recentRecoveries = 64

func (r *recoveryCounters) recovered(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || d < r.min {
		r.min = d
	}
	r.max = max(r.max, d)
	r.recent[r.n%recentRecoveries] = d
	r.n++
}

// RecoveryStats counts what a Client did to keep its server state across
// failures. Each step is also logged (Config.Logger).
type RecoveryStats struct {
	// Rebinds counts connections bound to the session with
	// BIND_CONN_TO_SESSION: every reconnect, and every further connection
	// (Config.Connections).
	Rebinds uint64
	// AddrsVerified counts server addresses found, with EXCHANGE_ID on
	// their first connection, to reach the session's server (the same
	// server owner and scope, RFC 8881 §2.10.5), which may then carry
	// the session. OtherServers counts connections that reached another
	// server while no connection reached the session's: the Client moved
	// its client ID there (a ClientIDReset) instead of binding the old
	// session. Connections to another server while the session's was
	// still reachable are refused and counted in neither.
	AddrsVerified, OtherServers uint64
	// ReplayedSlots counts requests re-sent after a reconnect on their
	// slot with their sequence id, which the session's reply cache answers
	// exactly once (the rpc layer's retransmissions, rpc.Stats.Retransmits).
	ReplayedSlots uint64
	// SessionResets counts new sessions on the same client ID.
	SessionResets uint64
	// ClientIDResets counts new client IDs: a server restart, a failover
	// to another server, or a lease that expired and took the state.
	ClientIDResets uint64
	// Redriven counts calls sent again on a new session after theirs was
	// lost.
	Redriven uint64
	// Reclaims counts opens reclaimed with CLAIM_PREVIOUS in a restarted
	// server's grace period; Reopens, opens established again by handle
	// (CLAIM_FH) where reclaim was refused or state was revoked.
	Reclaims, Reopens uint64
	// GraceWaits counts waits of calls the server refused with
	// NFS4ERR_GRACE: non-reclaim opens (and other locking operations)
	// while a restarted server waits for its clients to reclaim.
	GraceWaits uint64
	// LostFiles counts Files whose state could not be recovered; they fail
	// with ErrStateLost.
	LostFiles uint64
	// ResentBytes counts uncommitted data written again because the
	// server's write verifier changed (it restarted, or another server
	// took over), so that nothing acknowledged as written was lost.
	ResentBytes uint64
	// Time is how long recoveries took, from the first call to see the
	// session lost to the new session's publication (reclaims included).
	Time DurationStats
}

// DurationStats summarizes durations: how many, the shortest, the longest,
// and the median of the latest 64.
type DurationStats struct {
	Count            uint64
	Min, Median, Max time.Duration
}

func (r *recoveryCounters) snapshot(replayed uint64) RecoveryStats {
	s := RecoveryStats{
		Rebinds:        r.rebinds.Load(),
		ReplayedSlots:  replayed,
		SessionResets:  r.sessionResets.Load(),
		ClientIDResets: r.clientIDResets.Load(),
		Redriven:       r.redriven.Load(),
		Reclaims:       r.reclaims.Load(),
		Reopens:        r.reopens.Load(),
		GraceWaits:     r.graceWaits.Load(),
		AddrsVerified:  r.addrsVerified.Load(),
		OtherServers:   r.otherServers.Load(),
		LostFiles:      r.lostFiles.Load(),
		ResentBytes:    r.resentBytes.Load(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Time = DurationStats{Count: r.n, Min: r.min, Max: r.max}
	if k := int(min(r.n, recentRecoveries)); k > 0 {
		recent := append([]time.Duration(nil), r.recent[:k]...)
		slices.Sort(recent)
		s.Time.Median = recent[k/2]
	}
	return s
}
