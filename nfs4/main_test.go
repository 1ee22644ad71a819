package nfs4

import (
	"fmt"
	"os"
	"testing"

	"github.com/gonfs/nfs/internal/knfsd"
)

func TestMain(m *testing.M) {
	startWireCheck()
	code := m.Run()
	if err := knfsd.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if !stopWireCheck() {
		code = 1
	}
	os.Exit(code)
}
