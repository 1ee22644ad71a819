package rpc_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/rpc"
)

// TestStatNames checks that every status prints its RFC name, and that a
// value from a newer server prints its number rather than nothing.
func TestStatNames(t *testing.T) {
	testutil.CheckLeaks(t)
	accept := []string{"SUCCESS", "PROG_UNAVAIL", "PROG_MISMATCH", "PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR"}
	for i, want := range accept {
		if got := rpc.AcceptStat(i).String(); got != want {
			t.Errorf("AcceptStat(%d).String() = %q, want %q", i, got, want)
		}
	}
	reject := []string{"RPC_MISMATCH", "AUTH_ERROR"}
	for i, want := range reject {
		if got := rpc.RejectStat(i).String(); got != want {
			t.Errorf("RejectStat(%d).String() = %q, want %q", i, got, want)
		}
	}
	auth := []string{"AUTH_OK", "AUTH_BADCRED", "AUTH_REJECTEDCRED", "AUTH_BADVERF", "AUTH_REJECTEDVERF",
		"AUTH_TOOWEAK", "AUTH_INVALIDRESP", "AUTH_FAILED", "AUTH_KERB_GENERIC", "AUTH_TIMEEXPIRE",
		"AUTH_TKT_FILE", "AUTH_DECODE", "AUTH_NET_ADDR", "RPCSEC_GSS_CREDPROBLEM", "RPCSEC_GSS_CTXPROBLEM"}
	for i, want := range auth {
		if got := rpc.AuthStat(i).String(); got != want {
			t.Errorf("AuthStat(%d).String() = %q, want %q", i, got, want)
		}
	}

	unknown := []struct {
		v          fmt.Stringer
		name, text string
	}{
		{rpc.AcceptStat(6), "ACCEPT_STAT(6)", "rpc: accept status 6"},
		{rpc.RejectStat(4294967295), "REJECT_STAT(4294967295)", "rpc: reject status 4294967295"},
		{rpc.AuthStat(15), "AUTH_STAT(15)", "rpc: authentication status 15"},
	}
	for _, u := range unknown {
		if got := u.v.String(); got != u.name {
			t.Errorf("String() = %q, want %q", got, u.name)
		}
		if got := u.v.(error).Error(); got != u.text {
			t.Errorf("Error() = %q, want %q", got, u.text)
		}
	}
}

// TestStatErrors checks that each status value is itself a readable error.
func TestStatErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		err  error
		want string
	}{
		{rpc.ProgMismatch, "rpc: program version mismatch"},
		{rpc.GarbageArgs, "rpc: server could not decode the arguments"},
		{rpc.AuthError, "rpc: authentication error"},
		{rpc.RPCMismatch, "rpc: RPC version mismatch"},
		{rpc.AuthTooWeak, "rpc: authentication flavor too weak for the server"},
		{rpc.RPCSECGSSCtxProblem, "rpc: RPCSEC_GSS context problem"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
	for s := rpc.AuthOK; s <= rpc.RPCSECGSSCtxProblem; s++ {
		if msg := s.Error(); !strings.HasPrefix(msg, "rpc: ") || len(msg) < len("rpc: ")+8 {
			t.Errorf("%v.Error() = %q, want a description prefixed with \"rpc: \"", s, msg)
		}
	}
}

// TestErrorMatching checks that errors.Is matches a reply error against its
// own statuses only, through any wrapping, and that equal numbers of
// different status types are not confused.
func TestErrorMatching(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name     string
		err      error
		match    []error
		notMatch []error
	}{
		{
			name:     "PROG_UNAVAIL",
			err:      &rpc.AcceptError{Stat: rpc.ProgUnavail},
			match:    []error{rpc.ProgUnavail},
			notMatch: []error{rpc.ProcUnavail, rpc.AuthBadCred, rpc.AuthError, rpc.ErrMalformed},
		},
		{
			name:     "RPC_MISMATCH",
			err:      &rpc.DeniedError{Stat: rpc.RPCMismatch, Low: 2, High: 2},
			match:    []error{rpc.RPCMismatch},
			notMatch: []error{rpc.AuthOK, rpc.Success, rpc.AuthError},
		},
		{
			name:     "AUTH_ERROR AUTH_TOOWEAK",
			err:      &rpc.DeniedError{Stat: rpc.AuthError, Auth: rpc.AuthTooWeak},
			match:    []error{rpc.AuthError, rpc.AuthTooWeak},
			notMatch: []error{rpc.AuthBadCred, rpc.RPCMismatch, rpc.SystemErr},
		},
		{
			name:     "AUTH_ERROR AUTH_BADCRED",
			err:      &rpc.DeniedError{Stat: rpc.AuthError, Auth: rpc.AuthBadCred},
			match:    []error{rpc.AuthError, rpc.AuthBadCred},
			notMatch: []error{rpc.ProgUnavail, rpc.RejectStat(1) + 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("nfs4: mount: %w", tt.err)
			for _, target := range tt.match {
				if !errors.Is(wrapped, target) {
					t.Errorf("errors.Is(%v, %#v) = false, want true", tt.err, target)
				}
			}
			for _, target := range tt.notMatch {
				if errors.Is(wrapped, target) {
					t.Errorf("errors.Is(%v, %#v) = true, want false", tt.err, target)
				}
			}
		})
	}

	var auth rpc.AuthStat
	if err := fmt.Errorf("wrapped: %w", &rpc.DeniedError{Stat: rpc.AuthError, Auth: rpc.AuthRejectedCred}); !errors.As(err, &auth) || auth != rpc.AuthRejectedCred {
		t.Errorf("errors.As(AuthStat) = %v, want AUTH_REJECTEDCRED", auth)
	}
}

// TestErrorMessages checks what a user reads for each reply error.
func TestErrorMessages(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		err  error
		want string
	}{
		{&rpc.AcceptError{Stat: rpc.ProgMismatch, Low: 2, High: 3}, "rpc: PROG_MISMATCH: server supports versions 2–3"},
		{&rpc.AcceptError{Stat: rpc.ProgUnavail}, "rpc: PROG_UNAVAIL: program unavailable"},
		{&rpc.AcceptError{Stat: rpc.SystemErr}, "rpc: SYSTEM_ERR: server system error"},
		{&rpc.DeniedError{Stat: rpc.RPCMismatch, Low: 2, High: 2}, "rpc: RPC_MISMATCH: server supports RPC versions 2–2"},
		{&rpc.DeniedError{Stat: rpc.AuthError, Auth: rpc.AuthTooWeak},
			"rpc: AUTH_ERROR: AUTH_TOOWEAK: authentication flavor too weak for the server"},
		{&rpc.DeniedError{Stat: rpc.AuthError, Auth: rpc.RPCSECGSSCredProblem},
			"rpc: AUTH_ERROR: RPCSEC_GSS_CREDPROBLEM: server has no credential for the user"},
		{&rpc.DeniedError{Stat: 9}, "rpc: REJECT_STAT(9): reject status 9"},
		{&rpc.AcceptError{Stat: 9}, "rpc: ACCEPT_STAT(9): accept status 9"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
