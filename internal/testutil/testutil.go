// Package testutil holds helpers shared by this module's tests.
package testutil

import (
	"testing"

	"github.com/gonfs/nfs/internal/filehash"
	"go.uber.org/goleak"
)

// VerifyMain is goleak.VerifyTestMain for a TestMain: it runs run (m.Run,
// or a function that calls m.Run and then stops what TestMain started) and
// exits with its status, or with status 1 if that is 0 but goroutines are
// still running that were not running when VerifyMain was called. Use it
// where a leak is found as easily from its stack as from the test's name;
// CheckLeaks attributes a leak to one test.
//
//	func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }
func VerifyMain(run func() int) {
	goleak.VerifyTestMain(mainFunc(run), goleak.IgnoreCurrent())
}

// mainFunc is a function as a goleak.TestingM.
type mainFunc func() int

func (f mainFunc) Run() int { return f() }

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
