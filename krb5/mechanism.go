package krb5

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gonfs/nfs/rpc"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Defaults of Config.
const (
	// DefaultKrb5Conf is read when Config.Krb5Conf is "" and $KRB5_CONFIG
	// is unset.
	DefaultKrb5Conf = "/etc/krb5.conf"
	// DefaultRenewBefore is how long before a ticket ends the mechanism
	// gets a new one (Config.RenewBefore).
	DefaultRenewBefore = 5 * time.Minute
)

// Config says who the client is and which server it talks to. Only
// Credentials and Service are required.
type Config struct {
	// Krb5Conf is the path of the krb5.conf that names the realm's KDCs
	// and default_realm; "" means the first file in $KRB5_CONFIG, else
	// DefaultKrb5Conf.
	Krb5Conf string
	// Credentials prove the client's identity: Keytab, CCache or
	// Password.
	Credentials Credentials
	// Service is the server's principal, such as "nfs/server.example.com"
	// (the name in its keytab, which need not be its host name). Without
	// "@REALM" the realm is krb5.conf's domain_realm entry for the host,
	// else the client's realm.
	Service string
	// RenewBefore is how long before a ticket ends InitContext gets a new
	// one, so contexts never start on a ticket about to end; 0 means
	// DefaultRenewBefore. A ticket whose whole lifetime is shorter than
	// twice this is renewed at half its lifetime instead.
	RenewBefore time.Duration
}

func (c Config) withDefaults() Config {
	if c.RenewBefore <= 0 {
		c.RenewBefore = DefaultRenewBefore
	}
	if c.Krb5Conf == "" {
		c.Krb5Conf = DefaultKrb5Conf
		for _, p := range filepath.SplitList(os.Getenv("KRB5_CONFIG")) {
			if _, err := os.Stat(p); err == nil {
				c.Krb5Conf = p
				break
			}
		}
	}
	return c
}

// ErrClosed is returned by InitContext after Close.
var ErrClosed = errors.New("krb5: mechanism closed")

// A Mechanism is the Kerberos V5 GSS-API mechanism (RFC 4121) for one
// client principal and one server: the rpc.GSSMechanism that RPCSEC_GSS
// (sec=krb5, krb5i, krb5p) uses. It gets and renews the tickets it needs
// from the KDC. It is safe for concurrent use.
type Mechanism struct {
	cfg     Config
	src     source         // used only by the goroutine fetching tickets
	ident   *client.Client // the client's name, for authenticators; read-only
	spn     types.PrincipalName
	realm   string // the service's realm
	service string // "nfs/host@REALM", for messages

	mu       sync.Mutex
	tgt      *ticket       // guarded by mu; written by fetch
	svc      *ticket       // guarded by mu; written by fetch
	fetching chan struct{} // guarded by mu: closed when the fetch in flight ends
	fetchErr error         // guarded by mu: what that fetch returned
	closed   bool          // guarded by mu
	fetches  sync.WaitGroup
}

var _ rpc.GSSMechanism = (*Mechanism)(nil)

// New reads krb5.conf and the credentials and returns the mechanism. It
// does not contact the KDC: the first InitContext does.
func New(cfg Config) (*Mechanism, error) {
	cfg = cfg.withDefaults()
	if cfg.Credentials == nil {
		return nil, errors.New("krb5: Config.Credentials is nil (use Keytab, CCache or Password)")
	}
	if cfg.Service == "" {
		return nil, errors.New(`krb5: Config.Service is empty (the server's principal, such as "nfs/server.example.com")`)
	}
	conf, err := config.Load(cfg.Krb5Conf)
	if err != nil {
		return nil, fmt.Errorf("krb5: reading %s: %w", cfg.Krb5Conf, err)
	}
	src, err := cfg.Credentials.source(conf)
	if err != nil {
		return nil, err
	}
	creds := src.client().Credentials
	m := &Mechanism{
		cfg: cfg,
		src: src,
		// NewKRB5TokenAPREQ reads only the client's name from its client.
		ident: &client.Client{Credentials: creds},
	}
	name, realm := cfg.Service, ""
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name, realm = name[:i], name[i+1:]
	}
	parts := strings.Split(name, "/")
	m.spn = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: parts}
	if len(parts) == 2 {
		m.spn.NameType = nametype.KRB_NT_SRV_HST
		if realm == "" {
			realm = conf.ResolveRealm(parts[1])
		}
	}
	if realm == "" {
		realm = creds.Domain()
	}
	if realm != creds.Domain() {
		return nil, fmt.Errorf("krb5: service %s@%s is in another realm than the client %s; cross-realm tickets are not supported", name, realm, src)
	}
	m.realm = realm
	m.service = name + "@" + realm
	return m, nil
}

// OID returns the Kerberos V5 mechanism's object identifier,
// 1.2.840.113554.1.2.2, DER-encoded without tag and length.
func (m *Mechanism) OID() []byte {
	return []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
}

// Service returns the server's principal the mechanism gets tickets for,
// with its realm.
func (m *Mechanism) Service() string { return m.service }

