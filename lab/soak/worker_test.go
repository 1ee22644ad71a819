package soak

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
	"os"
	"path"
	"slices"
	"sort"
	"time"
)

// The operations a worker chooses from, in report order.
var opKinds = []string{"create", "create-excl", "overwrite", "read", "rename", "rename-replace", "remove", "readdir"}

// Sizes of the workload.
const (
	maxFiles     = 32       // per worker; beyond it the worker removes
	maxOverwrite = 64 << 10 // bytes written by one overwrite, at most
)

// An outcome is a call that did not plainly succeed, but whose result the
// protocol allows: a non-idempotent request (REMOVE, RENAME) that ran,
// lost its reply, and was sent again after the session that would have
// answered it from its reply cache was gone.
type outcome struct {
	Op, Name string
	Err      string
	Reason   string
	Start    time.Time
	Took     time.Duration
}

// Why a request that ran twice is allowed: reasonSessionLost for RENAME
// and REMOVE, reasonVerifierLost for an exclusive create.
const (
	reasonSessionLost = "re-executed after the session, and with it the reply cache, was lost while the call was outstanding " +
		"(server restart, failover or lease expiry): RFC 8881 §2.10.6 promises exactly-once execution only within a session"
	reasonVerifierLost = "an exclusive create sent again after the session was lost found the empty file its first execution " +
		"had created: a re-sent EXCLUSIVE4_1 create succeeds only if the server stored the verifier with the file " +
		"(RFC 8881 §18.16.3), and NFS-Ganesha's VFS back end creates the file first and stores the verifier (in its " +
		"times) in a second step, which a server killed in between never takes"
)

// A worker runs operations in one directory of its own, so that its model
// is exact: nothing else changes the directory.
type worker struct {
	ch    *child
	k     int
	dir   string // relative to Root: "wK"
	rnd   *rand.Rand
	files map[string][]byte // the model: name → content
	next  int               // the next fresh name's number
}

func newWorker(ch *child, k int) *worker {
	return &worker{ch: ch, k: k, dir: fmt.Sprintf("w%d", k), rnd: newRand(ch.cfg.Seed, k), files: map[string][]byte{}}
}

// path returns the path of a name of the worker's directory.
func (w *worker) path(name string) string { return path.Join(w.ch.cfg.Root, w.dir, name) }

func (w *worker) loop() {
	for {
		select {
		case <-w.ch.stop:
			return
		default:
		}
		if !w.do(w.pick()) {
			return
		}
	}
}

// pick chooses the next operation.
func (w *worker) pick() string {
	n := len(w.files)
	switch {
	case n == 0:
		return []string{"create", "create-excl"}[w.rnd.IntN(2)]
	case n >= maxFiles && w.rnd.IntN(2) == 0:
		return "remove"
	}
	weights := []struct {
		kind string
		w    int
	}{{"create", 12}, {"create-excl", 8}, {"overwrite", 15}, {"read", 20}, {"rename", 12}, {"rename-replace", 5}, {"remove", 14}, {"readdir", 10}}
	if n < 2 {
		weights[5].w = 0
	}
	total := 0
	for _, x := range weights {
		total += x.w
	}
	r := w.rnd.IntN(total)
	for _, x := range weights {
		if r < x.w {
			return x.kind
		}
		r -= x.w
	}
	return "read"
}

// lost counts the sessions the client has lost so far (new sessions on
// the same client ID, and new client IDs).
func (w *worker) lost() uint64 {
	r := w.ch.c.Stats().Recovery
	return r.SessionResets + r.ClientIDResets
}

// do runs one operation and judges its result; it returns false if the
// worker cannot go on.
func (w *worker) do(kind string) bool {
	before := w.lost()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), w.ch.cfg.OpBound)
	name, err, reexec := w.run(ctx, kind)
	cancel()
	took := time.Since(start)
	sessionLost := w.lost() > before
	w.ch.ops.Add(1)
	w.ch.lastOp.Store(time.Now().UnixNano())

	w.ch.mu.Lock()
	if start.After(w.ch.latest.start) {
		w.ch.latest.start, w.ch.latest.end = start, start.Add(took)
	}
	w.ch.res.Latency[kind] = max(w.ch.res.Latency[kind], took)
	cnt := w.ch.res.Ops[kind]
	switch {
	case err == nil:
		cnt.OK++
	case reexec && sessionLost:
		cnt.Allowed++
		w.ch.res.Allowed = append(w.ch.res.Allowed, outcome{Op: kind, Name: w.dir + "/" + name, Err: err.Error(),
			Reason: reexecReason(kind), Start: start, Took: took})
	default:
		cnt.Failures++
	}
	w.ch.mu.Unlock()

	switch {
	case err == nil || (reexec && sessionLost):
		return true
	case reexec:
		w.ch.findingDuring(start, start.Add(took), "%s %s/%s ran twice on a session that survived (its reply cache should have answered the retry): %v (took %v)",
			kind, w.dir, name, err, took.Round(time.Millisecond))
		return true // the model already assumes it ran; the checks verified that
	}
	w.ch.findingDuring(start, start.Add(took), "%s %s/%s: error returned by a hard client: %v (took %v, session lost meanwhile: %v)",
		kind, w.dir, name, err, took.Round(time.Millisecond), sessionLost)
	return w.resync()
}

