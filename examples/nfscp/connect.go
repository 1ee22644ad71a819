package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
)

// dialOptions are the flags that apply to every connection.
type dialOptions struct {
	backoffInitial time.Duration // --backoff-initial; 0: the policy's default
	backoffMax     time.Duration // --backoff-max; 0: the policy's default
	hedgeAfter     time.Duration // --hedge-after; 0: policy.DefaultHedgeAfter
	verbose, quiet bool

	tlsCA, tlsCert, tlsKey string           // --tls-ca, --tls-cert, --tls-key: file names
	tlsRoots               *x509.CertPool   // from tlsCA; nil: the system's roots
	tlsClient              *tls.Certificate // from tlsCert and tlsKey; nil if not given

	krb5 krb5Options // --krb5-conf, --keytab, --krb5-principal, --krb5-service
}

// conns holds one nfs4.Client per endpoint (server and settings), dialed
// on first use and shared by the workers. It is safe for concurrent use.
type conns struct {
	opts dialOptions
	prog *progress

	mu     sync.Mutex
	byKey  map[string]*conn
	order  []*conn // in dialing order, for --stats
	closed bool
}

// conn is one server connection, or the attempt to make it.
type conn struct {
	ep    *endpoint
	ev    *events
	ready chan struct{} // closed when the dial has ended
	c     *nfs4.Client  // set before ready is closed; nil if the dial failed
	mech  io.Closer     // the Kerberos mechanism (sec=krb5*), closed after c; nil for sec=sys
	sec   string        // the security flavor c uses, of those sec= allows
	err   error
}

func newConns(opts dialOptions, prog *progress) *conns {
	return &conns{opts: opts, prog: prog, byKey: make(map[string]*conn)}
}

// fsFor returns the file system l lives on, dialing its server if needed.
// A dial failure is reported for l.
func (cs *conns) fsFor(ctx context.Context, l location) (fileSystem, error) {
	if l.remote == nil {
		return localFS{}, nil
	}
	cn, first := cs.lookup(l.remote)
	if first {
		cn.c, cn.err = cs.dialSec(ctx, cn, l.path)
		close(cn.ready)
	} else {
		select {
		case <-cn.ready:
		case <-ctx.Done():
			return nil, &opError{name: l.name(), err: context.Cause(ctx)}
		}
	}
	if cn.err != nil {
		return nil, &opError{name: l.name(), err: cn.err}
	}
	return nfsFS{cn.c}, nil
}

// lookup returns the conn for ep, and whether the caller is the first to
// ask for it and so must dial.
func (cs *conns) lookup(ep *endpoint) (*conn, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cn, ok := cs.byKey[ep.key()]; ok {
		return cn, false
	}
	cn := &conn{ep: ep, ready: make(chan struct{}), ev: &events{
		server:  ep.host,
		verbose: cs.opts.verbose,
		quiet:   cs.opts.quiet,
		print:   cs.prog.Line,
	}}
	if cs.closed {
		cn.err = errors.New("shutting down")
		close(cn.ready)
	}
	cs.byKey[ep.key()] = cn
	cs.order = append(cs.order, cn)
	return cn, !cs.closed
}

// dialSec connects to cn's server with the strongest flavor of those
// sec= allows that the export holding p accepts. With one flavor allowed
// it is dial; with several, it dials with the first, asks the server which
// the export takes (SECINFO of p's directory), and dials again if that is
// another.
func (cs *conns) dialSec(ctx context.Context, cn *conn, p string) (*nfs4.Client, error) {
	allowed := strings.Split(cn.ep.settings.Sec, ":")
	c, err := cs.dial(ctx, cn, allowed[0])
	if err != nil || len(allowed) == 1 {
		return c, err
	}
	dir := path.Dir(p)
	if dir == "/" {
		dir = p
	}
	flavors, err := c.SecInfo(ctx, dir)
	if err != nil {
		return c, nil // the calls will say what is wrong
	}
	for _, sec := range allowed {
		if !slices.ContainsFunc(flavors, func(f nfs4.SecFlavor) bool { return f.String() == sec }) {
			continue
		}
		if sec == allowed[0] {
			return c, nil
		}
		c.CloseContext(ctx)
		cs.closeMech(cn)
		return cs.dial(ctx, cn, sec)
	}
	names := make([]string, len(flavors))
	for i, f := range flavors {
		names[i] = f.String()
	}
	c.CloseContext(ctx)
	cs.closeMech(cn)
	return nil, plainError(fmt.Sprintf("the export takes sec=%s, none of sec=%s", strings.Join(names, ":"), cn.ep.settings.Sec))
}

