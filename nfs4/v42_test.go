package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/knfsd"
	"github.com/gonfs/nfs/internal/testutil"
	"github.com/gonfs/nfs/policy"
)

// NFSv4.2 against both servers: what each negotiates, and what SEEK,
// ALLOCATE, DEALLOCATE, COPY and CLONE do there. Both run 4.2: the Linux
// server's ext4 export has all four data operations but CLONE (ext4 has no
// reflinks); NFS-Ganesha 4.3's VFS backend has SEEK, ALLOCATE and
// DEALLOCATE, and answers NFS4ERR_NOTSUPP to COPY and CLONE.

// TestV42Negotiated: the default Config speaks NFSv4.2 to both servers;
// pinned to 4.1 the Client sends no 4.2 operation and says so with
// ErrNeedsV42, which matches the server's own NFS4ERR_NOTSUPP.
func TestV42Negotiated(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		if v := c.MinorVersion(); v != 2 {
			t.Fatalf("negotiated minor version %d; want 2", v)
		}
		c41 := s.dial(t, s.addr, Config{Version: Version41})
		if v := c41.MinorVersion(); v != 1 {
			t.Fatalf("pinned to 4.1: minor version %d", v)
		}
		ctx := context.Background()
		name := s.dir + "/v41"
		writeFile(t, c41, name, []byte("four point one"))
		f, err := c41.OpenFile(ctx, name, 2, 0) // O_RDWR
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, f)
		sent := c41.Stats().RPC.Calls
		_, serr := f.Seek(0, SeekData)
		aerr := f.Allocate(0, 1)
		perr := f.PunchHole(0, 1)
		_, cerr := f.CopyRange(f, 0, 8, 4)
		lerr := f.CloneRange(f, 0, 8, 4)
		for _, err := range []error{serr, aerr, perr, cerr, lerr} {
			if !errors.Is(err, ErrNeedsV42) || !errors.Is(err, ErrNotSupp) || !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("a 4.2 operation over 4.1: %v; want ErrNeedsV42, matching ErrNotSupp and errors.ErrUnsupported", err)
			}
		}
		for _, err := range []error{cerr, lerr} {
			if !errors.Is(err, ErrCopyRefused) {
				t.Errorf("a copy over 4.1: %v; want ErrCopyRefused", err)
			}
		}
		if n := c41.Stats().RPC.Calls - sent; n != 0 {
			t.Errorf("the refused 4.2 operations sent %d calls; want none", n)
		}
	})
}

