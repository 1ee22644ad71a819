// Package tempfile watches nfscp's temporary files from outside nfscp, for
// its end-to-end tests and its demo. nfscp writes each copy to
// .NAME.nfscp-RANDOM in the destination directory and renames it over NAME
// once complete (tempName in ../../fsys.go makes the name), so the
// temporary file's size is how far a copy in progress has got.
package tempfile

import (
	"os"
	"path/filepath"
)

// Size returns the size of nfscp's temporary file for name in the local
// directory dir, or -1 if there is none.
func Size(dir, name string) int64 {
	ms, _ := filepath.Glob(filepath.Join(dir, "."+name+".nfscp-*"))
	for _, m := range ms {
		if fi, err := os.Stat(m); err == nil {
			return fi.Size()
		}
	}
	return -1
}
