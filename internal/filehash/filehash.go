// Package filehash hashes local files, for tests and the programs that
// check a copy against its original (the nfscp demo, the benchmarks). It
// does not import testing; tests use testutil.FileSHA256, which calls it.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// SHA256 returns the hex SHA-256 of the local file at path.
func SHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("filehash: reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