// TestGaneshaWithoutMinorVersion2: a server that serves 4.0 and 4.1 gets
// 4.1 by default, and a Client pinned to 4.2 gets a VersionError naming
// 4.2.
func TestGaneshaWithoutMinorVersion2(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := ganesha.Start(t, ganesha.Config{MinorVersions: []int{0, 1}})
	c := dialServer(t, srv.Addr(), Config{Policy: policy.Ephemeral(policy.Options{})})
	if v := c.MinorVersion(); v != 1 {
		t.Fatalf("negotiated minor version %d; want 1", v)
	}
	writeFile(t, c, srv.Pseudo()+"/negotiated", []byte("four point one"))
	checkFile(t, c, srv.Pseudo()+"/negotiated", []byte("four point one"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Dial(ctx, srv.Addr(), Config{Version: Version42, Policy: policy.Ephemeral(policy.Options{})})
	var ve *VersionError
	if !errors.As(err, &ve) || !slices.Equal(ve.Tried, []uint32{2}) {
		t.Fatalf("Dial pinned to 4.2: %v; want a VersionError having tried 4.2", err)
	}
}

const mib = 1 << 20

// createSparse creates name with data at [0, 1 MiB) and [16 MiB, 17 MiB)
// and size 32 MiB, committed, and returns it open for reading and writing.
func createSparse(t *testing.T, c *Client, name string) *File {
	t.Helper()
	f, err := c.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	data := bytes.Repeat([]byte("data"), mib/4)
	for _, off := range []int64{0, 16 * mib} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(32 * mib); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSeekDataHole: SeekData and SeekHole find the data and holes of a
// sparse file the server holds as sparse, as lseek(2) would on the
// server's own disk, and move the offset there for Read.
func TestSeekDataHole(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		f := createSparse(t, c, s.dir+"/sparse")
		for _, tc := range []struct {
			off    int64
			whence int
			want   int64 // -1: ENXIO
		}{
			{0, SeekData, 0},
			{0, SeekHole, 1 * mib},
			{100, SeekHole, 1 * mib},
			{1 * mib, SeekData, 16 * mib},
			{5 * mib, SeekData, 16 * mib},
			{5 * mib, SeekHole, 5 * mib},
			{16 * mib, SeekHole, 17 * mib},
			{17 * mib, SeekData, -1},
			{17 * mib, SeekHole, 17 * mib},
			{32 * mib, SeekData, -1},
		} {
			got, err := f.Seek(tc.off, tc.whence)
			what := map[int]string{SeekData: "SeekData", SeekHole: "SeekHole"}[tc.whence]
			switch {
			case tc.want < 0 && !errors.Is(err, syscall.ENXIO):
				t.Errorf("Seek(%d, %s) = %d, %v; want ENXIO", tc.off, what, got, err)
			case tc.want >= 0 && (err != nil || got != tc.want):
				t.Errorf("Seek(%d, %s) = %d, %v; want %d", tc.off, what, got, err, tc.want)
			}
		}
		// The offset moved: Read goes on from the data found.
		if _, err := f.Seek(2*mib, SeekData); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "data" {
			t.Fatalf("Read after SeekData: %q, %v", buf, err)
		}
		// A file without holes has its end as the only hole.
		g := createFile(t, c, s.dir+"/dense", randomBytes(3*mib+17))
		if got, err := g.Seek(0, SeekHole); err != nil || got != 3*mib+17 {
			t.Errorf("SeekHole in a file without holes: %d, %v; want its size %d", got, err, 3*mib+17)
		}
	})
}

// createFile creates name holding data, committed, and returns it open
// for reading and writing; it is closed at cleanup.
func createFile(t *testing.T, c *Client, name string, data []byte) *File {
	t.Helper()
	f, err := c.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// spaceUsed returns the space the server says name takes (space_used).
func spaceUsed(t *testing.T, c *Client, name string) int64 {
	t.Helper()
	fi, err := c.Stat(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	a := fi.Sys().(*Attr)
	if !a.Mask.Has(AttrSpaceUsed) {
		t.Fatalf("%s: the server did not report space_used", name)
	}
	return int64(a.SpaceUsed)
}

// readAll reads f from 0 to its end.
func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fi.Size())
	if n, err := f.ReadAt(b, 0); n != len(b) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt: %d of %d bytes, %v", n, len(b), err)
	}
	return b
}

// TestPunchHoleAndAllocate: a punched hole reads as zeros, keeps the size,
// frees the space on the server and shows as a hole to SeekHole; an
// allocated range grows the file, reads as zeros and takes space.
func TestPunchHoleAndAllocate(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		name := s.dir + "/punched"
		data := randomBytes(8 * mib)
		f := createFile(t, c, name, data)
		before := spaceUsed(t, c, name)
		if before < 8*mib {
			t.Fatalf("space used by 8 MiB of data: %d bytes", before)
		}
		if err := f.PunchHole(2*mib, 4*mib); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(data)
		clear(want[2*mib : 6*mib])
		if got := readAll(t, f); !bytes.Equal(got, want) {
			t.Fatalf("after PunchHole(2 MiB, 4 MiB) the file reads differently (%d bytes)", len(got))
		}
		after := spaceUsed(t, c, name)
		t.Logf("space used: %d bytes before the hole, %d after", before, after)
		if freed := before - after; freed < 4*mib-64<<10 {
			t.Errorf("the hole freed %d bytes; want about 4 MiB", freed)
		}
		if got, err := f.Seek(0, SeekHole); err != nil || got != 2*mib {
			t.Errorf("SeekHole(0) after the punch: %d, %v; want 2 MiB", got, err)
		}
		// A punch that reaches past the end does not grow the file.
		if err := f.PunchHole(7*mib, 4*mib); err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 8*mib {
			t.Errorf("size after punching past the end: %v, %v; want 8 MiB", fi, err)
		}

		g, err := c.Create(context.Background(), s.dir+"/allocated")
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, g)
		if err := g.Allocate(0, 4*mib); err != nil {
			t.Fatal(err)
		}
		fi, err := g.Stat()
		if err != nil || fi.Size() != 4*mib {
			t.Fatalf("size after Allocate(0, 4 MiB): %v, %v", fi, err)
		}
		if used := spaceUsed(t, c, s.dir+"/allocated"); used < 4*mib {
			t.Errorf("Allocate(0, 4 MiB) took %d bytes of space; want at least 4 MiB", used)
		}
		if got := readAll(t, g); !bytes.Equal(got, make([]byte, 4*mib)) {
			t.Error("an allocated range does not read as zeros")
		}

		// Bad arguments and a read-only file fail as fallocate does.
		if err := g.PunchHole(-1, 1); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("PunchHole(-1, 1): %v; want EINVAL", err)
		}
		if err := g.Allocate(0, 0); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Allocate(0, 0): %v; want EINVAL", err)
		}
		r, err := c.Open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, r)
		if err := r.PunchHole(0, 1); !isPathError(err, "punchhole", name, syscall.EBADF) {
			t.Errorf("PunchHole of a file open read-only: %v; want EBADF", err)
		}
	})
}

