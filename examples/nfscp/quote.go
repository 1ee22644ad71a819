package main

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Names reach the terminal from the server (a listing may hold any bytes
// but "/" and NUL) and from the command line, and a name can hold escape
// sequences that retitle or clear the terminal, or a newline that forges
// a line of output. nfscp writes such a name in Go's quoted form, as
// strconv.Quote does ("evil\x1b]0;x\a\n"), and every other name as it is.

// quoteName returns name as nfscp writes it: unchanged if it is valid
// UTF-8 made of printable characters (strconv.IsPrint: letters, marks,
// numbers, punctuation, symbols and the ASCII space), quoted otherwise.
func quoteName(name string) string {
	if printable(name) {
		return name
	}
	return strconv.Quote(name)
}

// termSafe escapes, as strconv.Quote would but without the quotes, the
// characters of a line that are not printable. It guards each line nfscp
// prints (errors, warnings, -v), whose reasons can carry text from the
// library or the server; names in it are quoted already (quoteName).
func termSafe(line string) string {
	if printable(line) {
		return line
	}
	var b strings.Builder
	for len(line) > 0 {
		r, n := utf8.DecodeRuneInString(line)
		if r == utf8.RuneError && n == 1 || !strconv.IsPrint(r) {
			q := strconv.Quote(line[:n])
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteString(line[:n])
		}
		line = line[n:]
	}
	return b.String()
}

// printable reports whether s is valid UTF-8 of printable characters.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}
