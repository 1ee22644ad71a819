package nfs4

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// The core tests run once per server implementation, as subtests named
// after it: NFS-Ganesha (a server of the test's own) and the Linux
// kernel's nfsd (one guest shared by the package's tests, each test in a
// directory of its own).

// A testServer is the server a subtest runs against.
type testServer struct {
	name string
	// addr is the server's address.
	addr string
	// dir is the test's directory in the server's NFSv4 namespace.
	dir string
	// side reaches dir from the server's side, not through NFS.
	side serverSide
	// crash ends the server's NFS state as a crash does (client IDs,
	// sessions, opens and the write verifier; not what reached the disk)
	// and serves again at the same address, in its grace period: Ganesha
	// is killed (SIGKILL) and started again after a 2 s outage, knfsd's
	// nfsd threads are stopped and started again. It is stop, then
	// start.
	crash func(t testing.TB)
	// stop is the first half of crash, after which the server refuses
	// connections (knfsd's forwarder accepts them and closes them at
	// once); start is the second.
	stop, start func(t testing.TB)
	// dial dials another Client to addr (the server's, or a forwarder's
	// in front of it) with the port policy the subtest's Client has; the
	// Client is closed at cleanup, its error not checked (a test that
	// cares closes it itself).
	dial func(t testing.TB, addr string, cfg Config) *Client
}

// serverSide reaches a test's directory on the server's own file system;
// names are relative to that directory.
type serverSide interface {
	mkdirAll(t testing.TB, name string)
	writeFile(t testing.TB, name string, data []byte)
	readFile(t testing.TB, name string) []byte
	// tree lists everything under name as localTree does.
	tree(t testing.TB, name string) []string
	// sha256 returns the hex SHA-256 of a file's contents.
	sha256(t testing.TB, name string) string
	// sha256s returns those of several files, in their order (one script
	// in knfsd's guest for all of them).
	sha256s(t testing.TB, names []string) []string
}

// forEachServer runs fn in a subtest per server with a Client dialed
// with cfg and closed at cleanup. Against Ganesha a nil cfg.Policy is
// Ephemeral; against knfsd, whose export accepts only reserved ports, it
// is the default. Each subtest checks for leaked goroutines (those of the
// shared knfsd are not the test's), so fn need not.
func forEachServer(t *testing.T, cfg Config, fn func(t *testing.T, s testServer, c *Client)) {
	forEachServerWith(t, ganesha.Config{}, cfg, fn)
}

// forEachServerWith is forEachServer with Ganesha configured by gcfg.
// knfsd's guest is shared, so its configuration is knfsd's default: a
// lease and grace period of 10 s.
func forEachServerWith(t *testing.T, gcfg ganesha.Config, cfg Config, fn func(t *testing.T, s testServer, c *Client)) {
	t.Run("ganesha", func(t *testing.T) {
		testutil.CheckLeaks(t)
		srv := ganesha.Start(t, gcfg)
		ephemeral := func(cfg Config) Config {
			if cfg.Policy == nil {
				cfg.Policy = policy.Ephemeral(policy.Options{})
			}
			return cfg
		}
		c := dialServer(t, srv.Addr(), ephemeral(cfg))
		stop := func(testing.TB) { srv.Kill() }
		start := func(t testing.TB) {
			time.Sleep(2 * time.Second)
			srv.Restart(t)
		}
		crash := func(t testing.TB) { stop(t); start(t) }
		dial := func(t testing.TB, addr string, cfg Config) *Client { return dialOther(t, addr, ephemeral(cfg)) }
		fn(t, testServer{name: "ganesha", addr: srv.Addr(), dir: srv.Pseudo(), side: localSide(srv.ExportDir()), crash: crash, stop: stop, start: start, dial: dial}, c)
	})
	t.Run("knfsd", func(t *testing.T) {
		srv := knfsd.Shared(t)
		testutil.CheckLeaks(t)
		rel := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		side := &guestSide{srv: srv, dir: rel}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := srv.Exec(ctx, fmt.Sprintf("rm -rf %[1]s && mkdir -m 0777 %[1]s", side.path(t, ""))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := srv.Exec(ctx, "rm -rf "+side.path(t, "")); err != nil {
				t.Error(err)
			}
		})
		c := dialServer(t, srv.Addr(), cfg)
		crash := func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := srv.RestartNFSD(ctx); err != nil {
				t.Fatal(err)
			}
		}
		stop := func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := srv.StopNFSD(ctx); err != nil {
				t.Fatal(err)
			}
		}
		start := func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := srv.StartNFSD(ctx); err != nil {
				t.Fatal(err)
			}
		}
		fn(t, testServer{name: "knfsd", addr: srv.Addr(), dir: "/" + rel, side: side, crash: crash, stop: stop, start: start, dial: dialOther}, c)
	})
}

