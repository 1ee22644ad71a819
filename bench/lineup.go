package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// The line-up: every contender of the macro comparison, in the order each
// round runs them. Adding a command-line client is one Command here.

// NfscpName is the name of the nfscp contenders (examples/nfscp).
const NfscpName = "nfscp"

// LibnfsName is the name of libnfs's nfs-cp contenders.
const LibnfsName = "libnfs nfs-cp"

// Commands returns the command-line contenders. "nfscp" is resolved
// through Env.Tools (the runner builds it); nfs-cp is Debian's
// libnfs-utils. libnfs reads over NFSv4 and writes over NFSv3: its NFSv4
// WRITE path fails in Debian 12's libnfs 4.0.0.
func Commands() []Command {
	return []Command{
		{
			Name: NfscpName, Workload: SeqRead, Ours: true,
			Note: "examples/nfscp binary, NFSv4.2, -q",
			Args: []string{"nfscp", "-q", "nfs://{host}:{port}{pseudo}/{remote}", "{local}"},
		},
		{
			Name: NfscpName, Workload: SeqWrite, Ours: true,
			Note: "examples/nfscp binary, NFSv4.2, -q",
			Args: []string{"nfscp", "-q", "{local}", "nfs://{host}:{port}{pseudo}/{remote}"},
		},
		{
			Name: LibnfsName, Workload: SeqRead,
			Note: "libnfs-utils, NFSv4 URL (version=4)",
			Args: []string{"nfs-cp", "nfs://{host}{pseudo}/{remote}?version=4&nfsport={port}", "{local}"},
		},
		{
			Name: LibnfsName, Workload: SeqWrite,
			Note: "libnfs-utils, NFSv3 URL (its NFSv4 write fails in Debian 12's libnfs 4.0.0)",
			Args: []string{"nfs-cp", "{local}", "nfs://{host}{pseudo}/{remote}?version=3&nfsport={port}&mountport={mountport}"},
		},
	}
}

// Contenders returns the throughput line-up: for each workload this
// library first (the baseline), then nfscp, libnfs, vmware/go-nfs-client;
// then the machine's limits.
func Contenders() []Contender {
	cmds := Commands()
	var out []Contender
	for _, w := range []Workload{SeqRead, SeqWrite} {
		if w == SeqRead {
			out = append(out, GonfsRead())
		} else {
			out = append(out, GonfsWrite())
		}
		for _, c := range cmds {
			if c.Workload == w {
				out = append(out, c.Contender())
			}
		}
		if w == SeqRead {
			out = append(out, VMwareRead())
		} else {
			out = append(out, VMwareWrite())
		}
	}
	return append(out, LoopbackTCP(), LocalRead(), LocalWrite())
}

// OpsContenders returns the small-operation line-up: this library first.
func OpsContenders() []OpsContender {
	return append(GonfsOps(), VMwareOps()...)
}

// NfscpPackage is the import path of the nfscp tool.
const NfscpPackage = "github.com/gonfs/nfs/examples/nfscp"

// BuildNfscp builds the nfscp tool into dir and returns the binary's path.
// nfscp lives in the examples module, beside this one in the repository: it
// is found through the library module's directory, which this module
// replaces with the repository's root. The error says why nfscp is not
// available, for the report.
func BuildNfscp(ctx context.Context, dir string) (string, error) {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/gonfs/nfs").Output()
	if err != nil {
		return "", fmt.Errorf("bench: finding the repository: go list -m: %v", err)
	}
	bin := filepath.Join(dir, "nfscp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, NfscpPackage)
	cmd.Dir = filepath.Join(strings.TrimSpace(string(root)), "examples")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: go build %s: %v: %s", NfscpPackage, err, firstLine(string(out)))
	}
	return bin, nil
}
