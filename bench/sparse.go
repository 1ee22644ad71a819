package bench

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
)

// The sparse-file copies: a file of Env.Size bytes that is mostly holes,
// copied down and up. A client that finds the holes (SEEK over NFSv4.2,
// SEEK_DATA and SEEK_HOLE locally) moves only the data and leaves the
// copy's holes unallocated; one that does not reads the holes as zeros
// and writes them out, so its copy takes the file's whole size.

// SparseFile is the name of the sparse file Setup creates in the export.
const SparseFile = "sparse"

// sparseExtents returns where the sparse file of size bytes holds data:
// ten extents of n bytes, one at the start of each tenth of the file (in
// whole 4 KiB pages), holes between them and after the last. n is 1 MiB,
// or a twentieth of a file under 20 MiB, in whole pages.
func sparseExtents(size int64) (offsets []int64, n int64) {
	const page = 4 << 10
	n = min(1<<20, size/20) &^ (page - 1)
	for i := range int64(10) {
		offsets = append(offsets, i*size/10&^(page-1))
	}
	return offsets, n
}

// writeSparse creates the sparse file of size bytes at every path, its
// extents holding ChaCha8 output, and returns its SHA-256 and the bytes
// of data it holds.
func writeSparse(size int64, paths ...string) (sum [32]byte, data int64, err error) {
	var fs []*os.File
	for _, p := range paths {
		f, err := os.Create(p)
		if err != nil {
			return sum, 0, fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		fs = append(fs, f)
	}
	offsets, n := sparseExtents(size)
	src := rand.NewChaCha8([32]byte{'s', 'p', 'a', 'r', 's', 'e'})
	buf := make([]byte, n)
	zeros := make([]byte, 1<<20)
	h := sha256.New()
	var at int64 // how far h has hashed
	for _, off := range offsets {
		if _, err := io.ReadFull(src, buf); err != nil {
			return sum, 0, fmt.Errorf("bench: %w", err)
		}
		for _, f := range fs {
			if _, err := f.WriteAt(buf, off); err != nil {
				return sum, 0, fmt.Errorf("bench: writing the sparse file: %w", err)
			}
		}
		hashZeros(h, zeros, off-at)
		h.Write(buf)
		at = off + n
		data += n
	}
	hashZeros(h, zeros, size-at)
	for _, f := range fs {
		// Truncate gives the file its size, the end a hole; on disk
		// before any measurement, as writeRandom's test file.
		if err := f.Truncate(size); err != nil {
			return sum, 0, fmt.Errorf("bench: %w", err)
		}
		if err := f.Sync(); err != nil {
			return sum, 0, fmt.Errorf("bench: %w", err)
		}
		if err := f.Close(); err != nil {
			return sum, 0, fmt.Errorf("bench: %w", err)
		}
	}
	h.Sum(sum[:0])
	return sum, data, nil
}

// hashZeros hashes n zero bytes, from zeros (all zero).
func hashZeros(h hash.Hash, zeros []byte, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		h.Write(zeros[:k])
		n -= k
	}
}
