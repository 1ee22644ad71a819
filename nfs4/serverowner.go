package nfs4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gonfs/nfs/rpc"
)

// Which server an address reaches (RFC 8881 §2.10.5).
//
// A Client reaches its server at one or several addresses (Config.Addrs, a
// host name looked up again before every dial, a floating IP), and any of
// them may lead to another server than the one that holds the session: a
// fail-over address, an IP that moved to another host. A session may only
// be used on a connection to its own server. So the Client remembers the
// server owner (major and minor ID) and server scope that the EXCHANGE_ID
// which made its client ID returned, and the remote addresses known to
// reach that server: the address of the connection that created the
// client ID and session (when one connection carried all of it), and every
// address verified since. bindNew (session.go) checks a new connection to
// any other address before binding it to the session: it sends
// EXCHANGE_ID on that connection alone, with the client's own owner,
// verifier and flags, as the Linux client does to detect trunking. To the
// session's server that is a repeat of what made our confirmed client ID:
// it returns the same client ID and changes nothing (§18.35.5, case 2,
// "non-update on existing client ID"). To another server it is a new
// client, unconfirmed until a CREATE_SESSION that may never come; it is
// replaced by the next EXCHANGE_ID from us, and expires otherwise. (So a
// check that reaches a server between a recovery's EXCHANGE_ID and its
// CREATE_SESSION replaces the recovery's unconfirmed client ID, whose
// CREATE_SESSION then fails with NFS4ERR_STALE_CLIENTID, and the recovery
// starts over.)
//
//   - The same major ID, minor ID and scope: session trunking is allowed
//     (§2.10.5.1): the address joins the known ones, and the connection is
//     bound with BIND_CONN_TO_SESSION.
//   - Another owner, while another connection of the Client still carries
//     calls to the session's server: that server is alive and the address
//     is not one of its. The connection is refused (Bind's error), after
//     a second, and the transport dials again (the next address). This
//     keeps several connections (Config.Connections) from pulling the
//     state back and forth between two live servers.
//   - Another owner, and no other connection: the server the Client was
//     using is gone from every address tried, and this is the server now
//     serving them. The session is not bound there. The connection is used
//     unbound, and a recovery starts at once, as for a server that lost our
//     state (recover.go), skipping the CREATE_SESSION on the old client ID
//     (another server may have given that number to another client):
//     EXCHANGE_ID and CREATE_SESSION on the new server, then the open
//     Files are reclaimed if its scope is the old one (§2.10.4: a server
//     of one scope may hand state over) and opened again by handle
//     otherwise. Calls that meet the old session there (NFS4ERR_BADSESSION)
//     wait for that recovery and are sent again on the new session.
//     Stats.Recovery.OtherServers counts these moves.
//
// Why so: a session must not be bound to a connection before its server
// is known, and the check needs that connection alone, which is what
// rpc.Config.Bind gives. Moving to another server needs the ordinary
// call path (the recovery's EXCHANGE_ID, CREATE_SESSION and OPENs go on
// whatever connection is ready, and this one is the only one), so Bind
// only starts the recovery and lets the connection become ready; the
// recovery, its serialization with calls and its reclaim rules are
// recover.go's, unchanged. The unconfirmed client ID of the check is
// not reused: the recovery's own EXCHANGE_ID replaces it. A server of the
// same major ID and scope but another minor ID allows client ID trunking
// only (§2.10.5); it is treated as another server, and the recovery then
// finds our client ID confirmed there and only makes a new session on it.
//
// A server that refuses the EXCHANGE_ID (an NFS error) cannot be told
// apart; its connection is bound unchecked and logged, as before this
// check existed. A connection that fails during the check is redialed.
//
// An address once verified is not checked again: a floating IP that moves
// to another server while keeping its address is found by the recovery
// instead, when the new server refuses the session, and the recovery
// records the new owner and forgets the addresses of the old one. A
// connection whose remote address is not an IP address and port is
// checked every time. NFSv4.0 has no sessions to bind and is not checked.

// serverOwner identifies a server: its server_owner4 and server scope.
type serverOwner struct {
	major []byte // so_major_id, at most opaqueLimit bytes
	minor uint64 // so_minor_id
	scope []byte // eir_server_scope, at most opaqueLimit bytes
}

func ownerOf(eid *exchangeIDRes) serverOwner {
	return serverOwner{major: eid.serverOwnerMajor, minor: eid.serverOwnerMinor, scope: eid.serverScope}
}

// sameServer reports whether o and p are one server, so that a session
// made on o may be used on a connection to p (session trunking).
func (o *serverOwner) sameServer(p *serverOwner) bool {
	return o.minor == p.minor && bytes.Equal(o.major, p.major) && bytes.Equal(o.scope, p.scope)
}

func (o *serverOwner) String() string {
	return fmt.Sprintf("%q/%d scope %q", o.major, o.minor, o.scope)
}

// maxKnownAddrs bounds the addresses remembered as reaching the server;
// past it a new address is checked on every connection.
const maxKnownAddrs = 64

// otherServerWait is how long a connection found to reach another server
// while the session's still serves is held before it is refused: the
// transport redials at once after a connection that answered, and the
// next dial may well reach the same server again.
const otherServerWait = time.Second

// errOtherServer refuses a connection to another server than the
// session's while the session's server is reachable on another connection.
var errOtherServer = errors.New("nfs4: this address reaches another server than the session's")

