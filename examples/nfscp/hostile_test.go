package main

import (
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/hostile"
)

// --soft --timeo 1s --retrans 1 against a server that sends half of every
// reply and hangs up: nfscp gives up with "server not responding" after
// the 1 s budget of its first call, having redialed with a backoff rather
// than at once.
func TestSoftAgainstBrokenConnections(t *testing.T) {
	s := hostile.Start(t, hostile.Faults{Reply: hostile.CutEvery(0)})
	r := runInProcess(t, "--timeout", "30s", "--soft", "--timeo", "1s", "--retrans", "1", "nfs://"+s.Addr()+"/file", t.TempDir()+"/x")
	t.Logf("exit %d after %d connections: %s", r.code, s.Conns(), r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "server not responding (soft: gave up after ") {
		t.Fatalf("exit %d, stderr %q; want 1 and server not responding", r.code, r.stderr)
	}
	if n := s.Conns(); n > 8 {
		t.Errorf("%d connections; want a backoff between redials (at most 8)", n)
	}
}
