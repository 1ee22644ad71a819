package main

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
)

// allocated returns the bytes of storage the local file name takes.
func allocated(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// writeSparse creates name, size bytes, holding random data at each of
// the offsets in at, n bytes each, and holes elsewhere; it returns the
// sha256 of its contents.
func writeSparse(t *testing.T, name string, size int64, at []int64, n int64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{7})
	for _, off := range at {
		if _, err := io.Copy(io.NewOffsetWriter(f, off), io.LimitReader(r, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return testutil.FileSHA256(t, name)
}

// statBytes reads a byte count from nfscp's --stats, key as it prints it
// ("bytes sent"), summed over the servers listed.
func statBytes(t *testing.T, stats, key string) int64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + `: +([0-9.]+) (B|KiB|MiB|GiB)$`)
	var total int64
	for _, m := range re.FindAllStringSubmatch(stats, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
		total += int64(v * unit)
	}
	if total == 0 && !re.MatchString(stats) {
		t.Fatalf("no %q in --stats:\n%s", key, stats)
	}
	return total
}

const mib = 1 << 20

// TestSparseFile copies a 1 GiB file holding 10 MiB of data (five 2 MiB
// pieces, the last at the end) up to each server, back, and within the
// server. Each copy has the source's sha256, takes about 10 MiB of
// storage, not 1 GiB, and moved about 10 MiB over the network each way
// that data went (SEEK on the server's file, SEEK_DATA and SEEK_HOLE on
// the local one). Within the server, knfsd copies the data ranges itself
// (COPY: nothing crosses the network); Ganesha, which has no COPY, gets
// them streamed through nfscp, which keeps the holes all the same.
func TestSparseFile(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		const size, piece = 1 << 30, 2 * mib
		local := t.TempDir()
		src := filepath.Join(local, "sparse")
		sum := writeSparse(t, src, size, []int64{0, 100 * mib, 500 * mib, 900 * mib, size - piece}, piece)
		const data, slack = 5 * piece, 2 * mib
		if got := allocated(t, src); got > data+slack {
			t.Fatalf("the local source takes %d bytes; want a sparse file", got)
		}

		up := nfscp(t, "-q", "--stats", src, a.url+"/sparse")
		mustSucceed(t, up)
		if sent := statBytes(t, up.stdout, "bytes sent"); sent > data+slack {
			t.Errorf("upload: %d bytes sent; want about %d, the data alone", sent, data)
		}
		if got := a.side.allocated(t, "sparse"); got > data+slack {
			t.Errorf("upload: the server's copy takes %d bytes; want about %d", got, data)
		}
		if got := a.side.sha256(t, "sparse"); got != sum {
			t.Fatalf("upload: sha256 %s; want %s", got, sum)
		}

		back := filepath.Join(local, "back")
		down := nfscp(t, "-q", "--stats", "--verify", a.url+"/sparse", back)
		mustSucceed(t, down)
		// --verify reads the copy back: locally, not over the network.
		if got := statBytes(t, down.stdout, "bytes received"); got > data+slack {
			t.Errorf("download: %d bytes received; want about %d", got, data)
		}
		if got := allocated(t, back); got > data+slack {
			t.Errorf("download: the local copy takes %d bytes; want about %d", got, data)
		}
		if got := testutil.FileSHA256(t, back); got != sum {
			t.Fatalf("download: sha256 %s; want %s", got, sum)
		}

		within := nfscp(t, "-q", "--stats", a.url+"/sparse", a.url+"/copy")
		mustSucceed(t, within)
		moved := statBytes(t, within.stdout, "bytes sent") + statBytes(t, within.stdout, "bytes received")
		t.Logf("%s: within the server: %d bytes over the network; %s", s.name, moved, firstLine(within.stdout))
		switch s.name {
		case "knfsd":
			if want := "10.0 MiB of it copied by the server, 1014.0 MiB holes"; !strings.Contains(within.stdout, want) {
				t.Errorf("--stats does not say %q:\n%s", want, within.stdout)
			}
			if moved > mib {
				t.Errorf("a server-side copy moved %d bytes over the network", moved)
			}
		case "ganesha":
			if want := "; 1014.0 MiB holes\n"; !strings.Contains(within.stdout, want) || strings.Contains(within.stdout, "by the server") {
				t.Errorf("--stats does not say %q alone:\n%s", want, within.stdout)
			}
			if moved < 2*data || moved > 2*(data+slack) {
				t.Errorf("streaming the data within Ganesha moved %d bytes; want about twice %d", moved, data)
			}
		}
		if got := a.side.allocated(t, "copy"); got > data+slack {
			t.Errorf("within the server: the copy takes %d bytes; want about %d", got, data)
		}
		if got := a.side.sha256(t, "copy"); got != sum {
			t.Fatalf("within the server: sha256 %s; want %s", got, sum)
		}
	})
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestServerSideCopy copies a 48 MiB file without holes within each server:
// knfsd copies it (COPY, twelve of 4 MiB) with next to nothing on the
// network, and --verify still reads the source and the copy to compare
// them; Ganesha refuses COPY and CLONE, and nfscp streams the file.
func TestServerSideCopy(t *testing.T) {
	forEachServer(t, nil, func(t *testing.T, s testServer, a area) {
		const size = 48 * mib
		sum := a.side.writeRandom(t, "big", size, 11)
		r := nfscp(t, "-q", "--stats", a.url+"/big", a.url+"/copy")
		mustSucceed(t, r)
		moved := statBytes(t, r.stdout, "bytes sent") + statBytes(t, r.stdout, "bytes received")
		t.Logf("%s: %d bytes over the network; %s", s.name, moved, firstLine(r.stdout))
		if got := a.side.sha256(t, "copy"); got != sum {
			t.Fatalf("sha256 of the copy %s; want %s", got, sum)
		}
		switch s.name {
		case "knfsd":
			if !strings.Contains(r.stdout, "48.0 MiB of it copied by the server") || moved > mib {
				t.Errorf("knfsd's COPY: %d bytes over the network; --stats:\n%s", moved, r.stdout)
			}
		case "ganesha":
			if moved < 2*size {
				t.Errorf("streaming within Ganesha moved %d bytes; want at least %d", moved, 2*size)
			}
		}
		v := nfscp(t, "-q", "--stats", "--verify", a.url+"/big", a.url+"/verified")
		mustSucceed(t, v)
		if got := statBytes(t, v.stdout, "bytes received"); got < 2*size && s.name == "knfsd" {
			t.Errorf("--verify of a server-side copy received %d bytes; want both files read (%d)", got, 2*size)
		}
	})
}