// dialServer dials addr with cfg; the Client is closed at cleanup.
func dialServer(t testing.TB, addr string, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// dialOther dials addr with cfg; the Client is closed at cleanup, its
// error not checked.
func dialOther(t testing.TB, addr string, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatalf("Dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// localSide is a directory of Ganesha's export on this machine.
type localSide string

func (l localSide) mkdirAll(t testing.TB, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(string(l), name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(string(l), name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (l localSide) readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(l), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l localSide) tree(t testing.TB, name string) []string {
	t.Helper()
	return localTree(t, filepath.Join(string(l), name))
}

func (l localSide) sha256(t testing.TB, name string) string {
	t.Helper()
	return testutil.FileSHA256(t, filepath.Join(string(l), name))
}

func (l localSide) sha256s(t testing.TB, names []string) []string {
	t.Helper()
	var sums []string
	for _, n := range names {
		sums = append(sums, l.sha256(t, n))
	}
	return sums
}

// guestSide is a directory of knfsd's export, reached with scripts run
// in its guest.
type guestSide struct {
	srv *knfsd.Server
	dir string // relative to the export
}

// path returns name's path in the guest, quoted for sh.
func (g *guestSide) path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(knfsd.ExportPath, g.dir, name)
	if strings.ContainsAny(p, "'\n") {
		t.Fatalf("name %q", name)
	}
	return "'" + p + "'"
}

func (g *guestSide) exec(t testing.TB, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := g.srv.Exec(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (g *guestSide) mkdirAll(t testing.TB, name string) {
	t.Helper()
	g.exec(t, "mkdir -p "+g.path(t, name))
}

func (g *guestSide) writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.srv.WriteFile(ctx, filepath.Join(g.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (g *guestSide) readFile(t testing.TB, name string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := g.srv.ReadFile(ctx, filepath.Join(g.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tree lists with find(1) and orders the result as localTree's walk does:
// each directory's entries by name, a directory's contents after it.
func (g *guestSide) tree(t testing.TB, name string) []string {
	t.Helper()
	out := g.exec(t, "cd "+g.path(t, name)+" && find . -mindepth 1 -printf '%y %P\\n'")
	var paths [][]string
	suffix := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		typ, p, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		paths = append(paths, strings.Split(p, "/"))
		switch typ {
		case "d":
			suffix[p] = "/"
		case "l":
			suffix[p] = "@"
		}
	}
	slices.SortFunc(paths, slices.Compare[[]string])
	var tree []string
	for _, p := range paths {
		s := strings.Join(p, "/")
		tree = append(tree, s+suffix[s])
	}
	return tree
}

func (g *guestSide) sha256(t testing.TB, name string) string {
	t.Helper()
	sum, _, _ := strings.Cut(g.exec(t, "sha256sum "+g.path(t, name)), " ")
	return sum
}

func (g *guestSide) sha256s(t testing.TB, names []string) []string {
	t.Helper()
	script := "sha256sum"
	for _, n := range names {
		script += " " + g.path(t, n)
	}
	var sums []string
	for _, line := range strings.Split(strings.TrimSpace(g.exec(t, script)), "\n") {
		sum, _, _ := strings.Cut(line, " ")
		sums = append(sums, sum)
	}
	if len(sums) != len(names) {
		t.Fatalf("sha256sum of %d files printed %d sums", len(names), len(sums))
	}
	return sums
}
