package soak

// The client side of the soak: the test binary re-executed inside the
// client namespace (selected by clientEnv in TestMain), so that its
// connections take the lab's path. It runs the workers on one
// nfs4.Client and talks to the test through lines:
//
//	child → parent  "soak: ready"                      dialed; the workers run
//	child → parent  "soak: progress OPS CID SESS RECONN START END"
//	                   operations finished, client ID resets, session resets and
//	                   reconnects so far; the start and end (UnixNano) of the
//	                   latest-started operation that has finished
//	parent → child  "stop"                             finish the current operations and report
//	child → parent  "soak: result {json}"              the clientResult; the child then exits
//
// Its log (JSON: the library's connection, session and recovery events)
// goes to stderr, which the parent keeps in a file.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
	"github.com/gonfs/nfs/xprt"
)

// clientEnv carries the JSON clientConfig of a child.
const clientEnv = "GONFS_SOAK_CLIENT"

// clientConfig is what the parent tells a child.
type clientConfig struct {
	Addr    string        // server address as the client dials it
	Root    string        // the export's path; worker k works in Root/wK
	Workers int           // goroutines sharing the client
	Seed    uint64        // of the workers' choices and data
	OpBound time.Duration // the context deadline of each call
	Stall   time.Duration // no operation finished for this long: give up
}

// clientResult is what a child reports.
type clientResult struct {
	Err      string               // why the run could not go on, if it could not
	Stalled  bool                 // no operation finished within Stall
	Ops      map[string]*opCounts // by kind (opKinds)
	Written  int64                // bytes written and acknowledged
	Read     int64                // bytes read back and compared
	Allowed  []outcome            // results the protocol allows although the call did not succeed plainly
	Findings []finding            // everything else that went wrong
	// Files is the model at the end: each file's path below Root and
	// the SHA-256 of its content. The final listing and read-back through
	// the client have checked it; the parent checks it on the server's disk.
	Files map[string]string
	// Latency is the longest time one operation took, by kind.
	Latency map[string]time.Duration
	Stats   nfs4.Stats // at the end, before Close
	// Goroutines and heap (HeapAlloc after a GC) before the client was
	// dialed, at the end of the workload (client open, model still
	// held), and after Close (model dropped to hashes).
	GoroutinesBefore, GoroutinesAfter int
	HeapBefore, HeapAtEnd, HeapAfter  uint64
	HeapPeak                          uint64 // largest HeapAlloc sampled during the run
	ClosedIn                          time.Duration
	GoroutineLeak                     string // stacks of goroutines left after Close, if any
}

// opCounts counts one kind of operation.
type opCounts struct {
	OK       int // succeeded and checked
	Allowed  int // a result the protocol allows (see outcome)
	Failures int // findings
}

// Client settings that differ from the library's defaults, so that a
// fault is noticed and recovered from in seconds rather than minutes
// (with the defaults a silent path is declared dead after 15–30 s, a dial
// into one waits 10 s, and the policy's backoff grows to 30 s: a
// half-hour soak would spend most of its time waiting). Everything else —
// hard calls, RPC timeout, sizes, slots, window, the Hedged policy's port
// choice — is the default.
var soakSocket = xprt.SocketOptions{
	KeepAliveIdle:     time.Second,
	KeepAliveInterval: time.Second,
	UserTimeout:       3 * time.Second,
}

const soakDialTimeout = 2 * time.Second

// soakPolicy is the default policy, Hedged, with its backoff capped at
// 2 s (100 ms doubling) instead of 30 s.
func soakPolicy() policy.Policy {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.Multiplier = 2
	b.MaxElapsedTime = 0
	return policy.Hedged(policy.Options{BackOff: b})
}

// child is the state of a running child.
type child struct {
	cfg  clientConfig
	c    *nfs4.Client
	out  *bufio.Writer
	outM sync.Mutex // guards out

	ops     atomic.Int64 // operations finished
	lastOp  atomic.Int64 // UnixNano of the latest finished operation
	stop    chan struct{}
	stopped sync.Once

	mu      sync.Mutex
	res     clientResult // guarded by mu (the workers add to it)
	peakMem uint64       // guarded by mu
	// latest is the latest-started operation that has finished; guarded by mu.
	latest struct{ start, end time.Time }
}

func (ch *child) say(format string, args ...any) {
	ch.outM.Lock()
	defer ch.outM.Unlock()
	fmt.Fprintf(ch.out, "soak: "+format+"\n", args...)
	ch.out.Flush()
}

// runClient is the child's main; it returns the exit status.
func runClient(env string) int {
	var cfg clientConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "soak client:", err)
		return 2
	}
	ch := &child{cfg: cfg, out: bufio.NewWriter(os.Stdout), stop: make(chan struct{})}
	go ch.readControl() // lives as long as the process: stdin stays open
	res := ch.run()
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak client:", err)
		return 2
	}
	ch.say("result %s", b)
	return 0
}

// readControl reads the parent's lines; "stop", or the end of stdin,
// stops the workers.
func (ch *child) readControl() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "stop" {
			break
		}
	}
	ch.stopped.Do(func() { close(ch.stop) })
}

