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

// NfscpStreamName is the nfscp contender of the same-server copy that
// speaks NFSv4.1, which has no COPY, and so streams.
const NfscpStreamName = NfscpName + " --nfs-version 4.1"

// LibnfsName is the name of libnfs's nfs-cp contenders.
const LibnfsName = "libnfs nfs-cp"

// Commands returns the command-line contenders. "nfscp" is resolved
// through Env.Tools (the runner builds it); nfs-cp is Debian's
// libnfs-utils. libnfs reads over NFSv4 and writes over NFSv3: its NFSv4
// WRITE path fails in Debian 12's libnfs 4.0.0. So it cannot copy within
// knfsd, which serves NFSv4 alone, and has no same-server contender.
func Commands() []Command {
	const (
		libnfsRead  = "nfs://{host}{pseudo}/{remote}?version=4&nfsport={port}"
		libnfsWrite = "nfs://{host}{pseudo}/{remote}?version=3&nfsport={port}&mountport={mountport}"
		nfscpURL    = "nfs://{host}:{port}{pseudo}/{remote}"
	)
	return []Command{
		{
			Name: NfscpName, Workload: SeqRead, Ours: true,
			Note: "examples/nfscp binary, NFSv4.2, -q",
			Args: []string{"nfscp", "-q", nfscpURL, "{local}"},
		},
		{
			Name: NfscpName, Workload: SeqWrite, Ours: true,
			Note: "examples/nfscp binary, NFSv4.2, -q",
			Args: []string{"nfscp", "-q", "{local}", nfscpURL},
		},
		{
			Name: LibnfsName, Workload: SeqRead,
			Note: "libnfs-utils, NFSv4 URL (version=4)",
			Args: []string{"nfs-cp", libnfsRead, "{local}"},
		},
		{
			Name: LibnfsName, Workload: SeqWrite,
			Note: "libnfs-utils, NFSv3 URL (its NFSv4 write fails in Debian 12's libnfs 4.0.0)",
			Args: []string{"nfs-cp", "{local}", libnfsWrite},
		},
		{
			Name: NfscpName, Workload: SameServerCopy, Ours: true,
			Note: "NFSv4.2 (the default): CLONE refused (ext4), then COPY of the whole file, which Linux does 4 MiB per call; -q",
			Args: []string{"nfscp", "-q", nfscpURL, "nfs://{host}:{port}{pseudo}/{copy}"},
		},
		{
			Name: NfscpStreamName, Workload: SameServerCopy, Ours: true,
			Note: "NFSv4.1, which has no COPY: nfscp streams the file, READs in and WRITEs out, COMMIT at the end; -q",
			Args: []string{"nfscp", "-q", "--nfs-version", "4.1", nfscpURL, "nfs://{host}:{port}{pseudo}/{copy}"},
		},
		{
			Name: NfscpName, Workload: SparseDown, Ours: true,
			Note: "NFSv4.2: SEEK finds the data, only it is read, the local copy truncated to size; -q",
			Args: []string{"nfscp", "-q", nfscpURL, "{local}"},
		},
		{
			Name: LibnfsName, Workload: SparseDown,
			Note: "NFSv4 URL: reads every byte, holes as zeros, and writes them",
			Args: []string{"nfs-cp", libnfsRead, "{local}"},
		},
		{
			Name: NfscpName, Workload: SparseUp, Ours: true,
			Note: "NFSv4.2: SEEK_DATA/SEEK_HOLE find the data, only it is written, SETATTR of the size, COMMIT; -q",
			Args: []string{"nfscp", "-q", "{local}", nfscpURL},
		},
		{
			Name: LibnfsName, Workload: SparseUp,
			Note: "NFSv3 URL: reads every byte, holes as zeros, and writes them",
			Args: []string{"nfs-cp", "{local}", libnfsWrite},
		},
	}
}

// Contenders returns the throughput line-up: for the sequential read and
// write this library first (the baseline), then nfscp, libnfs,
// vmware/go-nfs-client; then the machine's limits; then the same-server
// and sparse copies, nfscp first (the baseline), from Commands.
func Contenders() []Contender {
	cmds := Commands()
	var out []Contender
	byCommand := func(w Workload) {
		for _, c := range cmds {
			if c.Workload == w {
				out = append(out, c.Contender())
			}
		}
	}
	out = append(out, GonfsRead())
	byCommand(SeqRead)
	out = append(out, VMwareRead(), GonfsWrite())
	byCommand(SeqWrite)
	out = append(out, VMwareWrite(), LoopbackTCP(), LocalRead(), LocalWrite())
	for _, w := range []Workload{SameServerCopy, SparseDown, SparseUp} {
		byCommand(w)
	}
	return out
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

// RoundOrder returns the order in which round runs the line-up: the
// workloads one after the other, as the line-up has them, and each
// workload's contenders back to back in the order of a Williams design
// (0 1 3 2, 1 2 0 3, 2 3 1 0, 3 0 2 1 for four). So over as many rounds
// as a workload has contenders, each of them runs first once, right after
// the workload before, and (for an even number of them) follows each of
// the others once. A plain rotation (A B C, B C A, C A B) changes only
// who goes first and keeps every other contender behind the same one: the
// in-process reader ran right after the last sparse-file copy in every
// round, and took 1.3× the CPU of the nfscp binary reading right after it
// (the two take the same when their places vary).
func RoundOrder(lineup []Contender, round int) []Contender {
	var workloads []Workload
	groups := map[Workload][]Contender{}
	for _, c := range lineup {
		if _, ok := groups[c.Workload]; !ok {
			workloads = append(workloads, c.Workload)
		}
		groups[c.Workload] = append(groups[c.Workload], c)
	}
	order := make([]Contender, 0, len(lineup))
	for _, w := range workloads {
		g := groups[w]
		n := len(g)
		r := ((round % n) + n) % n
		// The design's first row: 0, 1, n-1, 2, n-2, …; row r adds r.
		lo, hi := 1, n-1
		for i := range n {
			var x int
			switch {
			case i == 0:
				x = 0
			case i%2 == 1:
				x, lo = lo, lo+1
			default:
				x, hi = hi, hi-1
			}
			order = append(order, g[(x+r)%n])
		}
	}
	return order
}
