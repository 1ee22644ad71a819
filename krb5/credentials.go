package krb5

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Credentials are what the client proves its identity with: a keytab
// (services), a credential cache a user filled with kinit, or a password.
// Make them with Keytab, CCache or Password. A Credentials value is
// immutable and safe for concurrent use.
type Credentials interface {
	// source loads the credentials with the realm configuration conf.
	source(conf *config.Config) (source, error)
}

// A source gets ticket-granting tickets for one client principal. Its
// methods are called by one goroutine at a time.
type source interface {
	// client is the gokrb5 client that makes the KDC exchanges.
	client() *client.Client
	// tgt returns a ticket-granting ticket for the client's realm.
	tgt() (ticket, error)
	// String names the credentials in errors: "keytab FILE for P".
	String() string
}

// ticket is a ticket with what the client needs to use it.
type ticket struct {
	tkt        messages.Ticket
	key        types.EncryptionKey
	start, end time.Time
}

// needsRenewal reports whether t ends within margin of now, or within half
// its lifetime when that is shorter (so short-lived test tickets are not
// fetched on every use).
func (t *ticket) needsRenewal(now time.Time, margin time.Duration) bool {
	if t == nil {
		return true
	}
	if life := t.end.Sub(t.start) / 2; life < margin {
		margin = life
	}
	return !now.Before(t.end.Add(-margin))
}

// Keytab returns the credentials of principal whose keys are in the keytab
// file path: a service's or a host's, such as "nfs-client/host.example.com"
// or "host/host.example.com@EXAMPLE.COM" (without a realm, krb5.conf's
// default_realm). The mechanism gets new tickets with the keytab as often
// as they expire.
func Keytab(path, principal string) Credentials {
	return keytabCreds{path: path, principal: principal}
}

// CCache returns the credentials in a user's credential cache, the file
// kinit writes: path, or when path is "" the cache $KRB5CCNAME names (a
// FILE: cache), else /tmp/krb5cc_<uid>. The mechanism reads the cache's
// ticket-granting ticket again when the one it holds ends, so a kinit or
// kinit -R the user runs is picked up; once the cache's ticket has expired
// InitContext fails with ErrExpired.
func CCache(path string) Credentials {
	return ccacheCreds{path: path}
}

// Password returns the credentials of principal ("alice" or
// "alice@EXAMPLE.COM"; without a realm, krb5.conf's default_realm) with
// its password. The mechanism keeps the password to get new tickets.
func Password(principal, password string) Credentials {
	return passwordCreds{principal: principal, password: password}
}

// splitPrincipal splits "a/b@REALM" into its name and realm, the realm
// defaulting to conf's default_realm.
func splitPrincipal(p string, conf *config.Config) (name, realm string, err error) {
	name, realm = p, conf.LibDefaults.DefaultRealm
	if i := strings.LastIndexByte(p, '@'); i >= 0 {
		name, realm = p[:i], p[i+1:]
	}
	if name == "" || realm == "" {
		return "", "", fmt.Errorf("krb5: principal %q: no name, or no realm and no default_realm in krb5.conf", p)
	}
	return name, realm, nil
}

func principalName(name string) types.PrincipalName {
	return types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, name)
}

// asSource gets TGTs by an AS exchange: keytab and password credentials.
type asSource struct {
	cl   *client.Client
	desc string
}

func (s *asSource) client() *client.Client { return s.cl }
func (s *asSource) String() string         { return s.desc }

func (s *asSource) tgt() (ticket, error) {
	realm, cname := s.cl.Credentials.Domain(), s.cl.Credentials.CName()
	op := "AS exchange for " + s.desc
	req, err := messages.NewASReqForTGT(realm, s.cl.Config, cname)
	if err != nil {
		return ticket{}, fmt.Errorf("krb5: %s: %w", op, err)
	}
	rep, err := s.cl.ASExchange(realm, req, 0)
	if err != nil {
		return ticket{}, kdcError(op, err)
	}
	return ticketOf(rep.Ticket, rep.DecryptedEncPart), nil
}

func ticketOf(tkt messages.Ticket, part messages.EncKDCRepPart) ticket {
	start := part.StartTime
	if start.IsZero() {
		start = part.AuthTime
	}
	return ticket{tkt: tkt, key: part.Key, start: start, end: part.EndTime}
}

type keytabCreds struct{ path, principal string }

