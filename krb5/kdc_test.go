package krb5

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/kdc"
	"github.com/gonfs/nfs/rpc"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// These tests get tickets from a real MIT KDC (internal/kdc) and play the
// server with the service's keytab: the AP-REQ must decrypt with the
// service key and ask for mutual authentication; the server's AP-REP
// carries a fresh acceptor subkey that both sides then use.

const (
	clientPrincipal  = "nfs-client/localhost"
	servicePrincipal = "nfs/server"
)

// accept plays MIT's acceptor for the AP-REQ token: it returns the AP-REP
// and the server's view of the context.
func accept(t *testing.T, serviceKeytab string, token []byte) ([]byte, *cfx) {
	t.Helper()
	var tok spnego.KRB5Token
	if err := tok.Unmarshal(token); err != nil || !tok.IsAPReq() {
		t.Fatalf("the initial token is not a krb5 AP-REQ token: %v", err)
	}
	kt, err := keytab.Load(serviceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	req := tok.APReq
	if err := req.Ticket.DecryptEncPart(kt, nil); err != nil {
		t.Fatalf("the ticket does not decrypt with the service's key: %v", err)
	}
	key := req.Ticket.DecryptedEncPart.Key
	if err := req.DecryptAuthenticator(key); err != nil {
		t.Fatalf("the authenticator does not decrypt with the session key: %v", err)
	}
	if !types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) {
		t.Fatal("the AP-REQ does not ask for mutual authentication")
	}
	ck := req.Authenticator.Cksum.Checksum
	if len(ck) < 24 {
		t.Fatalf("authenticator checksum of %d octets", len(ck))
	}
	gss := binary.LittleEndian.Uint32(ck[20:24])
	if gss&gssapi.ContextFlagMutual == 0 || gss&(gssapi.ContextFlagReplay|gssapi.ContextFlagSequence) != 0 {
		t.Fatalf("GSS flags %#x: want mutual, and neither replay nor sequence", gss)
	}
	sub := types.EncryptionKey{KeyType: key.KeyType, KeyValue: make([]byte, keySize(key.KeyType))}
	rand.Read(sub.KeyValue)
	acc, err := newCFX(sub, true, true, 99)
	if err != nil {
		t.Fatal(err)
	}
	return apRep(t, key, req.Authenticator.CTime, req.Authenticator.Cusec, &sub), acc
}

// establish starts a context with mech, completes it as the server would
// and checks tokens both ways.
func establish(t *testing.T, mech *Mechanism, serviceKeytab string) rpc.GSSContext {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, token, err := mech.InitContext(ctx)
	if err != nil {
		t.Fatalf("InitContext: %v", err)
	}
	if exp := c.Expiry(); !exp.After(time.Now()) || exp.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("Expiry %v", exp)
	}
	rep, acc := accept(t, serviceKeytab, token)
	if err := c.Complete(rep); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	msg := []byte("NFSv4 COMPOUND")
	mic, err := c.AppendMIC(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.verifyMIC(msg, mic); err != nil {
		t.Fatalf("the server rejects the client's MIC: %v", err)
	}
	if err := c.VerifyMIC(msg, acc.appendMIC(nil, msg)); err != nil {
		t.Fatalf("the client rejects the server's MIC: %v", err)
	}
	w, err := c.AppendWrap(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := acc.unwrap(nil, w); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the server unwraps %q, %v", got, err)
	}
	w, _ = acc.appendWrap(nil, msg, 0, 0)
	if got, err := c.Unwrap(nil, w); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the client unwraps %q, %v", got, err)
	}
	return c
}

