package nfs4

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/internal/hostile"
	"github.com/gonfs/nfs/internal/testutil"
)

// Sweeps against internal/hostile: a small workload (dial, which creates
// the session; open, which looks the file up; read; list a directory;
// close) runs again and again, each time with one of its replies broken:
// cut short at a byte, or with one 4-byte word replaced by an extreme
// value. Every run must end (no hang: every call returns within its
// context or the soft timeout), nothing may panic, and a run that succeeds
// must have read the right data and names, except where the broken bytes
// were the data or a name itself, which no client can tell. After the
// sweep, goroutines and the heap are back where they were.
//
// `make test` runs a sample of a few thousand cases; GONFS_SWEEP=long (or
// `make sweep`) runs every byte and every word with more values.

// sweepLong reports whether GONFS_SWEEP=long asks for the whole sweep.
var sweepLong = os.Getenv("GONFS_SWEEP") == "long"

// sweepConfig is the client of a sweep run: soft calls that give up after
// a short timeout, so that a reply the client cannot match (its XID
// broken) costs one timeout and not the test's patience; retries of
// NFS4ERR_DELAY and the like are bounded too.
func sweepConfig() Config {
	return Config{
		Soft:        true,
		Timeo:       500 * time.Millisecond,
		Retrans:     1,
		DialTimeout: time.Second,
		BackOff: func() backoff.BackOff {
			return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), 3)
		},
	}
}

// sweepData and sweepNames are what the workload reads from a server
// without faults.
var (
	sweepData = func() []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(i*7 + i>>9)
		}
		return b
	}()
	sweepNames = []string{"a", "b", "c"}
)

// sweepResult is what one run of the workload got.
type sweepResult struct {
	data  []byte
	names []string
	err   error
}

// sweepWorkload dials addr, reads /file and lists /dir, and closes.
func sweepWorkload(ctx context.Context, addr string) (res sweepResult) {
	c, err := Dial(ctx, addr, sweepConfig())
	if err != nil {
		res.err = fmt.Errorf("dial: %w", err)
		return res
	}
	defer c.Close()
	f, err := c.Open(ctx, "/file")
	if err != nil {
		res.err = err
		return res
	}
	res.data, res.err = io.ReadAll(f)
	if err := f.Close(); res.err == nil {
		res.err = err
	}
	if res.err != nil {
		return res
	}
	ents, err := c.ReadDir(ctx, "/dir")
	for _, e := range ents {
		res.names = append(res.names, e.Name())
	}
	res.err = err
	return res
}

// sweepCase is one broken reply: reply number reply (counted from 0 on a
// fresh server) is cut to cut bytes, or, with cut < 0, has its 4-byte word
// at byte word replaced by value.
type sweepCase struct {
	reply, cut, word int
	value            uint32
}

func (sc sweepCase) String() string {
	if sc.cut >= 0 {
		return fmt.Sprintf("reply %d cut to %d bytes", sc.reply, sc.cut)
	}
	return fmt.Sprintf("reply %d word at byte %d set to %#x", sc.reply, sc.word, sc.value)
}

// blind reports whether bytes [from, to) of reply msg are ones a client
// cannot check: the file's data in a READ reply, or an entry's name in a
// READDIR reply (any bytes there are a valid, different file).
func blind(msg []byte, from, to int) bool {
	if i := bytes.LastIndex(msg, sweepData); i >= 0 && from < i+len(sweepData) && to > i {
		return true
	}
	for _, name := range sweepNames {
		enc := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
		enc = append(enc, name...)
		enc = append(enc, make([]byte, (4-len(name)%4)%4)...)
		if i := bytes.Index(msg, enc); i >= 0 && from < i+len(enc) && to > i+4 {
			return true
		}
	}
	return false
}

// runSweepCase runs the workload against a fresh server that breaks one
// reply as sc says, and checks the outcome. It reports whether the run got
// as far as the broken reply (on a loaded machine a soft timeout may end it
// before).
func runSweepCase(t *testing.T, sc sweepCase) (reached bool) {
	var mu sync.Mutex
	seen, broken, unseeable := false, false, false
	tb := &caseTB{TB: t}
	defer tb.cleanup()
	s := hostile.Start(tb, hostile.Faults{Reply: func(n int, msg []byte) hostile.Reply {
		if n != sc.reply {
			return hostile.Reply{Msg: msg}
		}
		mu.Lock()
		defer mu.Unlock()
		seen = true
		if sc.cut >= 0 {
			broken = sc.cut < len(msg)
			return hostile.Reply{Msg: msg[:min(sc.cut, len(msg))]}
		}
		if sc.word+4 > len(msg) {
			return hostile.Reply{Msg: msg}
		}
		m := slices.Clone(msg)
		binary.BigEndian.PutUint32(m[sc.word:], sc.value)
		broken = !bytes.Equal(m, msg)
		unseeable = blind(msg, sc.word, sc.word+4)
		return hostile.Reply{Msg: m}
	}})
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A hang is a failure: the workload must return by itself, through
	// its context or the soft timeouts. The watchdog is a safety net
	// that names the case instead of the test binary's timeout.
	watchdog := time.AfterFunc(2*time.Minute, func() {
		panic(fmt.Sprintf("sweep: %v: the workload did not return", sc))
	})
	res := sweepWorkload(ctx, s.Addr())
	watchdog.Stop()

	mu.Lock()
	defer mu.Unlock()
	if res.err != nil || (broken && unseeable) {
		return seen
	}
	if !bytes.Equal(res.data, sweepData) {
		t.Errorf("%v: the workload succeeded with %d bytes of wrong data", sc, len(res.data))
	}
	if !slices.Equal(res.names, sweepNames) {
		t.Errorf("%v: the workload succeeded with names %q; want %q", sc, res.names, sweepNames)
	}
	return seen
}