// server is the server the Client's client ID is on and the addresses
// known to reach it. Its mutex guards it: bindNew runs on the rpc
// connectors' goroutines, the recovery on its own.
type server struct {
	mu    sync.Mutex
	owner serverOwner
	addrs []netip.AddrPort
	// move is set when a connection found another server while no other
	// connection reached ours, until the recovery it started has moved
	// the client ID there; moveTo is that connection's address.
	move   bool
	moveTo netip.AddrPort
}

// set records owner as the server of a new client ID. If it is the server
// of before, the known addresses stay; otherwise only the address of the
// move under way that found it (if any) is known to reach it. It returns
// the owner of before.
func (s *server) set(owner serverOwner) serverOwner {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.owner
	if !old.sameServer(&owner) {
		s.addrs = s.addrs[:0]
		if s.move && s.moveTo.IsValid() {
			s.addrs = append(s.addrs, s.moveTo)
		}
	}
	s.owner = owner
	s.move, s.moveTo = false, netip.AddrPort{}
	return old
}

// known reports whether ap is known to reach the server.
func (s *server) known(ap netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ap.IsValid() && containsAddrPort(s.addrs, ap)
}

// add records that ap reaches the server of owner, if that is still the
// Client's server; it reports whether ap is new. (Two connections to a new
// address may both check it, and both find it good.)
func (s *server) add(ap netip.AddrPort, owner *serverOwner) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ap.IsValid() && s.owner.sameServer(owner) && !containsAddrPort(s.addrs, ap) && len(s.addrs) < maxKnownAddrs {
		s.addrs = append(s.addrs, ap)
		return true
	}
	return false
}

// current returns the owner of the Client's server.
func (s *server) current() serverOwner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner
}

// setMove records that a move to the server at ap is under way (move), or
// that the one started did not happen (!move).
func (s *server) setMove(move bool, ap netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.move, s.moveTo = move, ap
}

// moving reports whether a move to another server is under way.
func (s *server) moving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.move
}

func containsAddrPort(addrs []netip.AddrPort, ap netip.AddrPort) bool {
	for _, a := range addrs {
		if a == ap {
			return true
		}
	}
	return false
}

// addrPort returns a connection's remote address as an AddrPort, invalid
// if it is not an IP address and port.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return ap
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// exchangeIDArgs returns the arguments of this Client's EXCHANGE_ID.
func (c *Client) exchangeIDArgs() exchangeIDArgs {
	return exchangeIDArgs{
		verifier: c.verf,
		ownerID:  c.ownerID,
		flags:    exchgidFlagUseNonPNFS,
		impl:     &implID{domain: implDomain, name: implName},
	}
}

// checkServer makes sure that a new connection to remote, on which call
// sends, reaches the server of session s before bindNew binds it. It
// returns true if it does; false with a nil error if it reaches another
// server and the Client is moving there (a recovery has started); an
// error if the connection must not be used.
func (c *Client) checkServer(ctx context.Context, s *sessState, remote net.Addr, call rpc.CallFunc) (bool, error) {
	ap := addrPort(remote)
	if c.srv.known(ap) {
		return true, nil
	}
	ea := c.exchangeIDArgs()
	var eid exchangeIDRes
	var theirs serverOwner
	cc := &compoundCall{c: c, minor: c.minor, req: funcRequest{
		b: func(cmp *compound) { cmp.exchangeID(&ea) },
		p: func(r *reply) error {
			if err := r.exchangeID(&eid); err != nil {
				return err
			}
			// Kept past the reply, whose buffer is reused.
			theirs = serverOwner{major: bytes.Clone(eid.serverOwnerMajor), minor: eid.serverOwnerMinor,
				scope: bytes.Clone(eid.serverScope)}
			return nil
		},
	}}
	err := call(ctx, procCompound, cc, cc)
	var st Status
	if errors.As(err, &st) {
		// The server answered and cannot be told apart: the connection
		// is bound unchecked, as before this check existed.
		c.log.Warn("nfs4: EXCHANGE_ID to check the server refused; binding the connection unchecked",
			"addr", remote.String(), "err", err)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("nfs4: EXCHANGE_ID to check the server at %v: %w", remote, err)
	}
	ours := c.srv.current()
	if ours.sameServer(&theirs) {
		if c.srv.add(ap, &theirs) {
			c.rstats.addrsVerified.Add(1)
			c.log.Info("nfs4: address verified to reach the session's server", "addr", remote.String())
		}
		return true, nil
	}
	if c.rpc.Stats().Conns > 0 {
		c.log.Warn("nfs4: address reaches another server than the session's, which other connections still reach; not using it",
			"addr", remote.String(), "server", theirs.String(), "session_server", ours.String(), "retry_after", otherServerWait)
		t := time.NewTimer(otherServerWait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return false, errOtherServer
	}
	c.log.Warn("nfs4: address reaches another server than the session's, and no connection reaches that one; moving to the new server",
		"addr", remote.String(), "server", theirs.String(), "session_server", ours.String())
	c.srv.setMove(true, ap)
	r, err := c.startRecovery(s, fmt.Errorf("%w: %s at %v, not %s", errOtherServer, theirs.String(), remote, ours.String()))
	if r == nil {
		// Closing, or s was replaced meanwhile: check again on the next
		// connection, against what is current then.
		c.srv.setMove(false, netip.AddrPort{})
		if err == nil {
			err = errOtherServer
		}
		return false, err
	}
	c.rstats.otherServers.Add(1)
	return false, nil
}
