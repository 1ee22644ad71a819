package rpc_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/rpc/xdr"
)

func gids(n int) []uint32 {
	g := make([]uint32, n)
	for i := range g {
		g[i] = uint32(1000 + i)
	}
	return g
}

// TestNewAuthSysLimits checks the AUTH_SYS limits at exactly the maximum
// and one past it.
func TestNewAuthSysLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name    string
		cred    rpc.SysCred
		ok      bool
		errText string
	}{
		{"16 groups", rpc.SysCred{GIDs: gids(16)}, true, ""},
		{"17 groups", rpc.SysCred{GIDs: gids(17)}, false, "17 supplementary groups"},
		{"255-byte machine name", rpc.SysCred{Machine: strings.Repeat("m", 255)}, true, ""},
		{"256-byte machine name", rpc.SysCred{Machine: strings.Repeat("m", 256)}, false, "machine name is 256 bytes"},
		{"zero value", rpc.SysCred{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := rpc.NewAuthSys(tt.cred)
			if tt.ok {
				if err != nil || a == nil {
					t.Fatalf("NewAuthSys = %v, %v; want success", a, err)
				}
				return
			}
			if a != nil || !errors.Is(err, rpc.ErrSysCred) || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("NewAuthSys = %v, %v; want an ErrSysCred error saying %q", a, err, tt.errText)
			}
		})
	}
}

// sysCredBody returns the credential body a sends.
func sysCredBody(t testing.TB, a *rpc.AuthSys) []byte {
	t.Helper()
	var e xdr.Encoder
	a.AppendCredVerf(&e, nil)
	d := xdr.NewDecoder(e.Bytes())
	if f := d.Uint32(); f != rpc.AuthFlavorSys {
		t.Fatalf("credential flavor %d, want AUTH_SYS", f)
	}
	body := d.Opaque(rpc.MaxAuthBody)
	if f, n := d.Uint32(), len(d.Opaque(rpc.MaxAuthBody)); f != rpc.AuthFlavorNone || n != 0 {
		t.Fatalf("verifier flavor %d with %d bytes, want empty AUTH_NONE", f, n)
	}
	if d.Err() != nil || d.Remaining() != 0 {
		t.Fatalf("credential and verifier do not parse: %v, %d bytes left", d.Err(), d.Remaining())
	}
	return body
}

// TestSysCredRoundTrip checks that ParseSysCred reads back what NewAuthSys
// encodes, at the limits and between them.
func TestSysCredRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	creds := []rpc.SysCred{
		{},
		testCred,
		{Stamp: 0xffffffff, Machine: strings.Repeat("n", rpc.MaxMachineName), UID: 0, GID: 0, GIDs: gids(rpc.MaxSysGIDs)},
		{Machine: "abc", UID: 65534, GID: 65534, GIDs: []uint32{}},
		{Machine: "four", UID: 1, GID: 2, GIDs: []uint32{3}},
	}
	for _, c := range creds {
		a := mustAuthSys(t, c)
		got, err := rpc.ParseSysCred(sysCredBody(t, a))
		if err != nil {
			t.Fatalf("ParseSysCred(%+v): %v", c, err)
		}
		if got.Stamp != c.Stamp || got.Machine != c.Machine || got.UID != c.UID || got.GID != c.GID ||
			!slices.Equal(got.GIDs, c.GIDs) {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
		if ac := a.Cred(); ac.Machine != c.Machine || !slices.Equal(ac.GIDs, c.GIDs) {
			t.Errorf("Cred() = %+v, want %+v", ac, c)
		}
	}
}

// TestAuthSysImmutable checks that neither the caller's slice nor the one
// Cred returns can change what an AuthSys sends.
func TestAuthSysImmutable(t *testing.T) {
	testutil.CheckLeaks(t)
	c := rpc.SysCred{Machine: "m", UID: 1, GID: 1, GIDs: []uint32{5, 6}}
	a := mustAuthSys(t, c)
	before := sysCredBody(t, a)
	c.GIDs[0] = 99
	a.Cred().GIDs[1] = 99
	if after := sysCredBody(t, a); !bytes.Equal(before, after) {
		t.Errorf("credential changed from % x to % x", before, after)
	}
	if g := a.Cred().GIDs; !slices.Equal(g, []uint32{5, 6}) {
		t.Errorf("Cred().GIDs = %v, want [5 6]", g)
	}
}

