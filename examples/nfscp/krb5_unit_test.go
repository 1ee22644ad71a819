package main

import "testing"

// TestDefaultService: the server's principal a URL's host implies, as
// mount.nfs derives it: no port, no brackets.
func TestDefaultService(t *testing.T) {
	for host, want := range map[string]string{
		"filer.example.com":      "nfs/filer.example.com",
		"filer.example.com:2050": "nfs/filer.example.com",
		"[fd00::5]:2049":         "nfs/fd00::5",
		"[fd00::5]":              "nfs/fd00::5",
		"10.0.0.5":               "nfs/10.0.0.5",
	} {
		if got := defaultService(host); got != want {
			t.Errorf("defaultService(%q) = %q, want %q", host, got, want)
		}
	}
}