// TestSparseAcrossServers copies a sparse file from Ganesha to Linux's
// nfsd and back: each side moves only the data (SEEK on the source's
// server), and each copy keeps the holes.
func TestSparseAcrossServers(t *testing.T) {
	needServer(t)
	a, k := newArea(t, srvA), knfsdArea(t, knfsd.Shared(t))
	const size, piece = 256 * mib, 2 * mib
	sum := writeSparse(t, filepath.Join(a.disk, "sparse"), size, []int64{0, 64 * mib, size - piece}, piece)
	const data, slack = 3 * piece, 2 * mib
	for _, hop := range []struct{ from, to string }{
		{a.url + "/sparse", k.url + "/sparse"},
		{k.url + "/sparse", a.url + "/back"},
	} {
		r := nfscp(t, "-q", "--stats", hop.from, hop.to)
		mustSucceed(t, r)
		sent, recv := statBytes(t, r.stdout, "bytes sent"), statBytes(t, r.stdout, "bytes received")
		if sent > data+slack || recv > data+slack {
			t.Errorf("%s to %s: %d bytes sent, %d received; want about %d each way", hop.from, hop.to, sent, recv, data)
		}
	}
	if got := k.side.allocated(t, "sparse"); got > data+slack {
		t.Errorf("on knfsd the copy takes %d bytes; want about %d", got, data)
	}
	if got := k.side.sha256(t, "sparse"); got != sum {
		t.Errorf("on knfsd: sha256 %s; want %s", got, sum)
	}
	if got := a.side.allocated(t, "back"); got > data+slack {
		t.Errorf("back on Ganesha the copy takes %d bytes; want about %d", got, data)
	}
	if got := a.side.sha256(t, "back"); got != sum {
		t.Errorf("back on Ganesha: sha256 %s; want %s", got, sum)
	}
}
