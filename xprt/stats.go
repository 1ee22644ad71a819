package xprt

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gonfs/nfs/policy"
)

// State is where a Transport is in its life. The zero value is Idle.
//
//	Idle ──Conn──▶ Connecting ──connected──▶ Ready ──Fail──▶ Idle
//	                │      ▲
//	    dial failed │      │ wait over
//	                ▼      │
//	          TransientFailure ──policy gives up──▶ stays; Conn returns the error
//
//	any state ──Close──▶ Shutdown
type State int

const (
	// Idle: no connection and no dial under way; the next Conn dials. A
	// new Transport is Idle, and so is one whose connection was reported
	// broken with Fail.
	Idle State = iota
	// Connecting: a dial is under way, or the wait before a redial that
	// follows a disconnect.
	Connecting
	// Ready: a connection is established; Conn returns it.
	Ready
	// TransientFailure: the last dial attempt failed and the transport is
	// waiting to redial, or, if Conn returns an error, the policy gave up.
	TransientFailure
	// Shutdown: Close was called. Final.
	Shutdown
)

var stateNames = [...]string{
	Idle:             "idle",
	Connecting:       "connecting",
	Ready:            "ready",
	TransientFailure: "transient failure",
	Shutdown:         "shutdown",
}

// String returns the state's name in lower case, e.g. "ready".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// State returns the transport's current state.
func (t *Transport) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Stats is a snapshot of a Transport's counters. Calls and retransmissions
// are counted by package rpc.
type Stats struct {
	// State is the state when the snapshot was taken.
	State State
	// Gen is the generation of the newest connection; 0 before the first.
	Gen uint64
	// LocalPort is the local port of the current connection; 0 if none is
	// ready.
	LocalPort int
	// Addr is the server address of the current connection, or of the
	// last one while none is ready; the zero AddrPort before the first.
	Addr netip.AddrPort
	// Connects counts connections established.
	Connects uint64
	// Reconnects counts connections established after the first.
	Reconnects uint64
	// FailedAttempts counts failed dials by cause. Each leg of a hedged
	// dial that fails counts; a leg cancelled because the other won does
	// not.
	FailedAttempts [policy.NumCauses]uint64
	// Disconnects counts connections lost, by the cause reported to Fail
	// (see Classify): CauseProbeTimeout for the path watch,
	// CauseDeadPeer for keepalive and TCP_USER_TIMEOUT.
	Disconnects [policy.NumCauses]uint64
	// Probes counts requests the path watch sent to make a silent path
	// prove itself (see "Detecting a dead path" in the package
	// documentation).
	Probes uint64
	// Spares counts spare connections made while a connection was
	// suspect (see "Spare connections" in the package documentation);
	// SparesUsed those that replaced it. The others were closed unused.
	Spares, SparesUsed uint64
	// BytesSent and BytesReceived count payload bytes over all
	// connections.
	BytesSent     uint64
	BytesReceived uint64
	// Disconnected is the total time without a connection after the first
	// one was made, including an outage in progress.
	Disconnected time.Duration
	// LastPorts are the local ports of the most recent connections, the
	// newest last; at most Config.PortHistory of them.
	LastPorts []int
	// Handshakes counts TLS handshakes completed (one per connection
	// when TLS is used); HandshakeTime is their total duration, probe
	// included, and LastHandshake the newest one's. Their time is part of
	// Disconnected too: a connection is made when it is secured.
	Handshakes    uint64
	HandshakeTime time.Duration
	LastHandshake time.Duration
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{
		State:          t.state,
		Gen:            t.gen,
		Connects:       t.connects,
		FailedAttempts: t.failedBy,
		Disconnects:    t.disconnects,
		Probes:         t.probes.Load(),
		Spares:         t.spares,
		SparesUsed:     t.sparesUsed,
		BytesSent:      t.sent.Load(),
		BytesReceived:  t.recv.Load(),
		Disconnected:   t.downTotal,
		Addr:           t.prevAddr,
		LastPorts:      append([]int(nil), t.ports...),
		Handshakes:     t.handshakes,
		HandshakeTime:  t.handshakeTime,
		LastHandshake:  t.lastHandshake,
	}
	if t.connects > 0 {
		s.Reconnects = t.connects - 1
	}
	if t.cur != nil {
		s.LocalPort = t.cur.port
	} else if t.connects > 0 && t.state != Shutdown {
		s.Disconnected += time.Since(t.downSince)
	}
	return s
}