// transferred is the bytes c's connections carried both ways so far.
func transferred(c *Client) uint64 {
	var n uint64
	for _, s := range c.Stats().Connections {
		n += s.BytesSent + s.BytesReceived
	}
	return n
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// copyOrStream is what a caller of CopyRange does: the server copies if
// it will, and the caller streams what it would not copy.
func copyOrStream(dst, src *File, n int64) (copied int64, refused error, err error) {
	copied, err = dst.CopyRange(src, 0, 0, n)
	if !errors.Is(err, ErrCopyRefused) {
		return copied, nil, err
	}
	refused = err
	_, err = io.Copy(io.NewOffsetWriter(dst, copied), io.NewSectionReader(src, copied, n-copied))
	return copied, refused, err
}

// TestCopyRange: on the Linux server, CopyRange copies 40 MiB (ten COPYs
// of 4 MiB) with less than 64 KiB crossing the network, and the copy's
// sha256 on the server's disk is the source's; ranges at odd offsets and
// past the source's end copy what copy_file_range would. Ganesha refuses
// with NFS4ERR_NOTSUPP, and the caller's fallback streams the file.
func TestCopyRange(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		const size = 40 * mib
		data := randomBytes(size)
		src := createFile(t, c, s.dir+"/src", data)
		dst, err := c.Create(context.Background(), s.dir+"/dst")
		if err != nil {
			t.Fatal(err)
		}
		start, calls, t0 := transferred(c), c.Stats().RPC.Calls, time.Now()
		n, refused, err := copyOrStream(dst, src, size+1000)
		moved, took, calls := transferred(c)-start, time.Since(t0), c.Stats().RPC.Calls-calls
		if err != nil {
			t.Fatal(err)
		}
		if cerr := dst.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		t.Logf("%s: %d bytes copied by the server in %v, %d calls, %d bytes over the network (refused: %v)", s.name, n, took, calls, moved, refused)
		if got := s.side.sha256(t, "dst"); got != sha256Hex(data) {
			t.Fatalf("sha256 of the copy on the server: %s; want the source's %s", got, sha256Hex(data))
		}
		switch s.name {
		case "knfsd":
			if n != size || refused != nil {
				t.Fatalf("CopyRange copied %d of %d bytes (refused: %v)", n, size, refused)
			}
			if moved > 64<<10 {
				t.Errorf("a server-side copy of %d bytes moved %d bytes over the network; want under 64 KiB", size, moved)
			}
		case "ganesha":
			if n != 0 || !errors.Is(refused, ErrNotSupp) {
				t.Fatalf("CopyRange on Ganesha: %d bytes, refused with %v; want NFS4ERR_NOTSUPP (Ganesha 4.3's VFS has no COPY)", n, refused)
			}
			if moved < 2*size {
				t.Errorf("the fallback moved %d bytes; want at least twice the file", moved)
			}
			return
		}
		// Odd offsets, into an existing file.
		part, err := c.Create(context.Background(), s.dir+"/part")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.WriteAt([]byte("0123456789"), 0); err != nil {
			t.Fatal(err)
		}
		if n, err := part.CopyRange(src, 3*mib+5, 7, mib+3); n != mib+3 || err != nil {
			t.Fatalf("CopyRange of 1 MiB + 3 at odd offsets: %d, %v", n, err)
		}
		// Past the source's end: the bytes up to it.
		if n, err := part.CopyRange(src, size-10, 2*mib, mib); n != 10 || err != nil {
			t.Fatalf("CopyRange of 1 MiB from 10 bytes before the end: %d, %v; want 10", n, err)
		}
		want := append([]byte("0123456"), data[3*mib+5:4*mib+8]...)
		want = append(want, make([]byte, 2*mib-len(want))...)
		want = append(want, data[size-10:]...)
		if got := readAll(t, part); !bytes.Equal(got, want) {
			t.Errorf("the partial copies read back differently (%d bytes, want %d)", len(got), len(want))
		}
		mustClose(t, part)
	})
}