func (k keytabCreds) source(conf *config.Config) (source, error) {
	name, realm, err := splitPrincipal(k.principal, conf)
	if err != nil {
		return nil, err
	}
	var kt *keytab.Keytab
	err = safely(func() (err error) { kt, err = keytab.Load(k.path); return err })
	if err != nil {
		return nil, fmt.Errorf("krb5: reading keytab %s: %w", k.path, err)
	}
	found := false
	for _, et := range conf.LibDefaults.DefaultTktEnctypeIDs {
		if _, _, err := kt.GetEncryptionKey(principalName(name), realm, 0, et); err == nil {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("krb5: keytab %s has no key for %s@%s of the encryption types krb5.conf allows", k.path, name, realm)
	}
	cl := client.NewWithKeytab(name, realm, kt, conf)
	return &asSource{cl: cl, desc: name + "@" + realm + " (keytab " + k.path + ")"}, nil
}

type passwordCreds struct{ principal, password string }

func (p passwordCreds) source(conf *config.Config) (source, error) {
	name, realm, err := splitPrincipal(p.principal, conf)
	if err != nil {
		return nil, err
	}
	cl := client.NewWithPassword(name, realm, p.password, conf)
	return &asSource{cl: cl, desc: name + "@" + realm + " (password)"}, nil
}

type ccacheCreds struct{ path string }

// ccachePath resolves the cache's file name as MIT's libraries do for a
// FILE cache.
func ccachePath(path string) (string, error) {
	if path == "" {
		path = os.Getenv("KRB5CCNAME")
	}
	if path == "" {
		return "/tmp/krb5cc_" + strconv.Itoa(os.Getuid()), nil
	}
	if typ, rest, ok := strings.Cut(path, ":"); ok && !strings.Contains(typ, "/") {
		if typ != "FILE" {
			return "", fmt.Errorf("krb5: credential cache %s: only FILE caches can be read (set KRB5CCNAME=FILE:/path, or run kinit -c FILE:/path)", path)
		}
		path = rest
	}
	return path, nil
}

func (c ccacheCreds) source(conf *config.Config) (source, error) {
	path, err := ccachePath(c.path)
	if err != nil {
		return nil, err
	}
	s := &ccacheSource{path: path, conf: conf}
	cc, err := s.load()
	if err != nil {
		return nil, err
	}
	cl, err := client.NewFromCCache(cc, conf)
	if err != nil {
		return nil, fmt.Errorf("krb5: credential cache %s: %w", path, err)
	}
	s.cl = cl
	s.desc = cl.Credentials.CName().PrincipalNameString() + "@" + cl.Credentials.Domain() + " (credential cache " + path + ")"
	return s, nil
}

// ccacheSource reads TGTs from a credential cache file.
type ccacheSource struct {
	path string
	conf *config.Config
	cl   *client.Client
	desc string
}

func (s *ccacheSource) client() *client.Client { return s.cl }
func (s *ccacheSource) String() string         { return s.desc }

func (s *ccacheSource) load() (*credentials.CCache, error) {
	var cc *credentials.CCache
	err := safely(func() (err error) { cc, err = credentials.LoadCCache(s.path); return err })
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: credential cache %s does not exist (run kinit)", ErrExpired, s.path)
		}
		return nil, fmt.Errorf("krb5: reading credential cache %s: %w", s.path, err)
	}
	return cc, nil
}

func (s *ccacheSource) tgt() (ticket, error) {
	cc, err := s.load()
	if err != nil {
		return ticket{}, err
	}
	realm := cc.DefaultPrincipal.Realm
	if cc.DefaultPrincipal.PrincipalName.PrincipalNameString() != s.cl.Credentials.CName().PrincipalNameString() || realm != s.cl.Credentials.Domain() {
		return ticket{}, fmt.Errorf("krb5: credential cache %s now holds %s@%s, not %s", s.path,
			cc.DefaultPrincipal.PrincipalName.PrincipalNameString(), realm, s.desc)
	}
	cred, ok := cc.GetEntry(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}})
	if !ok {
		return ticket{}, fmt.Errorf("krb5: credential cache %s holds no ticket-granting ticket for %s (run kinit)", s.path, realm)
	}
	if !time.Now().Before(cred.EndTime) {
		return ticket{}, fmt.Errorf("%w: the ticket-granting ticket in %s ended at %s (run kinit)", ErrExpired, s.path, cred.EndTime.Local().Format(time.DateTime))
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil {
		return ticket{}, fmt.Errorf("krb5: credential cache %s: ticket-granting ticket: %w", s.path, err)
	}
	start := cred.StartTime
	if start.IsZero() {
		start = cred.AuthTime
	}
	return ticket{tkt: tkt, key: cred.Key, start: start, end: cred.EndTime}, nil
}

// safely runs one of gokrb5's file parsers, which index past the end of a
// truncated or corrupt keytab or credential cache, and turns such a panic
// into an error.
func safely(parse func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt file: %v", r)
		}
	}()
	return parse()
}