// closeMech closes cn's Kerberos mechanism, if it has one.
func (cs *conns) closeMech(cn *conn) {
	if cn.mech != nil {
		cn.mech.Close()
		cn.mech = nil
	}
}

// dial connects to cn's server with its settings and the security flavor
// sec.
func (cs *conns) dial(ctx context.Context, cn *conn, sec string) (*nfs4.Client, error) {
	s := cn.ep.settings
	cn.sec = sec
	version, _ := nfs4.ParseVersion(s.Version) // checked by applySetting
	cfg := nfs4.Config{
		Version: version,
		Policy:  cs.policy(s.Policy),
		Timeo:   s.Timeo,
		Retrans: s.Retrans,
		Soft:    s.Soft,
		RSize:   s.RSize,
		WSize:   s.WSize,
		Logger:  slog.New(&eventHandler{ev: cn.ev}),
		TLS:     cs.opts.tlsOptions(s.XprtSec),
	}
	if sec != "sys" {
		if s.UID >= 0 || s.GID >= 0 {
			return nil, plainError("uid and gid are AUTH_SYS's (sec=sys); with sec=" + sec + " the server maps the Kerberos principal to a user")
		}
		auth, mech, err := cs.opts.krb5.gssAuth(sec, cn.ep.host)
		if err != nil {
			return nil, err
		}
		cfg.Auth, cn.mech = auth, mech
	} else if s.UID >= 0 || s.GID >= 0 {
		auth, err := authSys(s.UID, s.GID)
		if err != nil {
			return nil, err
		}
		cfg.Auth = auth
	}
	c, err := nfs4.Dial(ctx, cn.ep.addr, cfg)
	if err == nil {
		return c, nil
	}
	cs.closeMech(cn)
	// Say why the server could not be reached, when the library's error
	// is only that the wait ended.
	why := cn.ev.lastDialFailure()
	var rt *rpc.TimeoutError
	switch {
	case why == "":
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		err = plainError(fmt.Sprintf("%s; server %s: %s", reason(context.Cause(ctx)), cn.ep.host, why))
	case errors.As(err, &rt):
		err = plainError(fmt.Sprintf("%s; server %s: %s", reason(err), cn.ep.host, why))
	}
	return nil, err
}

// policy builds the reconnect policy name with the backoff flags.
func (cs *conns) policy(name string) policy.Policy {
	o := policy.Options{HedgeAfter: cs.opts.hedgeAfter}
	if cs.opts.backoffInitial > 0 || cs.opts.backoffMax > 0 {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = 250 * time.Millisecond // the policies' default pacing
		b.MaxInterval = time.Second
		if cs.opts.backoffInitial > 0 {
			b.InitialInterval = cs.opts.backoffInitial
		}
		if cs.opts.backoffMax > 0 {
			b.MaxInterval = max(cs.opts.backoffMax, b.InitialInterval)
		}
		b.Multiplier = 2
		b.RandomizationFactor = 0.25
		b.MaxElapsedTime = 0 // never give up: --timeout and soft bound the wait
		b.Reset()
		o.BackOff = b
	}
	switch name {
	case "same-reserved":
		return policy.SameReservedPort(o)
	case "new-reserved":
		return policy.NewReservedPort(o)
	case "ephemeral":
		return policy.Ephemeral(o)
	}
	return policy.Hedged(o)
}

// authSys is AUTH_SYS as this process: its uid, gid and supplementary
// groups, except that a uid or gid given (not -1) replaces the process's
// and then no supplementary groups are sent, since they are the process's.
func authSys(uid, gid int) (rpc.Auth, error) {
	cred := rpc.ProcessCred()
	if uid >= 0 || gid >= 0 {
		cred.GIDs = nil
	}
	if uid >= 0 {
		cred.UID = uint32(uid)
	}
	if gid >= 0 {
		cred.GID = uint32(gid)
	}
	return rpc.NewAuthSys(cred)
}

// closeAll closes every client: it ends their sessions, giving the servers
// until ctx ends to answer, fails any call still waiting, and makes later
// dials fail. It is safe to call more than once and from any goroutine.
func (cs *conns) closeAll(ctx context.Context) {
	cs.mu.Lock()
	cs.closed = true
	all := append([]*conn(nil), cs.order...)
	cs.mu.Unlock()
	var wg sync.WaitGroup
	for _, cn := range all {
		wg.Go(func() {
			<-cn.ready
			if cn.c != nil {
				cn.c.CloseContext(ctx)
			}
			cs.closeMech(cn)
		})
	}
	wg.Wait()
}
