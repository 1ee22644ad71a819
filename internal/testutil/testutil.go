// Package testutil holds helpers shared by this module's tests.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
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

// FileSHA256 returns the hex SHA-256 of the local file at path, failing tb
// if it cannot be read.
func FileSHA256(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