func newMech(t *testing.T, k *kdc.KDC, creds Credentials, service string) *Mechanism {
	t.Helper()
	m, err := New(Config{Krb5Conf: k.Krb5Conf(), Credentials: creds, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func initErr(t *testing.T, m *Mechanism) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, err := m.InitContext(ctx)
	if err == nil {
		t.Fatal("InitContext succeeded")
	}
	t.Logf("InitContext: %v", err)
	return err
}

// TestKDCCredentials gets tickets with each kind of credentials: a keytab,
// a password and a credential cache MIT's kinit wrote.
func TestKDCCredentials(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	k.AddPrincipal(t, "alice", "alice-password")
	clientKT := k.Keytab(t, clientPrincipal)
	serviceKT := k.Keytab(t, servicePrincipal)
	cc := k.Kinit(t, "alice", "alice-password")

	for name, creds := range map[string]Credentials{
		"keytab":         Keytab(clientKT, clientPrincipal),
		"keytab+realm":   Keytab(clientKT, clientPrincipal+"@"+k.Realm()),
		"password":       Password("alice", "alice-password"),
		"ccache":         CCache(cc),
		"ccache FILE:":   CCache("FILE:" + cc),
		"ccache default": nil,
	} {
		t.Run(name, func(t *testing.T) {
			if creds == nil {
				t.Setenv("KRB5CCNAME", "FILE:"+cc)
				creds = CCache("")
			}
			m := newMech(t, k, creds, servicePrincipal)
			establish(t, m, serviceKT)
			// A second context reuses the service ticket.
			establish(t, m, serviceKT)
		})
	}
}

// TestKDCEncTypes establishes a context with keys of each AES type, the
// SHA-2 ones of RFC 8009 included.
func TestKDCEncTypes(t *testing.T) {
	for _, et := range kdc.DefaultEnctypes {
		t.Run(et, func(t *testing.T) {
			k := kdc.Start(t, kdc.Config{Enctypes: []string{et}})
			clientKT := k.Keytab(t, clientPrincipal)
			serviceKT := k.Keytab(t, servicePrincipal)
			establish(t, newMech(t, k, Keytab(clientKT, clientPrincipal), servicePrincipal), serviceKT)
		})
	}
}

// TestKDCErrors checks the error each mistake a user makes produces.
func TestKDCErrors(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	k.AddPrincipal(t, "alice", "alice-password")
	clientKT := k.Keytab(t, clientPrincipal)
	k.Keytab(t, servicePrincipal)

	cases := []struct {
		name    string
		creds   Credentials
		service string
		want    error
	}{
		{"wrong password", Password("alice", "wrong"), servicePrincipal, ErrWrongPassword},
		{"unknown client", Password("nobody", "x"), servicePrincipal, ErrClientUnknown},
		{"unknown service", Keytab(clientKT, clientPrincipal), "nfs/elsewhere", ErrServiceUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := initErr(t, newMech(t, k, tc.creds, tc.service))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var ke *KerberosError
			if !errors.As(err, &ke) {
				t.Fatalf("%v is not a *KerberosError", err)
			}
		})
	}

	t.Run("KDC unreachable", func(t *testing.T) {
		m := newMech(t, k, Password("alice", "alice-password"), servicePrincipal)
		k.Stop()
		if err := initErr(t, m); !errors.Is(err, ErrKDCUnreachable) {
			t.Fatalf("got %v, want ErrKDCUnreachable", err)
		}
	})

	t.Run("keytab without the principal", func(t *testing.T) {
		_, err := New(Config{Krb5Conf: k.Krb5Conf(), Credentials: Keytab(clientKT, "host/other"), Service: servicePrincipal})
		if err == nil {
			t.Fatal("New accepted a keytab without the principal's key")
		}
		t.Log(err)
	})
}

// TestKDCClockSkew runs the KDC 10 minutes ahead: the KDC refuses the
// client's pre-authentication as skewed.
func TestKDCClockSkew(t *testing.T) {
	k := kdc.Start(t, kdc.Config{ClockOffset: 10 * time.Minute})
	k.AddPrincipal(t, "alice", "alice-password")
	clientKT := k.Keytab(t, clientPrincipal)
	k.Keytab(t, servicePrincipal)
	for name, creds := range map[string]Credentials{
		"password": Password("alice", "alice-password"),
		"keytab":   Keytab(clientKT, clientPrincipal),
	} {
		t.Run(name, func(t *testing.T) {
			if err := initErr(t, newMech(t, k, creds, servicePrincipal)); !errors.Is(err, ErrClockSkew) {
				t.Fatalf("got %v, want ErrClockSkew", err)
			}
		})
	}
}

// TestKDCCCacheExpired: once the credential cache's ticket-granting ticket
// has ended, InitContext says so; after a new kinit it works again.
func TestKDCCCacheExpired(t *testing.T) {
	const life = 3 * time.Second
	k := kdc.Start(t, kdc.Config{MaxLife: life})
	k.AddPrincipal(t, "alice", "alice-password")
	serviceKT := k.Keytab(t, servicePrincipal)
	cc := k.Kinit(t, "alice", "alice-password")
	m := newMech(t, k, CCache(cc), servicePrincipal)
	establish(t, m, serviceKT)

	time.Sleep(life + time.Second)
	if err := initErr(t, m); !errors.Is(err, ErrExpired) {
		t.Fatalf("got %v, want ErrExpired", err)
	}
	// The user runs kinit again, into the same cache.
	if err := os.Rename(k.Kinit(t, "alice", "alice-password"), cc); err != nil {
		t.Fatal(err)
	}
	establish(t, m, serviceKT)
}

// TestKDCRenewal: with tickets of a few seconds, InitContext gets a new
// service ticket once half the old one's life is gone, and a new TGT by
// the keytab once the first has ended, without failing a call.
func TestKDCRenewal(t *testing.T) {
	const life = 4 * time.Second
	k := kdc.Start(t, kdc.Config{MaxLife: life})
	clientKT := k.Keytab(t, clientPrincipal)
	serviceKT := k.Keytab(t, servicePrincipal)
	m := newMech(t, k, Keytab(clientKT, clientPrincipal), servicePrincipal)

	first := establish(t, m, serviceKT).Expiry()
	if again := establish(t, m, serviceKT).Expiry(); !again.Equal(first) {
		t.Fatalf("a second context got a new ticket (%v, then %v) though the first had most of its life", first, again)
	}
	time.Sleep(time.Until(first.Add(-life / 2).Add(200 * time.Millisecond)))
	second := establish(t, m, serviceKT).Expiry()
	if !second.After(first) {
		t.Fatalf("past half its life the ticket was not renewed: %v, then %v", first, second)
	}
	time.Sleep(time.Until(first.Add(time.Second)))
	if third := establish(t, m, serviceKT).Expiry(); !third.After(first.Add(time.Second)) {
		t.Fatalf("after the first TGT ended: expiry %v", third)
	}
}

// TestKDCConcurrent starts contexts from many goroutines at once while the
// ticket is fetched: they share one fetch.
func TestKDCConcurrent(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	clientKT := k.Keytab(t, clientPrincipal)
	serviceKT := k.Keytab(t, servicePrincipal)
	m := newMech(t, k, Keytab(clientKT, clientPrincipal), servicePrincipal)
	const n = 8
	errs := make(chan error, n)
	tokens := make(chan []byte, n)
	for range n {
		go func() {
			_, tok, err := m.InitContext(context.Background())
			errs <- err
			tokens <- tok
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		accept(t, serviceKT, <-tokens)
	}
}

// TestKDCContextCanceled: a caller whose context ends while the KDC is
// asked gets its context's error; Close waits for the exchange.
func TestKDCContextCanceled(t *testing.T) {
	k := kdc.Start(t, kdc.Config{})
	clientKT := k.Keytab(t, clientPrincipal)
	m := newMech(t, k, Keytab(clientKT, clientPrincipal), servicePrincipal)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := m.InitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	m.Close()
	if _, _, err := m.InitContext(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
