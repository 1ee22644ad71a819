// Package testutil holds helpers shared by this module's tests.
package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckLeaks registers a cleanup that fails t if goroutines started during
// the test are still running once every other cleanup has run. Call it
// first in a test, so that its cleanup runs last.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutine leak: %v", err)
		}
	})
}