// reexecReason is why kind may have run twice.
func reexecReason(kind string) string {
	if kind == "create-excl" {
		return reasonVerifierLost
	}
	return reasonSessionLost
}

// run performs one operation and updates the model. reexec says that err
// is what a non-idempotent request that ran twice returns (the model then
// assumes it ran, and run has checked that it did).
func (w *worker) run(ctx context.Context, kind string) (name string, err error, reexec bool) {
	c := w.ch.c
	switch kind {
	case "create", "create-excl":
		name = w.fresh()
		flag := os.O_RDWR | os.O_CREATE | os.O_TRUNC
		if kind == "create-excl" {
			flag = os.O_RDWR | os.O_CREATE | os.O_EXCL
		}
		data := w.data()
		err = w.write(ctx, name, flag, data, 0)
		if kind == "create-excl" && errors.Is(err, fs.ErrExist) {
			// The name is fresh: only this create's first execution can
			// have made the file, and nothing was written to it.
			w.files[name] = []byte{}
			if cerr := w.checkContent(ctx, name, nil); cerr != nil {
				w.ch.finding("create-excl %s/%s: after NFS4ERR_EXIST: %v", w.dir, name, cerr)
			}
			return name, err, true
		}
		return name, err, false

	case "overwrite":
		name = w.any()
		old := w.files[name]
		data := make([]byte, 1+w.rnd.IntN(maxOverwrite))
		w.fill(data)
		off := w.rnd.IntN(len(old) + 1)
		return name, w.write(ctx, name, os.O_RDWR, data, int64(off)), false

	case "read":
		name = w.any()
		return name, w.checkContent(ctx, name, w.files[name]), false

	case "rename", "rename-replace":
		src := w.any()
		dst := w.fresh()
		if kind == "rename-replace" {
			// Another name of the model (there are at least two).
			others := slices.DeleteFunc(w.names(), func(n string) bool { return n == src })
			dst = others[w.rnd.IntN(len(others))]
		}
		name = src + "→" + dst
		err = c.Rename(ctx, w.path(src), w.path(dst))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return name, err, false
		}
		// Done, or (ENOENT) done before: the source is gone, so the
		// first execution moved it. Either way the checks below must hold.
		data := w.files[src]
		delete(w.files, src)
		w.files[dst] = data
		w.checkGone(ctx, "rename", src)
		if cerr := w.checkContent(ctx, dst, data); cerr != nil {
			w.ch.finding("rename %s/%s: after the rename: %v", w.dir, name, cerr)
		}
		return name, err, err != nil

	case "remove":
		name = w.any()
		err = c.Remove(ctx, w.path(name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return name, err, false
		}
		delete(w.files, name)
		w.checkGone(ctx, "remove", name)
		return name, err, err != nil

	case "readdir":
		return "", w.checkListing(ctx), false
	}
	panic("soak: unknown operation " + kind)
}

