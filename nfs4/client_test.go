package nfs4

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/rpc"
	"github.com/gonfs/nfs/xprt"
)

// TestConfigDefaults: a zero Config gets the documented defaults, and a
// field that is set keeps its value.
func TestConfigDefaults(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RSize != DefaultRSize || cfg.WSize != DefaultWSize || cfg.Slots != DefaultSlots ||
		cfg.Window != DefaultWindow || cfg.Logger == nil || cfg.OwnerID == "" {
		t.Errorf("zero Config became %+v", cfg)
	}
	if cfg.Auth == nil || cfg.Auth.Flavor() != rpc.AuthFlavorSys {
		t.Errorf("default Auth %v, want AUTH_SYS", cfg.Auth)
	}
	b := cfg.BackOff()
	if first := b.NextBackOff(); first < DefaultBackOffInitial/2 || first > DefaultBackOffInitial*3/2 {
		t.Errorf("default BackOff's first wait %v, want about %v", first, DefaultBackOffInitial)
	}
	for range 20 {
		if w := b.NextBackOff(); w > DefaultBackOffMax*3/2 || w == backoff.Stop {
			t.Fatalf("default BackOff waits %v, want at most about %v and never stop", w, DefaultBackOffMax)
		}
	}

	set := Config{Auth: rpc.AuthNone, RSize: 4096, WSize: 8192, Slots: 2, Window: 3, OwnerID: "me",
		BackOff: func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Second} }}
	got, err := set.withDefaults()
	if err != nil || got.Auth != rpc.AuthNone || got.RSize != 4096 || got.WSize != 8192 || got.Slots != 2 ||
		got.Window != 3 || got.OwnerID != "me" || got.BackOff().NextBackOff() != time.Second {
		t.Errorf("set Config became %+v, %v", got, err)
	}
}

// A Dial whose context ends while nothing listens says so: the context's
// error, and the refused connection behind it.
func TestDialDeadlineSaysWhy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, addr, Config{})
	var de *xprt.DialError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &de) || de.Cause != policy.CauseRefused {
		t.Fatalf("Dial to a closed port: %v; want the deadline and a refused *xprt.DialError", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("the message %q does not say the connection was refused", err)
	}
}
