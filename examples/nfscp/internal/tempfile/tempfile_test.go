package tempfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSize(t *testing.T) {
	dir := t.TempDir()
	if got := Size(dir, "f"); got != -1 {
		t.Errorf("Size with no temporary file = %d, want -1", got)
	}
	// Neither the finished file nor another name's temporary file counts.
	for name, size := range map[string]int{"f": 1, ".g.nfscp-0000abcd": 2, ".f.nfscp-1234abcd": 3} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := Size(dir, "f"); got != 3 {
		t.Errorf("Size = %d, want 3, the size of .f.nfscp-1234abcd", got)
	}
}