// InitContext starts a context with the server: it returns the context and
// the AP-REQ to send in RPCSEC_GSS_INIT, asking for mutual authentication.
// It gets a service ticket from the KDC when it has none that lasts beyond
// Config.RenewBefore, and a ticket-granting ticket first when that one is
// ending too. A KDC exchange is not interrupted when ctx ends (gokrb5 takes
// no context; its own timeouts bound it), but InitContext returns then;
// the exchange goes on and its ticket serves the next call.
func (m *Mechanism) InitContext(ctx context.Context) (rpc.GSSContext, []byte, error) {
	t, err := m.serviceTicket(ctx)
	if err != nil {
		return nil, nil, err
	}
	if keySize(t.key.KeyType) == 0 {
		return nil, nil, fmt.Errorf("%w: the ticket for %s has a %s session key", ErrEncType, m.service, encTypeName(t.key.KeyType))
	}
	tok, err := spnego.NewKRB5TokenAPREQ(m.ident, t.tkt, t.key,
		[]int{gssapi.ContextFlagMutual, gssapi.ContextFlagConf, gssapi.ContextFlagInteg},
		[]int{flags.APOptionMutualRequired})
	if err != nil {
		return nil, nil, fmt.Errorf("krb5: making the AP-REQ for %s: %w", m.service, err)
	}
	b, err := tok.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("krb5: making the AP-REQ for %s: %w", m.service, err)
	}
	// gokrb5 does not hand back the authenticator it made; its time and
	// sequence number are needed to check the AP-REP and number tokens.
	if err := tok.APReq.DecryptAuthenticator(t.key); err != nil {
		return nil, nil, fmt.Errorf("krb5: reading back the authenticator: %w", err)
	}
	a := tok.APReq.Authenticator
	c := &secContext{
		service: m.service,
		key:     t.key,
		ctime:   a.CTime,
		cusec:   a.Cusec,
		seq:     uint64(uint32(a.SeqNumber)),
		expiry:  t.end,
	}
	return c, b, nil
}

// serviceTicket returns a service ticket that lasts beyond the margin,
// fetching one if needed. Concurrent callers share one fetch.
func (m *Mechanism) serviceTicket(ctx context.Context) (ticket, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ticket{}, ErrClosed
	}
	if !m.svc.needsRenewal(time.Now(), m.cfg.RenewBefore) {
		t := *m.svc
		m.mu.Unlock()
		return t, nil
	}
	ch := m.fetching
	if ch == nil {
		ch = make(chan struct{})
		m.fetching = ch
		m.fetches.Add(1)
		go m.fetch(ch)
	}
	m.mu.Unlock()

	select {
	case <-ch:
	case <-ctx.Done():
		return ticket{}, fmt.Errorf("krb5: waiting for a ticket for %s: %w", m.service, ctx.Err())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ticket{}, ErrClosed
	}
	// The fetch this call waited for may have failed; a ticket another
	// fetch got since then still serves.
	if m.svc != nil && time.Now().Before(m.svc.end) {
		return *m.svc, nil
	}
	if m.fetchErr != nil {
		return ticket{}, m.fetchErr
	}
	return ticket{}, fmt.Errorf("%w: the ticket for %s ended as it arrived", ErrExpired, m.service)
}

// fetch gets a service ticket (and a TGT first if needed), records it or
// the error, and closes ch. It runs in its own goroutine, one at a time.
func (m *Mechanism) fetch(ch chan struct{}) {
	defer m.fetches.Done()
	svc, tgt, err := m.fetchTickets()
	m.mu.Lock()
	if err == nil {
		m.svc, m.tgt = &svc, &tgt
	}
	m.fetchErr = err
	m.fetching = nil
	m.mu.Unlock()
	close(ch)
}

func (m *Mechanism) fetchTickets() (svc, tgt ticket, err error) {
	m.mu.Lock()
	var cur *ticket
	if m.tgt != nil {
		t := *m.tgt
		cur = &t
	}
	m.mu.Unlock()
	if cur.needsRenewal(time.Now(), m.cfg.RenewBefore) {
		t, err := m.src.tgt()
		if err != nil {
			return svc, tgt, err
		}
		cur = &t
	}
	tgt = *cur
	cl := m.src.client()
	op := "TGS exchange for " + m.service + " as " + m.src.String()
	req, err := messages.NewTGSReq(cl.Credentials.CName(), m.realm, cl.Config, tgt.tkt, tgt.key, m.spn, false)
	if err != nil {
		return svc, tgt, fmt.Errorf("krb5: %s: %w", op, err)
	}
	_, rep, err := cl.TGSExchange(req, m.realm, tgt.tkt, tgt.key, 0)
	if err != nil {
		return svc, tgt, kdcError(op, err)
	}
	return ticketOf(rep.Ticket, rep.DecryptedEncPart), tgt, nil
}

// Close stops the mechanism: InitContext fails with ErrClosed. It waits
// for a KDC exchange in flight to end. Contexts already established keep
// working until they expire.
func (m *Mechanism) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.fetches.Wait()
	m.src.client().Destroy()
	return nil
}
