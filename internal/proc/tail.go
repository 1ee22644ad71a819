package proc

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Tail returns the last n lines of the file at path, read from at most its
// last 64 KiB: a daemon's log or output, for a test's failure message. A
// file that cannot be read gives the error, in parentheses.
func Tail(path string, n int) string {
	const window = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return fmt.Sprintf("(%v)\n", err)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := strings.SplitAfter(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "") + "\n"
}
