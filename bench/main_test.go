package bench

import (
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
)

// TestMain checks for goroutine leaks once, after every test and
// benchmark: each one's servers, clients and contenders are stopped by its
// cleanups, and a leaked goroutine's stack names its maker.
func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }
