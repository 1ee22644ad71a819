package soak

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDisk shows that the final check on the server's disk notices
// each way the disk can differ from what the client acknowledged: a
// file with other content, a file missing, a file that should be gone.
func TestCheckDisk(t *testing.T) {
	export := t.TempDir()
	want := map[string]string{}
	for k := range workers {
		dir := fmt.Sprintf("w%d", k)
		if err := os.Mkdir(filepath.Join(export, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			name := fmt.Sprintf("%s/f%06d", dir, i)
			content := []byte(name)
			if err := os.WriteFile(filepath.Join(export, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(content)
			want[name] = hex.EncodeToString(sum[:])
		}
	}
	if n, problems := checkDisk(export, want); n != 3*workers || len(problems) > 0 {
		t.Fatalf("identical disk and model: compared %d files, problems %q", n, problems)
	}

	for name, content := range map[string]string{"w0/f000001": "changed", "w2/extra": "x"} {
		if err := os.WriteFile(filepath.Join(export, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(export, "w1/f000002")); err != nil {
		t.Fatal(err)
	}
	_, problems := checkDisk(export, want)
	all := strings.Join(problems, "\n")
	for _, wantText := range []string{"w0/f000001 on the server has sha256", "w2/extra is on the server but", "w1/f000002 acknowledged but not on the server"} {
		if !strings.Contains(all, wantText) {
			t.Errorf("problems do not say %q:\n%s", wantText, all)
		}
	}
	if len(problems) != 3 {
		t.Errorf("%d problems, want 3:\n%s", len(problems), all)
	}
}
