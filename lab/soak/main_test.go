package soak

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gonfs/nfs/internal/netlab"
	"github.com/gonfs/nfs/internal/testutil"
)

func TestMain(m *testing.M) {
	if env := os.Getenv(clientEnv); env != "" {
		os.Exit(runClient(env))
	}
	if os.Geteuid() == 0 {
		deleted, err := netlab.Sweep()
		if len(deleted) > 0 {
			fmt.Fprintf(os.Stderr, "soak: deleted %d namespaces left by an interrupted run: %s\n", len(deleted), strings.Join(deleted, " "))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: sweep:", err)
		}
	}
	netlab.TrapInterrupts()
	testutil.VerifyMain(m.Run)
}
