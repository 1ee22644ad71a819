package nfs4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/tcpfwd"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// Tests of what the Linux kernel's server (internal/knfsd) does that
// Ganesha does not, and what a user sees of it.

// The Linux server's exports are `secure` by default: from an unreserved
// source port every file handle operation fails with NFS4ERR_PERM. The
// error says so, and still matches fs.ErrPermission; from a reserved port
// (the default policy, as root) the same export serves.
func TestKnfsdRefusesUnreservedPort(t *testing.T) {
	srv := knfsd.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	_, err := Dial(ctx, srv.Addr(), Config{Policy: policy.Ephemeral(policy.Options{})})
	var pe *PortRefusedError
	if !errors.As(err, &pe) {
		t.Fatalf("Dial from an unreserved port: %v; want a PortRefusedError", err)
	}
	if pe.Port < 1024 {
		t.Errorf("PortRefusedError.Port = %d; want the unreserved port the client used", pe.Port)
	}
	if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, ErrPerm) {
		t.Errorf("%v does not match fs.ErrPermission and ErrPerm", err)
	}
	for _, want := range []string{"reserved", "insecure", "CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	c, err := Dial(ctx, srv.Addr(), Config{})
	if err != nil {
		t.Fatalf("Dial with the default policy: %v", err)
	}
	defer c.Close()
	if _, err := c.Stat(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if p := c.Stats().Transport.LocalPort; p >= 1024 {
		t.Errorf("the default policy connected from port %d; want a reserved one (the test runs as root)", p)
	}
}

// A server that has NFSv4.1 turned off: the default Config falls back to
// NFSv4.0 and works; a Client pinned to 4.1 gets one line naming what the
// server refused, matching ErrMinorVersMismatch.
func TestKnfsdWithoutMinorVersion1(t *testing.T) {
	srv := knfsd.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.SetVersions(ctx, "4.0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := srv.SetVersions(ctx); err != nil {
			t.Error(err)
		}
	})
	c := dialServer(t, srv.Addr(), Config{})
	if v := c.MinorVersion(); v != 0 {
		t.Fatalf("negotiated minor version %d; want 0", v)
	}
	if err := c.MkdirAll(ctx, "/"+t.Name(), 0o777); err != nil {
		t.Fatal(err)
	}
	name := "/" + t.Name() + "/negotiated"
	writeFile(t, c, name, []byte("four point oh"))
	checkFile(t, c, name, []byte("four point oh"))
	if err := c.RemoveAll(ctx, "/"+t.Name()); err != nil {
		t.Fatal(err)
	}

	_, err := Dial(ctx, srv.Addr(), Config{Version: Version41})
	var ve *VersionError
	if !errors.As(err, &ve) || !errors.Is(err, ErrMinorVersMismatch) {
		t.Fatalf("Dial of a 4.0-only server pinned to 4.1: %v; want a VersionError matching ErrMinorVersMismatch", err)
	}
	if !strings.Contains(err.Error(), "NFSv4.1") {
		t.Errorf("error %q does not name the version refused", err)
	}
}

