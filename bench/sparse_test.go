package bench

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/filehash"
)

// TestWriteSparse: the sparse file holds ten extents of 1 MiB (less in a
// small file) that do not overlap, ends in a hole, has the SHA-256
// writeSparse reports, and takes about its data's storage.
func TestWriteSparse(t *testing.T) {
	for _, size := range []int64{smallSize, 64 << 20} {
		offsets, n := sparseExtents(size)
		if len(offsets) != 10 || n <= 0 || n > 1<<20 || n%4096 != 0 {
			t.Fatalf("size %d: extents at %v of %d bytes; want ten of up to 1 MiB in whole pages", size, offsets, n)
		}
		for i, off := range offsets {
			if off%4096 != 0 || i > 0 && off < offsets[i-1]+n || off+n >= size {
				t.Fatalf("size %d: extents at %v of %d bytes overlap, are not page-aligned, or leave no hole at the end", size, offsets, n)
			}
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	const size = 64 << 20
	sum, data, err := writeSparse(size, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if data != 10<<20 {
		t.Errorf("%d bytes of data; want 10 MiB", data)
	}
	for _, p := range []string{a, b} {
		got, err := filehash.SHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %s; writeSparse said %x", p, got, sum)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if alloc := fi.Sys().(*syscall.Stat_t).Blocks * 512; fi.Size() != size || alloc > data+1<<20 {
			t.Errorf("%s: %d bytes taking %d; want %d taking about %d", p, fi.Size(), alloc, size, data)
		}
	}
}
