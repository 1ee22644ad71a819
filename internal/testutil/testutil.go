// Package testutil holds helpers shared by this module's tests.
package testutil

import (
	"testing"

	"github.com/gonfs/nfs/internal/filehash"
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

// FileSHA256 returns the hex SHA-256 of the local file at path, failing tb
// if it cannot be read. Programs that are not tests use filehash.SHA256.
func FileSHA256(tb testing.TB, path string) string {
	tb.Helper()
	sum, err := filehash.SHA256(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sum
}