func (ch *child) run() clientResult {
	cfg := ch.cfg
	ch.res = clientResult{Ops: map[string]*opCounts{}, Latency: map[string]time.Duration{}}
	for _, k := range opKinds {
		ch.res.Ops[k] = &opCounts{}
	}
	fail := func(err error) clientResult { ch.res.Err = err.Error(); return ch.res }

	ch.res.GoroutinesBefore = runtime.NumGoroutine()
	ch.res.HeapBefore = heapAfterGC()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dial, cancel := context.WithTimeout(context.Background(), cfg.OpBound)
	defer cancel()
	c, err := nfs4.Dial(dial, cfg.Addr, nfs4.Config{
		Policy: soakPolicy(), Socket: soakSocket, DialTimeout: soakDialTimeout, Logger: logger,
	})
	if err != nil {
		return fail(err)
	}
	ch.c = c
	ch.lastOp.Store(time.Now().UnixNano())
	ch.say("ready")

	var wg sync.WaitGroup
	workers := make([]*worker, cfg.Workers)
	for k := range workers {
		w := newWorker(ch, k)
		workers[k] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Progress lines and heap samples until the workers end, or until
	// none has finished an operation for cfg.Stall.
	tick := time.NewTicker(100 * time.Millisecond)
	var last string
	var sampled time.Time
	stalled := false
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			st := c.Stats()
			ch.mu.Lock()
			latest := ch.latest
			ch.mu.Unlock()
			line := fmt.Sprintf("progress %d %d %d %d %d %d", ch.ops.Load(), st.Recovery.ClientIDResets,
				st.Recovery.SessionResets, st.Transport.Reconnects, latest.start.UnixNano(), latest.end.UnixNano())
			if line != last {
				ch.say("%s", line)
				last = line
			}
			if time.Since(sampled) >= 5*time.Second {
				sampled = time.Now()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				ch.mu.Lock()
				ch.peakMem = max(ch.peakMem, ms.HeapAlloc)
				ch.mu.Unlock()
			}
			if time.Since(time.Unix(0, ch.lastOp.Load())) > cfg.Stall {
				stalled = true
				running = false
			}
		}
	}
	tick.Stop()
	if stalled {
		// The workers are stuck inside the client: report with their
		// stacks and leave the client as it is (Close would wait too).
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "soak client: no operation finished for %v; goroutines:\n%s\n", cfg.Stall, buf[:runtime.Stack(buf, true)])
		ch.mu.Lock()
		defer ch.mu.Unlock()
		ch.res.Stalled = true
		ch.res.Err = fmt.Sprintf("no operation finished for %v (goroutine stacks in the client log)", cfg.Stall)
		return ch.res
	}

	// The final check through the client: every worker's directory
	// lists exactly the model's names, and every file reads back right.
	files := map[string]string{}
	for _, w := range workers {
		w.finalCheck()
		for name, data := range w.files {
			files[w.dir+"/"+name] = sha(data)
		}
		w.files = nil
	}
	ch.res.Stats = c.Stats()
	ch.res.HeapAtEnd = heapAfterGC()

	closeStart := time.Now()
	if err := c.Close(); err != nil {
		ch.finding("close: %v", err)
	}
	ch.res.ClosedIn = time.Since(closeStart)
	ch.res.GoroutinesAfter, ch.res.GoroutineLeak = settleGoroutines(ch.res.GoroutinesBefore)
	ch.res.HeapAfter = heapAfterGC()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.res.HeapPeak = ch.peakMem
	ch.res.Files = files
	return ch.res
}

// heapAfterGC returns HeapAlloc after two collections (the second frees
// what sync.Pools held through the first).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// settleGoroutines waits, at most 10 s, for the goroutine count to fall
// to before; it returns the count and, if it did not fall, the stacks.
func settleGoroutines(before int) (int, string) {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > before; i++ {
		time.Sleep(100 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n <= before {
		return n, ""
	}
	buf := make([]byte, 1<<20)
	return n, string(buf[:runtime.Stack(buf, true)])
}

// finding records something that went wrong, now.
func (ch *child) finding(format string, args ...any) {
	now := time.Now()
	ch.findingDuring(now, now, format, args...)
}

// findingDuring records something that went wrong in a call that ran
// from start to end, so that the report can name the faults it overlapped.
func (ch *child) findingDuring(start, end time.Time, format string, args ...any) {
	f := finding{Msg: fmt.Sprintf(format, args...), Start: start, End: end}
	fmt.Fprintln(os.Stderr, "soak finding:", f.Start.Format(timeOfDay), f.Msg)
	ch.mu.Lock()
	ch.res.Findings = append(ch.res.Findings, f)
	ch.mu.Unlock()
}

// A finding is something that went wrong, and when.
type finding struct {
	Msg        string
	Start, End time.Time
}

// timeOfDay is how the report and the log give the time of an event.
const timeOfDay = "15:04:05.000"

// newRand returns the random source of worker k.
func newRand(seed uint64, k int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(k)+1))
}