// TestCopyRangeRefused: a copy the server cannot do is ErrCopyRefused, with
// nothing sent when the client already knows (files of two Clients).
func TestCopyRangeRefused(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		src := createFile(t, c, s.dir+"/src", []byte("source"))
		other := s.dial(t, s.addr, Config{})
		dst, err := other.Create(context.Background(), s.dir+"/dst")
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, dst)
		sent := other.Stats().RPC.Calls
		if n, err := dst.CopyRange(src, 0, 0, 6); n != 0 || !errors.Is(err, ErrCopyRefused) {
			t.Errorf("CopyRange between two Clients: %d, %v; want ErrCopyRefused", n, err)
		}
		if n := other.Stats().RPC.Calls - sent; n != 0 {
			t.Errorf("CopyRange between two Clients sent %d calls", n)
		}
		ro, err := c.Open(context.Background(), s.dir+"/src")
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, ro)
		if _, err := ro.CopyRange(src, 0, 0, 6); !errors.Is(err, syscall.EBADF) {
			t.Errorf("CopyRange into a file open read-only: %v; want EBADF", err)
		}
	})
}

// TestCloneRange: neither server's ext4 export can clone (no reflinks);
// CloneRange says so with ErrCopyRefused and NFS4ERR_NOTSUPP, leaving the
// destination as it was.
func TestCloneRange(t *testing.T) {
	forEachServer(t, Config{}, func(t *testing.T, s testServer, c *Client) {
		src := createFile(t, c, s.dir+"/src", randomBytes(mib))
		dst := createFile(t, c, s.dir+"/dst", []byte("unchanged"))
		err := dst.CloneRange(src, 0, 0, 0)
		if !errors.Is(err, ErrCopyRefused) || !errors.Is(err, ErrNotSupp) {
			t.Fatalf("CloneRange on an ext4 export: %v; want ErrCopyRefused and NFS4ERR_NOTSUPP", err)
		}
		if !isPathError(err, "clone", s.dir+"/dst", fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("CloneRange's error %v is not an *fs.PathError matching errors.ErrUnsupported", err)
		}
		if got := readAll(t, dst); string(got) != "unchanged" {
			t.Errorf("the destination of a refused clone reads %q", got)
		}
	})
}

// TestReplyCopy decodes COPY's results: synchronous, asynchronous (a
// callback stateid), NFS4ERR_OFFLOAD_NO_REQS with the requirements the
// server could meet, and malformed ones.
func TestReplyCopy(t *testing.T) {
	testutil.CheckLeaks(t)
	list := listOf(opCopy)
	decode := func(asked uint64, enc func(r *replyEnc)) (copyRes, error) {
		r := newReplyEnc(OK, 1)
		enc(r)
		var res copyRes
		var rr reply
		if err := rr.init(r.Bytes(), list); err != nil {
			return res, err
		}
		if err := rr.copyRange(asked, &res); err != nil {
			return res, err
		}
		return res, rr.end()
	}
	res, err := decode(8<<20, okResults[opCopy])
	want := copyRes{count: 4 << 20, committed: unstable4, verf: verifier([]byte("verifier")), consecutive: true, synchronous: true}
	if err != nil || res != want {
		t.Errorf("synchronous COPY: %+v, %v; want %+v", res, err, want)
	}
	res, err = decode(0, func(r *replyEnc) {
		r.res(opCopy, OK)
		r.Uint32(1)
		r.stateid(sampleStateID)
		r.Uint64(0)
		r.Uint32(unstable4)
		r.FixedOpaque([]byte("verifier"))
		r.Bool(true)
		r.Bool(false)
	})
	if err != nil || !res.async || res.callbackID != sampleStateID {
		t.Errorf("asynchronous COPY: %+v, %v; want the callback stateid", res, err)
	}
	res, err = decode(1, func(r *replyEnc) {
		r.res(opCopy, ErrOffloadNoReqs)
		r.Bool(true)
		r.Bool(false)
	})
	if !errors.Is(err, ErrOffloadNoReqs) || !res.consecutive || res.synchronous {
		t.Errorf("NFS4ERR_OFFLOAD_NO_REQS: %+v, %v; want the status and what the server could meet", res, err)
	}
	if _, err := decode(1, func(r *replyEnc) { r.res(opCopy, ErrNotSupp) }); err != ErrNotSupp {
		t.Errorf("NFS4ERR_NOTSUPP: %v", err)
	}
	for name, enc := range map[string]func(r *replyEnc){
		"more than asked": func(r *replyEnc) {
			r.res(opCopy, OK)
			r.Uint32(0)
			r.Uint64(2 << 20)
			r.Uint32(fileSync4)
			r.FixedOpaque([]byte("verifier"))
			r.Bool(true)
			r.Bool(true)
		},
		"two callback ids": func(r *replyEnc) {
			r.res(opCopy, OK)
			r.Uint32(2)
			r.stateid(sampleStateID)
			r.stateid(sampleStateID)
		},
		"unknown stable_how4": func(r *replyEnc) {
			r.res(opCopy, OK)
			r.Uint32(0)
			r.Uint64(1)
			r.Uint32(3)
			r.FixedOpaque([]byte("verifier"))
			r.Bool(true)
			r.Bool(true)
		},
	} {
		if _, err := decode(1<<20, enc); !errors.Is(err, errBadReply) {
			t.Errorf("%s: %v; want a malformed reply", name, err)
		}
	}
}

