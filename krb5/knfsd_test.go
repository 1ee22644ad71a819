package krb5_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/kdc"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/tcpfwd"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/krb5"
	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/rpc"
)

// RPCSEC_GSS with Kerberos V5 against the Linux kernel's NFS server
// (internal/knfsd: a user-mode Linux guest running rpc.svcgssd with the
// realm's keytab of nfs/localhost), with tickets from a real MIT KDC.
// The guest never talks to the KDC: the client gets its ticket, the
// server's acceptor needs only its keytab.

// knfsd boots a Linux server that takes the realm's Kerberos: its
// exports knfsd.Krb5Export, Krb5iExport and Krb5pExport take one service
// each, and a principal it cannot map to a local user is the anonymous
// user, who may write in them.
func (r *realm) knfsd(t *testing.T, cfg knfsd.Config) *knfsd.Server {
	t.Helper()
	cfg.Kerberos = &knfsd.Kerberos{Krb5Conf: r.k.Krb5Conf(), Keytab: r.keytab}
	srv := knfsd.Start(t, cfg)
	t.Logf("knfsd with Kerberos booted in %v", srv.BootTime())
	return srv
}

// knfsdExport is the Linux server's export that takes svc alone.
func knfsdExport(svc rpc.GSSService) string {
	switch svc {
	case rpc.GSSIntegrity:
		return knfsd.Krb5iExport
	case rpc.GSSPrivacy:
		return knfsd.Krb5pExport
	}
	return knfsd.Krb5Export
}

