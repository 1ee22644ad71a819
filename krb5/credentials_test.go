package krb5

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/config"
)

// TestCorruptFiles: a truncated credential cache makes gokrb5's parser
// index past its end; the mechanism reports an error instead of panicking.
func TestCorruptFiles(t *testing.T) {
	conf, err := config.NewFromString("[libdefaults]\n default_realm = R\n")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"empty":                  {},
		"bad version":            {5, 4, 0xff, 0xff, 0xff, 0xff},
		"header past the end":    {5, 2, 0, 0, 0, 80, 0, 3}, // gokrb5 v8.4.4 panics on this ccache
		"principal past the end": {5, 4, 0, 12, 0, 1, 0, 8, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range files {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Keytab(p, "a").source(conf); err == nil {
			t.Errorf("%s: accepted as a keytab", name)
		}
		if _, err := CCache(p).source(conf); err == nil {
			t.Errorf("%s: accepted as a credential cache", name)
		}
	}
}

func TestCCachePath(t *testing.T) {
	t.Setenv("KRB5CCNAME", "")
	if p, _ := ccachePath(""); p != "/tmp/krb5cc_"+strconv.Itoa(os.Getuid()) {
		t.Errorf("default: %s", p)
	}
	t.Setenv("KRB5CCNAME", "FILE:/x/cc")
	if p, _ := ccachePath(""); p != "/x/cc" {
		t.Errorf("$KRB5CCNAME FILE: %s", p)
	}
	for _, p := range []string{"KEYRING:persistent:0", "KCM:", "DIR:/run/user/0/krb5cc"} {
		if _, err := ccachePath(p); err == nil || !strings.Contains(err.Error(), "FILE") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if p, _ := ccachePath("/a:b/cc"); p != "/a:b/cc" {
		t.Errorf("a path with a colon: %s", p)
	}
}

func TestNeedsRenewal(t *testing.T) {
	now := time.Now()
	day := &ticket{start: now.Add(-time.Hour), end: now.Add(23 * time.Hour)}
	if day.needsRenewal(now, 5*time.Minute) || !day.needsRenewal(now.Add(23*time.Hour-4*time.Minute), 5*time.Minute) {
		t.Error("a day's ticket: renewed 5 minutes before its end")
	}
	short := &ticket{start: now, end: now.Add(4 * time.Second)}
	if short.needsRenewal(now.Add(time.Second), 5*time.Minute) || !short.needsRenewal(now.Add(2*time.Second), 5*time.Minute) {
		t.Error("a 4 s ticket: renewed at half its life")
	}
	var none *ticket
	if !none.needsRenewal(now, time.Minute) {
		t.Error("no ticket yet")
	}
}
