package bench

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLibraryDoesNotImportPeers: the peers compared against, and the
// plotting library, stay out of the library's import graph; only this
// package brings them in.
func TestLibraryDoesNotImportPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lib := []string{"github.com/gonfs/nfs/nfs4", "github.com/gonfs/nfs/rpc", "github.com/gonfs/nfs/xprt", "github.com/gonfs/nfs/policy"}
	out, err := exec.CommandContext(ctx, "go", append([]string{"list", "-deps"}, lib...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, peer := range []string{"github.com/vmware/", "github.com/rasky/", "gonum.org/"} {
			if strings.HasPrefix(dep, peer) {
				t.Errorf("the library imports %s", dep)
			}
		}
	}
}