// TestKnfsdRoundTrip: under each of krb5, krb5i and krb5p, each in the
// export that takes that service alone, and with each way a service gets
// its credentials, 4 MiB written (owned on the server by the anonymous
// user, as the guest maps no principal to a user of its own) through the client read back from the
// server's disk and through the client with the same sha256, on one
// RPCSEC_GSS context; an AUTH_SYS client gets NFS4ERR_WRONGSEC there.
func TestKnfsdRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRealm(t, kdc.Config{})
	hostKeytab := r.k.Keytab(t, host)
	ccache := r.k.Kinit(t, user, password)
	creds := map[string]krb5.Credentials{
		"password": krb5.Password(user, password),
		"keytab":   krb5.Keytab(hostKeytab, host),
		"ccache":   krb5.CCache(ccache),
	}
	srv := r.knfsd(t, knfsd.Config{})
	for _, svc := range []rpc.GSSService{rpc.GSSNone, rpc.GSSIntegrity, rpc.GSSPrivacy} {
		t.Run(svc.String(), func(t *testing.T) {
			dir := knfsdExport(svc)
			for _, how := range []string{"password", "keytab", "ccache"} {
				t.Run(how, func(t *testing.T) {
					c := mustDial(t, srv.Addr(), nfs4.Config{Auth: r.auth(t, creds[how], svc)})
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					data := randomData(t, 4<<20+13)
					want := sha256.Sum256(data)
					name := dir + "/" + how
					t0 := time.Now()
					if err := writeFile(ctx, c, name, data); err != nil {
						t.Fatalf("write: %v", err)
					}
					wrote := time.Since(t0)
					disk, err := srv.ReadFile(ctx, name)
					if err != nil || sha256.Sum256(disk) != want {
						t.Fatalf("the server's copy: %d bytes (%v), sha256 differs from what was written", len(disk), err)
					}
					// The principal maps to no user of the guest: the
					// export's anonymous user owns what it creates.
					if owner, err := srv.Exec(ctx, "stat -c %u:%g "+knfsd.ExportPath+name); strings.TrimSpace(owner) != "65534:65534" {
						t.Errorf("the file's owner on the server: %q (%v), want the anonymous user 65534:65534", owner, err)
					}
					t0 = time.Now()
					back, err := readFile(ctx, c, name)
					if err != nil || sha256.Sum256(back) != want {
						t.Fatalf("read back: %d bytes (%v), sha256 differs from what was written", len(back), err)
					}
					t.Logf("%s, %s: 4 MiB written in %v, read in %v", svc, how, wrote.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
					if n := c.Stats().RPC.GSSContexts; n != 1 {
						t.Errorf("%d RPCSEC_GSS contexts for one client and one server, want 1", n)
					}
				})
			}
			sys := mustDial(t, srv.Addr(), nfs4.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := sys.Stat(ctx, dir+"/password"); !errors.Is(err, nfs4.ErrWrongSec) {
				t.Errorf("AUTH_SYS Stat in the %s export: %v; want an error matching nfs4.ErrWrongSec", svc, err)
			}
		})
	}
}

// TestKnfsdTamperedReply: one bit flipped in a READ reply on its way
// fails the read under krb5i and krb5p with rpc.ErrGSSIntegrity and hands
// the caller none of the reply's data; under krb5 the flipped bit reaches
// the caller.
func TestKnfsdTamperedReply(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRealm(t, kdc.Config{})
	srv := r.knfsd(t, knfsd.Config{})
	want := randomData(t, 1<<20)
	for _, svc := range []rpc.GSSService{rpc.GSSNone, rpc.GSSIntegrity, rpc.GSSPrivacy} {
		t.Run(svc.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			name := knfsdExport(svc) + "/f"
			if err := srv.WriteFile(ctx, name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			fwd := tcpfwd.Start(t, srv.Addr())
			fwd.KeepReservedPorts() // the export is `secure`
			c := mustDial(t, fwd.Addr(), nfs4.Config{Auth: r.auth(t, krb5.Password(user, password), svc), NoAC: true})
			tamperedRead(t, ctx, c, fwd, name, want, svc)
		})
	}
}

// TestKnfsdServerRestart: knfsd restarted mid-write; the client
// reclaims its open file in the grace period and the file ends whole.
// Stopping and starting nfsd's threads (RestartNFSD) keeps the kernel's
// RPCSEC_GSS contexts: they live in sunrpc's cache of the network
// namespace, not in nfsd, and the client goes on with its context. A
// reboot loses them too, so "reboot" also flushes that cache while nfsd
// is down: the client's next call is refused (RPCSEC_GSS_CREDPROBLEM)
// and it creates a new context.
func TestKnfsdServerRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRealm(t, kdc.Config{})
	srv := r.knfsd(t, knfsd.Config{})
	for _, tc := range []struct {
		name     string
		contexts uint64 // at least
		restart  func(context.Context) error
	}{
		{"threads", 1, srv.RestartNFSD},
		{"reboot", 2, func(ctx context.Context) error {
			if err := srv.StopNFSD(ctx); err != nil {
				return err
			}
			if err := srv.FlushGSSContexts(ctx); err != nil {
				return err
			}
			return srv.StartNFSD(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, srv.Addr(), nfs4.Config{Auth: r.auth(t, krb5.Password(user, password), rpc.GSSPrivacy)})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			data := randomData(t, 4<<20)
			name := knfsd.Krb5pExport + "/" + tc.name
			f, err := c.Create(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(data[:2<<20]); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := tc.restart(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(data[2<<20:]); err != nil {
				t.Fatalf("write after the restart: %v", err)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("close after the restart: %v", err)
			}
			disk, err := srv.ReadFile(ctx, name)
			if err != nil || !bytes.Equal(disk, data) {
				t.Fatalf("the server's copy: %d bytes (%v), want the %d written", len(disk), err, len(data))
			}
			st := c.Stats()
			t.Logf("%s: %d RPCSEC_GSS contexts, %d reclaims, recovered in %v", tc.name, st.RPC.GSSContexts, st.Recovery.Reclaims, st.Recovery.Time.Max)
			if st.RPC.GSSContexts < tc.contexts {
				t.Errorf("%d RPCSEC_GSS contexts after the restart, want %d or more", st.RPC.GSSContexts, tc.contexts)
			}
			if st.Recovery.Reclaims == 0 {
				t.Errorf("no open reclaimed after the restart: %+v", st.Recovery)
			}
		})
	}
}

// TestKnfsdConcurrentCalls: 64 goroutines share one context under krb5i;
// every call is answered and none waits for a major timeout. knfsd
// announces a sequence window of 128, so the client keeps 64 calls in
// flight, as many as there are goroutines, on 8 nfsd threads.
func TestKnfsdConcurrentCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRealm(t, kdc.Config{})
	srv := r.knfsd(t, knfsd.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := knfsd.Krb5iExport + "/f"
	if err := srv.WriteFile(ctx, name, randomData(t, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, srv.Addr(), nfs4.Config{Auth: r.auth(t, krb5.Password(user, password), rpc.GSSIntegrity), NoAC: true})
	concurrentStats(t, ctx, c, name)
}
