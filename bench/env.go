package bench

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
)

// TestFile is the name of the file Setup creates in the export.
const TestFile = "big"

// An Env is one benchmark environment: a Ganesha on loopback serving the
// same export over NFSv4.1 and NFSv3, a file of known content in it, a local
// copy of that file to write from, and a scratch directory for the copies
// read back. Contenders only read it; an Env is safe for concurrent use.
type Env struct {
	// Host is the server's address, "127.0.0.1".
	Host string
	// Port is the NFS port (NFSv4.1 and NFSv3 alike).
	Port int
	// MountPort is the NFSv3 MOUNT port.
	MountPort int
	// Pseudo is the export's NFSv4 path and NFSv3 mount path, "/export".
	Pseudo string
	// ExportDir is the exported local directory.
	ExportDir string
	// Size is the size of TestFile, in bytes.
	Size int64
	// Sum is the SHA-256 of TestFile's content.
	Sum [32]byte
	// Src is a local file with TestFile's content, for write workloads.
	Src string
	// Scratch is a local directory for the copies read workloads make:
	// a tmpfs (/dev/shm) when there is one, so that writing the copy
	// costs a memory copy and no disk I/O.
	Scratch string
	// Tools maps program names (the first word of a Command) to paths,
	// for programs not on PATH, such as a freshly built nfscp.
	Tools map[string]string

	// SparseSum is the SHA-256 of SparseFile, Size bytes of which
	// SparseData are data and the rest holes; SparseSrc is a local copy
	// of it in Scratch, for uploads.
	SparseSum  [32]byte
	SparseData int64
	SparseSrc  string

	// Knfsd is the server of the same-server copy, holding TestFile at
	// its root; nil unless StartKnfsd started it. CopyServer describes
	// it, for the report.
	Knfsd      *knfsd.Server
	CopyServer string
	knfsdErr   error // why StartKnfsd failed
}

// Addr returns the NFS server's address, "host:port".
func (e *Env) Addr() string { return e.Host + ":" + strconv.Itoa(e.Port) }

// RemotePath returns the NFSv4 path of name in the export.
func (e *Env) RemotePath(name string) string { return e.Pseudo + "/" + name }

// LocalPath returns the local path of name in the exported directory.
func (e *Env) LocalPath(name string) string { return filepath.Join(e.ExportDir, name) }

// Setup starts a Ganesha on loopback with NFSv3 enabled (and so rpcbind
// and MOUNT, which libnfs's NFSv3 mode and vmware/go-nfs-client need),
// and creates TestFile, size bytes of pseudo-random data that does not
// compress, in its export, with a copy at Env.Src, and SparseFile, size
// bytes mostly holes, with a copy at Env.SparseSrc. Everything is removed
// by tb's cleanups.
func Setup(tb ganesha.TB, size int64) *Env {
	tb.Helper()
	srv := ganesha.Start(tb, ganesha.Config{NFSv3: true})
	e := &Env{
		Host:      "127.0.0.1",
		Port:      srv.Port(),
		MountPort: srv.MountPort(),
		Pseudo:    srv.Pseudo(),
		ExportDir: srv.ExportDir(),
		Size:      size,
		Tools:     map[string]string{},
	}
	e.Scratch = scratchDir(tb)
	e.Src = filepath.Join(e.Scratch, "src")
	sum, err := writeRandom(size, e.LocalPath(TestFile), e.Src)
	if err != nil {
		tb.Fatal(err)
	}
	e.Sum = sum
	e.SparseSrc = filepath.Join(e.Scratch, "sparse-src")
	if e.SparseSum, e.SparseData, err = writeSparse(size, e.LocalPath(SparseFile), e.SparseSrc); err != nil {
		tb.Fatal(err)
	}
	return e
}

// scratchDir makes a temporary directory on /dev/shm if it is a tmpfs
// directory, in the default place otherwise.
func scratchDir(tb ganesha.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "gonfs-bench-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// writeRandom writes size bytes of ChaCha8 output to every path and returns
// their SHA-256.
func writeRandom(size int64, paths ...string) ([32]byte, error) {
	var ws []io.Writer
	for _, p := range paths {
		f, err := os.Create(p)
		if err != nil {
			return [32]byte{}, fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		ws = append(ws, f)
	}
	h := sha256.New()
	ws = append(ws, h)
	src := rand.NewChaCha8([32]byte{'g', 'o', 'n', 'f', 's'})
	if _, err := io.CopyN(io.MultiWriter(ws...), src, size); err != nil {
		return [32]byte{}, fmt.Errorf("bench: writing the test file: %w", err)
	}
	// On disk before any measurement, so that no contender pays for
	// the test file's writeback.
	for _, w := range ws[:len(ws)-1] {
		if err := w.(*os.File).Sync(); err != nil {
			return [32]byte{}, fmt.Errorf("bench: %w", err)
		}
		if err := w.(*os.File).Close(); err != nil {
			return [32]byte{}, fmt.Errorf("bench: %w", err)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}
