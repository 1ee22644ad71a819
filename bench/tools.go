package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// NfscpPackage is the import path of the nfscp tool.
const NfscpPackage = "github.com/gonfs/nfs/examples/nfscp"

// BuildNfscp builds the nfscp tool into dir and returns the binary's path.
// It must run inside this module. The error says why nfscp is not
// available, for the report.
func BuildNfscp(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "nfscp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, NfscpPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: go build %s: %v: %s", NfscpPackage, err, strings.TrimSpace(lastLines(string(out), 2)))
	}
	return bin, nil
}