// A server that serves NFSv4.2 alone (Linux's nfsd with 4.0 and 4.1
// turned off): the default Config speaks 4.2 to it; a Client pinned to
// 4.1 or 4.0 gets one error naming the version refused.
func TestKnfsdOnlyMinorVersion2(t *testing.T) {
	srv := knfsd.Start(t, knfsd.Config{Versions: []string{"4.2"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dialServer(t, srv.Addr(), Config{})
	if v := c.MinorVersion(); v != 2 {
		t.Fatalf("negotiated minor version %d; want 2", v)
	}
	writeFile(t, c, "/only42", []byte("four point two"))
	checkFile(t, c, "/only42", []byte("four point two"))
	for _, tc := range []struct {
		v    Version
		want string
	}{
		{Version41, "the server refused NFSv4.1 (NFS4ERR_MINOR_VERS_MISMATCH)"},
		{Version40, "the server refused NFSv4.0 (NFS4ERR_MINOR_VERS_MISMATCH)"},
	} {
		_, err := Dial(ctx, srv.Addr(), Config{Version: tc.v})
		var ve *VersionError
		if !errors.As(err, &ve) || !errors.Is(err, ErrMinorVersMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial pinned to %v of a 4.2-only server: %v; want a VersionError saying %q", tc.v, err, tc.want)
		}
	}
}

// The Linux server is a courteous server (Linux 5.19 on): a client whose
// lease ran out keeps its client ID and state, as a "courtesy client",
// until another client's request conflicts with them. A client cut off for
// longer than its lease that comes back finds everything as it was: no
// recovery, and its open files carry on. Ganesha expires the client ID
// instead, and knfsd does once another client's open conflicts
// (TestLeaseExpiry): there the client makes a new one and opens its files
// again. The test waits, while the path is silent, until the
// guest's /proc/fs/nfsd/clients lists the client as courtesy.
func TestKnfsdCourtesyClient(t *testing.T) {
	srv := knfsd.Shared(t)
	testutil.CheckLeaks(t) // here: each subtest sees the other's goroutines
	for _, v := range []Version{VersionAny, Version40} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel() // each waits a lease and more
			fwd := tcpfwd.Start(t, srv.Addr())
			fwd.KeepReservedPorts()
			owner := "gonfs-courtesy-" + strings.ReplaceAll(v.String(), ".", "") + "-" + randomID(4)
			c := dialVia(t, fwd.Addr(), Config{Version: v, OwnerID: owner, Policy: policy.Hedged(policy.Options{}), Logger: testLogger(t)})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := "/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
			if err := c.MkdirAll(ctx, dir, 0o777); err != nil {
				t.Fatal(err)
			}
			defer c.RemoveAll(ctx, dir)
			f, err := c.OpenFile(ctx, dir+"/keep", os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("before;")); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}

			fwd.Pause()
			st := waitClientStatus(t, srv, owner, "courtesy")
			fwd.Resume()
			if st != "courtesy" {
				t.Fatalf("the silent client's status is %q after a minute; want courtesy", st)
			}

			if _, err := f.Write([]byte(" after.")); err != nil {
				t.Fatalf("write after the lease ran out: %v", err)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			g, err := c.Open(ctx, dir+"/keep")
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(g)
			g.Close()
			if string(data) != "before; after." || err != nil {
				t.Fatalf("content %q, %v; want %q", data, err, "before; after.")
			}
			if st := c.Stats().Recovery; st.ClientIDResets != 0 || st.Reopens != 0 || st.LostFiles != 0 {
				t.Errorf("recovery after coming back as a courtesy client: %+v; want none", st)
			}
		})
	}
}