// write opens name with flag, writes data at off, closes it, and on
// success applies the write to the model.
func (w *worker) write(ctx context.Context, name string, flag int, data []byte, off int64) error {
	f, err := w.ch.c.OpenFile(ctx, w.path(name), flag, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	content := w.files[name]
	if flag&os.O_TRUNC != 0 || flag&os.O_EXCL != 0 {
		content = nil
	}
	if end := int(off) + len(data); end > len(content) {
		content = append(content, make([]byte, end-len(content))...)
	}
	copy(content[off:], data)
	w.files[name] = content
	w.ch.mu.Lock()
	w.ch.res.Written += int64(len(data))
	w.ch.mu.Unlock()
	return nil
}

// checkContent reads name back and compares it with want. A read that
// fails is returned; wrong content is a finding.
func (w *worker) checkContent(ctx context.Context, name string, want []byte) error {
	got, err := w.readFile(ctx, name)
	if err != nil {
		return err
	}
	w.ch.mu.Lock()
	w.ch.res.Read += int64(len(got))
	w.ch.mu.Unlock()
	if !bytes.Equal(got, want) {
		w.ch.finding("read %s/%s: %d bytes with sha256 %s, want %d bytes with sha256 %s%s",
			w.dir, name, len(got), sha(got), len(want), sha(want), firstDiff(got, want))
	}
	return nil
}

func (w *worker) readFile(ctx context.Context, name string) ([]byte, error) {
	f, err := w.ch.c.Open(ctx, w.path(name))
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return got, err
}

// checkGone checks that name no longer exists, after op removed or
// renamed it.
func (w *worker) checkGone(ctx context.Context, op, name string) {
	_, err := w.ch.c.Stat(ctx, w.path(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err == nil:
		w.ch.finding("%s %s/%s: still there afterwards", op, w.dir, name)
	default:
		w.ch.finding("%s %s/%s: stat afterwards: %v", op, w.dir, name, err)
	}
}

// checkListing compares the directory's listing with the model's names.
func (w *worker) checkListing(ctx context.Context) error {
	entries, err := w.ch.c.ReadDir(ctx, path.Join(w.ch.cfg.Root, w.dir))
	if err != nil {
		return err
	}
	got := make([]string, len(entries))
	for i, e := range entries {
		got[i] = e.Name()
	}
	if missing, extra := diffNames(w.names(), got); len(missing)+len(extra) > 0 {
		w.ch.finding("readdir %s: missing %v, unexpected %v", w.dir, missing, extra)
	}
	return nil
}

// finalCheck lists the directory and reads every file back, once the
// workload has stopped.
func (w *worker) finalCheck() {
	ctx, cancel := context.WithTimeout(context.Background(), w.ch.cfg.OpBound)
	defer cancel()
	if err := w.checkListing(ctx); err != nil {
		w.ch.finding("final readdir %s: %v", w.dir, err)
	}
	for _, name := range w.names() {
		if err := w.checkContent(ctx, name, w.files[name]); err != nil {
			w.ch.finding("final read %s/%s: %v", w.dir, name, err)
		}
	}
}

// resync replaces the model by what the server holds, after an error left
// it uncertain (the error is already a finding). It returns false if the
// directory cannot be read within a few tries.
func (w *worker) resync() bool {
	var err error
	for try := 0; try < 5; try++ {
		if try > 0 {
			time.Sleep(time.Second)
		}
		if err = w.load(); err == nil {
			return true
		}
	}
	w.ch.finding("worker %d gives up: cannot re-read %s after an error: %v", w.k, w.dir, err)
	return false
}

func (w *worker) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.ch.cfg.OpBound)
	defer cancel()
	entries, err := w.ch.c.ReadDir(ctx, path.Join(w.ch.cfg.Root, w.dir))
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := w.readFile(ctx, e.Name())
		if err != nil {
			return err
		}
		files[e.Name()] = data
	}
	w.files = files
	return nil
}

// fresh returns a name never used before in the directory.
func (w *worker) fresh() string {
	w.next++
	return fmt.Sprintf("f%06d", w.next)
}

// any returns a random name of the model; the model is not empty.
func (w *worker) any() string {
	names := w.names()
	return names[w.rnd.IntN(len(names))]
}

func (w *worker) names() []string {
	names := make([]string, 0, len(w.files))
	for n := range w.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// data returns the content of a new file: mostly small, now and then
// several MiB (several WRITEs in flight).
func (w *worker) data() []byte {
	var n int
	switch r := w.rnd.IntN(100); {
	case r < 10:
		n = w.rnd.IntN(512)
	case r < 70:
		n = w.rnd.IntN(64 << 10)
	case r < 95:
		n = w.rnd.IntN(512 << 10)
	default:
		n = 1<<20 + w.rnd.IntN(2<<20)
	}
	b := make([]byte, n)
	w.fill(b)
	return b
}

func (w *worker) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := w.rnd.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at byte %d)", i)
		}
	}
	return ""
}

// diffNames returns the names of want missing from got and those of got
// not in want.
func diffNames(want, got []string) (missing, extra []string) {
	for _, n := range want {
		if !slices.Contains(got, n) {
			missing = append(missing, n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) {
			extra = append(extra, n)
		}
	}
	return missing, extra
}