// TestAuthSysConcurrent encodes from many goroutines at once, as a client
// does; run with -race.
func TestAuthSysConcurrent(t *testing.T) {
	testutil.CheckLeaks(t)
	a := mustAuthSys(t, testCred)
	want := sysCredBody(t, a)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e xdr.Encoder
			for i := 0; i < 100; i++ {
				e.Reset(e.Bytes()[:0])
				rpc.AppendCall(&e, uint32(i), nfsProg, nfsVers, 1, a)
				if !bytes.Contains(e.Bytes(), want) {
					errs <- fmt.Errorf("call %d lacks the credential", i)
					return
				}
				if err := a.Verify(rpc.OpaqueAuth{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestParseSysCredMalformed checks that hostile credential bodies are
// rejected with ErrMalformed, never a panic.
func TestParseSysCredMalformed(t *testing.T) {
	testutil.CheckLeaks(t)
	good := sysCredBody(t, mustAuthSys(t, testCred))
	for n := 0; n < len(good); n++ {
		if _, err := rpc.ParseSysCred(good[:n]); !errors.Is(err, rpc.ErrMalformed) || !errors.Is(err, xdr.ErrShort) {
			t.Errorf("body cut at %d of %d bytes: err = %v, want ErrMalformed wrapping xdr.ErrShort", n, len(good), err)
		}
	}

	raw := func(machine string, groups int, extra ...byte) []byte {
		var e xdr.Encoder
		e.Uint32(1)
		e.String(machine)
		e.Uint32(2)
		e.Uint32(3)
		e.Uint32(uint32(groups))
		for i := 0; i < groups; i++ {
			e.Uint32(uint32(i))
		}
		return append(e.Bytes(), extra...)
	}
	badPad := raw("abc", 0)
	badPad[11] = 'x' // the pad byte after "abc"
	hostile := raw("", 0)
	hostile[len(hostile)-4] = 0xff // group count 0xff000000
	tests := []struct {
		name string
		body []byte
		also error
	}{
		{"17 groups", raw("m", 17), xdr.ErrTooLong},
		{"256-byte machine name", raw(strings.Repeat("m", 256), 0), xdr.ErrTooLong},
		{"trailing bytes", raw("m", 1, 0, 0, 0, 0), nil},
		{"machine name padding", badPad, xdr.ErrPadding},
		{"hostile group count", hostile, xdr.ErrTooLong},
	}
	for _, tt := range tests {
		c, err := rpc.ParseSysCred(tt.body)
		if !errors.Is(err, rpc.ErrMalformed) || (tt.also != nil && !errors.Is(err, tt.also)) {
			t.Errorf("%s: ParseSysCred = %+v, %v; want ErrMalformed wrapping %v", tt.name, c, err, tt.also)
		}
	}
	if c, err := rpc.ParseSysCred(raw(strings.Repeat("m", 255), 16)); err != nil || len(c.GIDs) != 16 {
		t.Errorf("16 groups and a 255-byte name: %+v, %v; want success", c, err)
	}
}

// TestProcessCred checks that the process's credential is this process's
// uid, gid, groups and host name, within the AUTH_SYS limits, and that
// NewAuthSys takes it.
func TestProcessCred(t *testing.T) {
	testutil.CheckLeaks(t)
	c := rpc.ProcessCred()
	if c.UID != uint32(os.Getuid()) || c.GID != uint32(os.Getgid()) {
		t.Errorf("ProcessCred uid %d gid %d, want %d %d", c.UID, c.GID, os.Getuid(), os.Getgid())
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(host, c.Machine) || len(c.Machine) != min(len(host), rpc.MaxMachineName) {
		t.Errorf("ProcessCred machine %q, host name %q", c.Machine, host)
	}
	if len(c.GIDs) > rpc.MaxSysGIDs || slices.Contains(c.GIDs, c.GID) {
		t.Errorf("ProcessCred groups %v: over %d, or holding the gid %d", c.GIDs, rpc.MaxSysGIDs, c.GID)
	}
	a, err := rpc.NewAuthSys(c)
	if err != nil {
		t.Fatalf("NewAuthSys(ProcessCred()): %v", err)
	}
	if a.Flavor() != rpc.AuthFlavorSys || rpc.AuthNone.Flavor() != rpc.AuthFlavorNone {
		t.Errorf("Flavor: AuthSys %d, AuthNone %d", a.Flavor(), rpc.AuthNone.Flavor())
	}
}

// TestVerify checks which reply verifier flavors each Auth accepts.
func TestVerify(t *testing.T) {
	testutil.CheckLeaks(t)
	sys := mustAuthSys(t, testCred)
	flavors := []uint32{rpc.AuthFlavorNone, rpc.AuthFlavorSys, rpc.AuthFlavorShort, rpc.AuthFlavorDH, rpc.AuthFlavorGSS, 390003}
	accepts := map[rpc.Auth][]uint32{
		rpc.AuthNone: {rpc.AuthFlavorNone},
		sys:          {rpc.AuthFlavorNone, rpc.AuthFlavorShort, rpc.AuthFlavorSys},
	}
	for auth, ok := range accepts {
		for _, f := range flavors {
			err := auth.Verify(rpc.OpaqueAuth{Flavor: f, Body: []byte("shorthand")})
			if want := slices.Contains(ok, f); want != (err == nil) {
				t.Errorf("%T.Verify(flavor %d) = %v, want accepted %v", auth, f, err, want)
			}
			if err != nil && (!errors.Is(err, rpc.ErrVerifier) || !strings.HasPrefix(err.Error(), "rpc: ")) {
				t.Errorf("%T.Verify(flavor %d) = %v, want an ErrVerifier error", auth, f, err)
			}
		}
	}
}

// FuzzParseSysCred checks that ParseSysCred never panics, keeps to the
// AUTH_SYS limits, and that what it accepts NewAuthSys encodes back to the
// same bytes.
func FuzzParseSysCred(f *testing.F) {
	testutil.CheckLeaks(f)
	for _, c := range []rpc.SysCred{{}, testCred, {Machine: "ab", GIDs: gids(16)}} {
		f.Add(sysCredBody(f, mustAuthSys(f, c)))
	}
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := rpc.ParseSysCred(body)
		if err != nil {
			if !errors.Is(err, rpc.ErrMalformed) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if len(c.GIDs) > rpc.MaxSysGIDs || len(c.Machine) > rpc.MaxMachineName {
			t.Fatalf("accepted %d groups and a %d-byte name", len(c.GIDs), len(c.Machine))
		}
		a, err := rpc.NewAuthSys(c)
		if err != nil {
			t.Fatalf("NewAuthSys(%+v) rejected what ParseSysCred accepted: %v", c, err)
		}
		if got := sysCredBody(t, a); !bytes.Equal(got, body) {
			t.Fatalf("re-encoded % x, parsed % x", got, body)
		}
	})
}