// caseTB is the testing.TB of one sweep case: its cleanups run when the
// case ends, not with the test, so that thousands of cases do not keep
// thousands of servers alive until the end.
type caseTB struct {
	testing.TB
	fns []func()
}

func (tb *caseTB) Cleanup(fn func()) { tb.fns = append(tb.fns, fn) }

func (tb *caseTB) cleanup() {
	for _, fn := range slices.Backward(tb.fns) {
		fn()
	}
}

// sweepReplies runs the workload once without faults and returns the
// lengths of its replies, in order.
func sweepReplies(t *testing.T) []int {
	var mu sync.Mutex
	var lens []int
	s := hostile.Start(t, hostile.Faults{Reply: func(_ int, msg []byte) hostile.Reply {
		mu.Lock()
		lens = append(lens, len(msg))
		mu.Unlock()
		return hostile.Reply{Msg: msg}
	}})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := sweepWorkload(ctx, s.Addr())
	if res.err != nil || !bytes.Equal(res.data, sweepData) || !slices.Equal(res.names, sweepNames) {
		t.Fatalf("the workload without faults: %d bytes, names %q, %v", len(res.data), res.names, res.err)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lens)
}

// sweep runs the cases, checking after them that goroutines and the heap
// are back where they were.
func sweep(t *testing.T, cases []sweepCase) {
	testutil.CheckLeaks(t)
	// The broken replies would fail the independent decoder of the wire
	// check, whose point is replies a server meant to send.
	tap := wireTap.Swap(nil)
	defer wireTap.Store(tap)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	missed := 0
	var slowest time.Duration
	var slow sweepCase
	for _, sc := range cases {
		start := time.Now()
		if !runSweepCase(t, sc) {
			missed++
		}
		if d := time.Since(start); d > slowest {
			slowest, slow = d, sc
		}
		if t.Failed() && !sweepLong {
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d cases (%d ended before the broken reply); slowest %v (%v); heap %d KiB before, %d KiB after",
		len(cases), missed, slowest.Round(time.Millisecond), slow, before.HeapAlloc>>10, after.HeapAlloc>>10)
	if grew > 64<<20 {
		t.Errorf("the heap grew by %d MiB over the sweep; want what the runs allocated given back", grew>>20)
	}
}

// sampled returns the positions 0, step, 2*step, ... below n, starting at
// phase mod step, so that a short sweep with different phases per reply
// covers different bytes of each.
func sampled(n, step, phase int) []int {
	var out []int
	for i := phase % step; i < n; i += step {
		out = append(out, i)
	}
	return out
}

// Every reply of the workload cut short: at every byte with GONFS_SWEEP=long,
// else at a sample of them (the first 48 bytes, where the RPC and COMPOUND
// headers are, and every 16th byte after).
func TestSweepTruncate(t *testing.T) {
	lens := sweepReplies(t)
	var cases []sweepCase
	for i, n := range lens {
		for cut := range n {
			if sweepLong || cut < 48 || (cut-48)%16 == i%16 {
				cases = append(cases, sweepCase{reply: i, cut: cut})
			}
		}
	}
	sweep(t, cases)
}

// sweepValues are the values a word is replaced by.
var sweepValues = []uint32{0, 1, 0x7fffffff, 0xffffffff}

// sweepValuesLong are the further values of GONFS_SWEEP=long.
var sweepValuesLong = []uint32{2, 0x80000000, 0xfffffffe, 0x10000, 0x1000000}

// Every 4-byte word of every reply of the workload replaced by extreme
// values: every word with GONFS_SWEEP=long, else every fourth.
func TestSweepMutate(t *testing.T) {
	lens := sweepReplies(t)
	values := sweepValues
	if sweepLong {
		values = append(slices.Clone(values), sweepValuesLong...)
	}
	step := 4
	if sweepLong {
		step = 1
	}
	var cases []sweepCase
	for i, n := range lens {
		for _, w := range sampled(n/4, step, i) {
			for _, v := range values {
				cases = append(cases, sweepCase{reply: i, cut: -1, word: 4 * w, value: v})
			}
		}
	}
	sweep(t, cases)
}