// knfsdLeaseExpiry is TestLeaseExpiry's and TestV40LeaseExpiry's test
// against knfsd, with the silent Client speaking version. Its lease runs
// out and the server keeps it as a courtesy client; then a second client
// opens "keep" for reading, denying writes, which the silent client's open
// for writing contradicts: the server expires the courtesy client, its
// state with it, and grants the second client's open (after answering
// NFS4ERR_DELAY while its laundromat expires the client; the library
// retries). The second client speaks 4.1 whatever the first speaks (the
// helper opens by handle, CLAIM_FH): the server's share reservations
// conflict across minor versions. It lets go of "keep" before the first
// comes back, so that the first can open it again. From then on the first
// client sees what it sees of Ganesha: its client ID is gone, "keep" is
// opened again (by handle in 4.1, by name in 4.0) and carries on, "taken"
// is lost.
//
// What tells the first client so differs by version. Over 4.1 its first
// call back finds the session gone (NFS4ERR_BADSESSION), never
// NFS4ERR_EXPIRED: Ganesha's window between a lease's end and the client
// ID's removal (TestLeaseExpiredBeforeReaped) has no counterpart here.
// Over 4.0 knfsd answers NFS4ERR_EXPIRED to every operation naming a
// client ID of this boot that it no longer has (STALE_CLIENTID is for
// one of an earlier boot): RENEW, the WRITE's stateid, and the OPEN that
// would open the file again. RENEW's or OPEN's, whichever comes first,
// starts the recovery.
func knfsdLeaseExpiry(t *testing.T, version Version) {
	srv := knfsd.Shared(t)
	testutil.CheckLeaks(t) // here: the shared guest's goroutines are not this test's
	rel := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	side := &guestSide{srv: srv, dir: rel}
	side.exec(t, fmt.Sprintf("rm -rf %[1]s && mkdir -m 0777 %[1]s", side.path(t, "")))
	t.Cleanup(func() { side.exec(t, "rm -rf "+side.path(t, "")) })
	fwd := tcpfwd.Start(t, srv.Addr())
	fwd.KeepReservedPorts() // the export is `secure`
	owner := "gonfs-lease-" + randomID(4)
	dir := "/" + rel
	causes := &causeLog{}
	defer func() {
		if version == Version40 {
			if !causes.saw(errLeaseExpired40) || causes.saw(ErrStaleClientID) {
				t.Errorf("recoveries caused by %v; want NFS4ERR_EXPIRED from RENEW or OPEN and no NFS4ERR_STALE_CLIENTID", causes.all())
			}
			return
		}
		if !causes.saw(ErrBadSession) || causes.saw(ErrExpired) {
			t.Errorf("recoveries caused by %v; want NFS4ERR_BADSESSION and no NFS4ERR_EXPIRED", causes.all())
		}
	}()
	stateExpired(t, expiry{
		fwd:  fwd,
		dir:  dir,
		side: side,
		cfg:  Config{Version: version, OwnerID: owner, Policy: policy.Hedged(policy.Options{}), Logger: slog.New(causes)},
		chown: func(t *testing.T, name string) {
			side.exec(t, "chown 0:0 "+side.path(t, name))
		},
		expire: func(t *testing.T) {
			if st := waitClientStatus(t, srv, owner, "courtesy"); st != "courtesy" {
				t.Fatalf("the silent client's status is %q after a minute; want courtesy", st)
			}
			other := dialServer(t, srv.Addr(), Config{Version: Version41})
			release := openDenyingWrites(t, other, dir+"/keep")
			if st := clientStatus(t, srv, owner); st != "" {
				t.Errorf("after a conflicting open the silent client's status is %q; want it gone", st)
			}
			if data := side.readFile(t, "keep"); string(data) != "before;" {
				t.Errorf("after the client's state expired, keep holds %q; want what it wrote, %q", data, "before;")
			}
			release()
		},
	})
}

// clientStatus returns the status ("confirmed", "courtesy", ...) of the
// client with owner ID owner in knfsd's /proc/fs/nfsd/clients, or "" if
// the server does not list it. The owner picks this client's record
// alone: other tests' clients may be courtesy clients too.
func clientStatus(t *testing.T, srv *knfsd.Server, owner string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := srv.Exec(ctx, "for f in /proc/fs/nfsd/clients/*/info; do grep -q '"+owner+"' $f && grep status: $f; done; true")
	if err != nil {
		t.Fatal(err)
	}
	_, st, _ := strings.Cut(strings.TrimSpace(out), "status: ")
	return st
}

// waitClientStatus polls clientStatus once a second, for up to a minute
// (knfsd's lease is 10 s), until it is want, and returns the last status.
func waitClientStatus(t *testing.T, srv *knfsd.Server, owner, want string) string {
	t.Helper()
	st := ""
	for i := 0; i < 60 && st != want; i++ {
		time.Sleep(time.Second)
		st = clientStatus(t, srv, owner)
	}
	return st
}

// openDenyingWrites opens name on c for reading with
// OPEN4_SHARE_DENY_WRITE, a share reservation the library never asks for
// (its opens deny nothing), and returns a function that closes it. Over
// NFSv4.1 (CLAIM_FH).
func openDenyingWrites(t *testing.T, c *Client, name string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fh, _, err := c.lookupFresh(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	q := &openReq{putFH: fh, args: openArgs{claim: claimFH}}
	q.args.shareAccess = c.shareAccess(shareAccessRead)
	q.args.shareDeny = shareDenyWrite
	q.args.owner = c.newOpenOwner()
	q.mask = c.mask(statMask)
	if _, err := c.callEpoch(ctx, q); err != nil {
		t.Fatalf("OPEN %s for reading, denying writes: %v", name, err)
	}
	return func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.closeState(ctx, q.fh, nil, func() *stateID { return &q.res.stateID }); err != nil {
			t.Fatalf("CLOSE of the open denying writes: %v", err)
		}
	}
}
