package knfsd

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPause: a NULL call sent while the guest is paused is answered, on
// the same connection, only after Resume; and the guest's clock has
// counted the pause, so that a pause longer than the lease lets nfsd
// expire leases.
func TestPause(t *testing.T) {
	srv := Start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uptime := func() float64 {
		t.Helper()
		out, err := srv.Exec(ctx, "cat /proc/uptime")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(out)
		if len(f) == 0 {
			t.Fatalf("/proc/uptime: %q", out)
		}
		s, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("/proc/uptime: %q", out)
		}
		return s
	}
	c := dialFrom(t, srv.Addr(), false)
	defer c.Close()
	if err := nullCall(c, 1); err != nil {
		t.Fatal(err)
	}
	before := uptime()

	const pause = 2 * time.Second
	srv.Pause(t)
	var resumed atomic.Bool
	answered := make(chan bool, 1)
	go func() {
		err := nullCall(c, 2)
		if err != nil {
			t.Error(err)
		}
		answered <- resumed.Load()
	}()
	time.Sleep(pause) // the outage, not a timing assertion
	resumed.Store(true)
	srv.Resume()
	if !<-answered {
		t.Error("a NULL call sent while the guest was paused was answered before Resume")
	}
	d := uptime() - before
	t.Logf("the guest's uptime grew by %.2f s across a %v pause", d, pause)
	if d < pause.Seconds() {
		t.Errorf("the guest's uptime grew by %.2f s across a %v pause; want at least the pause", d, pause)
	}
}