// TestVersionErrorNamesEveryVersion: a server that refuses all three minor
// versions gets one error naming them in the order tried.
func TestVersionErrorNamesEveryVersion(t *testing.T) {
	testutil.CheckLeaks(t)
	err := error(&VersionError{Tried: []uint32{2, 1, 0}})
	want := "nfs4: the server refused NFSv4.2, NFSv4.1, NFSv4.0 (NFS4ERR_MINOR_VERS_MISMATCH), every version this client speaks"
	if err.Error() != want || !errors.Is(err, ErrMinorVersMismatch) {
		t.Errorf("VersionError: %q; want %q", err, want)
	}
	if got := Version42.sessionMinors(); !slices.Equal(got, []uint32{2}) {
		t.Errorf("Version42 offers %v", got)
	}
	if got := VersionAny.sessionMinors(); !slices.Equal(got, []uint32{2, 1}) {
		t.Errorf("VersionAny offers %v before 4.0", got)
	}
}

// TestKnfsdCopyRangeVerifierChanged: the Linux server copies UNSTABLE, so
// CopyRange commits; when the server restarts between the COPYs and the
// COMMIT (a new write verifier), the range is copied again, as
// uncommitted WRITEs are written again, and the copy is right. (Ganesha
// has no COPY.)
func TestKnfsdCopyRangeVerifierChanged(t *testing.T) {
	srv := knfsd.Shared(t)
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	side := &guestSide{srv: srv, dir: t.Name()}
	side.exec(t, fmt.Sprintf("rm -rf %[1]s && mkdir -m 0777 %[1]s", side.path(t, "")))
	t.Cleanup(func() { side.exec(t, "rm -rf "+side.path(t, "")) })
	c := dialServer(t, srv.Addr(), Config{})
	const size = 12 * mib
	data := randomBytes(size)
	src := createFile(t, c, "/"+t.Name()+"/src", data)
	dst, err := c.Create(ctx, "/"+t.Name()+"/dst")
	if err != nil {
		t.Fatal(err)
	}
	commits := 0
	beforeCopyCommit = func() {
		if commits == 0 {
			if err := srv.RestartNFSD(ctx); err != nil {
				t.Error(err)
			}
		}
		commits++
	}
	defer func() { beforeCopyCommit = nil }()
	resent := c.Stats().Recovery.ResentBytes
	if n, err := dst.WithContext(ctx).CopyRange(src, 0, 0, size); n != size || err != nil {
		t.Fatalf("CopyRange across a server restart: %d, %v", n, err)
	}
	if commits != 2 {
		t.Errorf("CopyRange committed %d times; want 2 (the first commit saw a new verifier)", commits)
	}
	if got := c.Stats().Recovery.ResentBytes - resent; got != size {
		t.Errorf("ResentBytes grew by %d; want the %d bytes copied again", got, size)
	}
	mustClose(t, dst)
	if got := side.sha256(t, "dst"); got != sha256Hex(data) {
		t.Errorf("sha256 of the copy: %s; want %s", got, sha256Hex(data))
	}
}
