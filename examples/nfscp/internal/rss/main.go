// Command rss is `make nfscp-rss`: it measures the peak memory of
// `nfscp -r` copying trees of different sizes from an NFS server, to show
// that a tree copy's memory does not grow with the number of files.
//
// It starts an NFS-Ganesha on a free loopback port, builds nfscp (or uses
// the binary -bin names), and for each size in -files creates a tree of
// empty files directly in the export directory: directories of -per-dir
// files each, one level below the tree's top (a tree smaller than -per-dir
// is one directory). It copies each tree with `nfscp -r -q` from the
// server to -dst (default: a directory in /dev/shm, so that the copy's
// fsync of every file does not measure the disk), and prints the peak
// resident set size of the nfscp process (getrusage's ru_maxrss, as
// /usr/bin/time -v reports it) and the wall time. It removes every tree
// and copy it made; it needs root (Ganesha's VFS backend does) and free
// disk space for the largest tree's inodes.
//
// Run it from the module root: go run ./examples/nfscp/internal/rss
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
)

func main() {
	os.Exit(measure())
}

func measure() int {
	sizes := flag.String("files", "1000,100000,1000000", "comma-separated `counts` of files, one tree each")
	perDir := flag.Int("per-dir", 1000, "files in each directory")
	bin := flag.String("bin", "", "nfscp `binary` to measure (default: build this one)")
	jobs := flag.Int("j", 4, "nfscp -j")
	dst := flag.String("dst", "/dev/shm", "`directory` to copy the trees into")
	flag.Parse()
	var counts []int
	for s := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "rss: bad count %q\n", s)
			return 2
		}
		counts = append(counts, n)
	}
	if *perDir < 1 {
		fmt.Fprintln(os.Stderr, "rss: -per-dir must be at least 1")
		return 2
	}
	if err := ganesha.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "rss: cannot run NFS-Ganesha here: %v\n", err)
		return 1
	}
	p := ganesha.NewProgram("rss", os.Stderr)
	defer p.Close()
	work := p.TempDir()
	export := filepath.Join(work, "export")
	if err := os.Mkdir(export, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		return 1
	}
	srv := ganesha.Start(p, ganesha.Config{ExportDir: export})
	if *bin == "" {
		*bin = filepath.Join(work, "nfscp")
		build := exec.Command("go", "build", "-o", *bin, "github.com/gonfs/nfs/examples/nfscp")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "rss: go build:", err)
			return 1
		}
	}
	out, err := os.MkdirTemp(*dst, "gonfs-rss-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		return 1
	}
	defer os.RemoveAll(out)

	fmt.Printf("nfscp -r -q -j %d from NFS-Ganesha on loopback to %s; trees of empty files, %d to a directory\n", *jobs, *dst, *perDir)
	fmt.Printf("%10s %6s %12s %10s\n", "files", "dirs", "peak RSS", "wall")
	for _, n := range counts {
		name := fmt.Sprintf("tree%d", n)
		start := time.Now()
		dirs, err := makeTree(filepath.Join(export, name), n, *perDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rss:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "rss: made %d files in %d directories in %s\n", n, dirs, time.Since(start).Round(time.Second))
		rss, wall, err := run(*bin, "-r", "-q", "-j", strconv.Itoa(*jobs),
			"nfs://"+srv.Addr()+srv.Pseudo()+"/"+name, filepath.Join(out, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "rss:", err)
			return 1
		}
		fmt.Printf("%10d %6d %9d KiB %10s\n", n, dirs, rss, wall.Round(100*time.Millisecond))
		for _, d := range []string{filepath.Join(export, name), filepath.Join(out, name)} {
			if err := os.RemoveAll(d); err != nil {
				fmt.Fprintln(os.Stderr, "rss:", err)
				return 1
			}
		}
	}
	return 0
}

// makeTree creates n empty files under root, perDir to a directory, and
// returns how many directories it made, root included.
func makeTree(root string, n, perDir int) (int, error) {
	if err := os.Mkdir(root, 0o755); err != nil {
		return 0, err
	}
	dirs, dir := 1, root
	for i := range n {
		if n > perDir && i%perDir == 0 {
			dir = filepath.Join(root, fmt.Sprintf("d%05d", i/perDir))
			if err := os.Mkdir(dir, 0o755); err != nil {
				return 0, err
			}
			dirs++
		}
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%07d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	return dirs, nil
}

// run runs bin with args and returns its peak resident set size in KiB
// and the time it took.
func run(bin string, args ...string) (int64, time.Duration, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("nfscp %s: %v", strings.Join(args, " "), err)
	}
	wall := time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, fmt.Errorf("no resource usage for nfscp")
	}
	return ru.Maxrss, wall, nil // Linux counts ru_maxrss in KiB
}
