package lab

// The client side of a cell: the test binary re-executed inside the
// client namespace, selected by clientEnv in TestMain. It talks to the
// test that started it through lines on stdin and stdout:
//
//	child → parent  "lab: ready"             dialed, the copy is starting
//	child → parent  "lab: fault-point"       Signal bytes of the copy are written
//	parent → child  "fault K UNIXNANO"       fault K (0, 1, ...) took effect then
//	child → parent  "lab: recovered K"       a call issued after fault K succeeded
//	child → parent  "lab: result {json}"     the clientResult; the child then exits
//
// Its log (JSON, with the xprt connect and disconnect events) goes to
// stderr, which the parent keeps in a file.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
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
const clientEnv = "GONFS_LAB_CLIENT"

// clientConfig is what the parent tells a child.
type clientConfig struct {
	Addr             string        // NFS server address as the client dials it
	Policy           string        // a stock policy's name (policyOrder)
	MinPort, MaxPort int           // the policy's port range; the first dial uses MinPort
	File             string        // path of the copied file, in the server's namespace
	ProbeDir         string        // directory for the probe MKDIRs (exists)
	Size             int64         // bytes to copy
	Signal           int64         // print "lab: fault-point" once this much is written
	Seed             uint64        // of the copied data
	Bound            time.Duration // after the last fault: recovered by then, or stuck
	Faults           int           // number of faults the parent injects
	Setup            time.Duration // bound on everything before the first fault
	// Defaults: the library's socket options, timeouts and backoff
	// instead of the lab's short ones (only the port range and the first
	// port are the lab's).
	Defaults bool
	// V40 pins the client to NFSv4.0 (nfs4.Version40) instead of letting
	// it negotiate 4.1.
	V40 bool
	// Connections is the client's Config.Connections (0: the default).
	Connections int
	// Probers is how many probe loops run at once (0: one), ProbeEvery
	// how often each issues a MKDIR (0: probeEvery).
	Probers    int
	ProbeEvery time.Duration
	// HoldCopy stops the copy at the fault point until the last fault is
	// announced, so that only probes are in flight during the fault.
	HoldCopy bool
	// Idle makes the client idle at the fault: at the fault point the
	// copy and the probes stop, the client makes no call for idleFor,
	// and only then says "fault-point". Once the fault is announced the
	// probes go on; the copy waits for the first successful one, so that
	// the first call after the fault meets the dead path alone.
	Idle bool
}

// clientResult is what a child reports.
type clientResult struct {
	Recovered bool
	Stuck     bool            // the bound passed with the copy unfinished
	Err       string          // why the copy or the client failed
	FirstCall []time.Duration // per fault: to the first successful call issued after it; -1 none
	Reconnect []time.Duration // per fault: to the first connection made after it; -1 none
	CopyDone  time.Duration   // last fault → copy finished and closed; -1 if not
	Copied    int64
	SHA256    string // of the data sent
	Ports     []int  // Stats.Transport.LastPorts
	Dials     int    // dials the policy decided, and spares dialed
	// Spares and SparesUsed are Stats.Transport's: spare connections
	// made while a connection was suspect, and those that replaced it.
	Spares, SparesUsed uint64
	Reconnects         uint64
	Probes             []string // probe directories created successfully
	Duplicates         int      // probe MKDIRs answered NFS4ERR_EXIST
	// InFlight counts probe MKDIRs issued before the last fault took
	// effect and answered after it: those a reconnect had to re-send.
	InFlight int
	// Resent counts calls re-sent with their XID after a reconnect
	// (Stats.Recovery.ReplayedSlots), the copy's included.
	Resent    uint64
	ProbeErrs []string // other probe errors, at most a few
	// Reclaims and Reopens are Stats.Recovery's: opens reclaimed in a
	// restarted server's grace period, and opens made again because
	// reclaim was refused.
	Reclaims, Reopens uint64
}

// Client timeouts: a dead path is noticed within seconds.
var labSocket = xprt.SocketOptions{
	KeepAliveIdle:     time.Second,
	KeepAliveInterval: time.Second,
	UserTimeout:       3 * time.Second,
}

const (
	labTimeo       = 2 * time.Second
	labDialTimeout = 2 * time.Second
	probeEvery     = 200 * time.Millisecond
	idleFor        = 2 * time.Second // Idle: no call from the client for this long before the fault
	maxProbeErrs   = 5
)

// newPolicy returns the stock policy called name, with a quick backoff
// (100 ms doubling to 1 s, never giving up) so that the lab measures the
// port choice rather than the wait, or with its default backoff if
// defaults is set, and a first dial from MinPort so that runs are
// comparable (and, behind a NAT, two clients start on the same port).
func newPolicy(name string, minPort, maxPort int, defaults bool) (policy.Policy, error) {
	var b backoff.BackOff
	if !defaults {
		e := backoff.NewExponentialBackOff()
		e.InitialInterval = 100 * time.Millisecond
		e.MaxInterval = time.Second
		e.Multiplier = 2
		e.MaxElapsedTime = 0
		b = e
	}
	first := true
	o := policy.Options{MinPort: minPort, MaxPort: maxPort, BackOff: b, Rand: func(n int) int {
		if first {
			first = false
			return 0
		}
		return rand.IntN(n)
	}}
	switch name {
	case "SameReservedPort":
		return policy.SameReservedPort(o), nil
	case "NewReservedPort":
		return policy.NewReservedPort(o), nil
	case "Ephemeral":
		return policy.Ephemeral(o), nil
	case "Hedged":
		return policy.Hedged(o), nil
	}
	return nil, fmt.Errorf("lab: no stock policy %q", name)
}

// connectLog is a slog.Handler that passes records on to another and
// notes when each "xprt: connected" event happened.
type connectLog struct {
	slog.Handler
	mu *sync.Mutex
	at *[]time.Time // guarded by mu
}

func (h connectLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "xprt: connected" {
		h.mu.Lock()
		*h.at = append(*h.at, r.Time)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h connectLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return connectLog{h.Handler.WithAttrs(attrs), h.mu, h.at}
}

func (h connectLog) WithGroup(name string) slog.Handler {
	return connectLog{h.Handler.WithGroup(name), h.mu, h.at}
}

// countingPolicy counts the dials the policy it wraps decides, not the
// spares it is asked for (policy.CauseSuspect), which the transport's
// statistics count once dialed.
type countingPolicy struct {
	policy.Policy
	mu    sync.Mutex
	dials int
}

func (p *countingPolicy) Next(a policy.Attempt) policy.Decision {
	d := p.Policy.Next(a)
	if a.Cause != policy.CauseSuspect {
		p.mu.Lock()
		p.dials++
		p.mu.Unlock()
	}
	return d
}

func (p *countingPolicy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dials
}

// dataReader yields Size bytes of deterministic pseudo-random data,
// hashing them, and calls signal once Signal bytes have been read. Only
// read may be looked at while a copy still reads from it (one that is
// stuck).
type dataReader struct {
	src      *rand.ChaCha8
	left     int64
	read     atomic.Int64
	at       int64
	signal   func()
	signaled bool
	sum      interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newDataReader(seed uint64, size, at int64, signal func()) *dataReader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return &dataReader{src: rand.NewChaCha8(key), left: size, at: at, signal: signal, sum: sha256.New()}
}

func (r *dataReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.src.Read(p) // never fails
	r.sum.Write(p[:n])
	r.left -= int64(n)
	read := r.read.Add(int64(n))
	if !r.signaled && read >= r.at && r.signal != nil {
		r.signaled = true
		r.signal()
	}
	return n, nil
}

// expectedSum returns the SHA-256 of the data a child with this seed
// and size sends.
func expectedSum(seed uint64, size int64) string {
	r := newDataReader(seed, size, size+1, nil)
	if _, err := io.Copy(io.Discard, r); err != nil {
		panic(err) // a dataReader never fails
	}
	return hex.EncodeToString(r.sum.Sum(nil))
}

// child is the state of a running child.
type child struct {
	cfg clientConfig
	out *bufio.Writer

	mu        sync.Mutex
	faults    []time.Time     // when each fault took effect; guarded by mu
	firstCall []time.Duration // guarded by mu
	lastFault chan struct{}   // closed when the last fault is known
	recovered chan struct{}   // closed when a call issued after the last fault has succeeded
	gate      sync.RWMutex    // each probe holds it shared; Idle takes it to stop them
	connects  []time.Time     // when connections were made; guarded by mu
	res       clientResult    // the probe fields; guarded by mu
}

func (ch *child) say(format string, args ...any) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	fmt.Fprintf(ch.out, "lab: "+format+"\n", args...)
	ch.out.Flush()
}

// runClient is the child's main; it returns the exit status.
func runClient(env string) int {
	var cfg clientConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "lab client:", err)
		return 2
	}
	ch := &child{cfg: cfg, out: bufio.NewWriter(os.Stdout), lastFault: make(chan struct{}), recovered: make(chan struct{})}
	res := ch.run()
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab client:", err)
		return 2
	}
	ch.say("result %s", b)
	return 0
}

func (ch *child) run() clientResult {
	cfg := ch.cfg
	res := clientResult{CopyDone: -1}
	fail := func(err error) clientResult { res.Err = err.Error(); return res }

	p, err := newPolicy(cfg.Policy, cfg.MinPort, cfg.MaxPort, cfg.Defaults)
	if err != nil {
		return fail(err)
	}
	cp := &countingPolicy{Policy: p}
	logger := slog.New(connectLog{slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}), &ch.mu, &ch.connects})
	setup, cancelSetup := context.WithTimeout(context.Background(), cfg.Setup)
	defer cancelSetup()
	ncfg := nfs4.Config{Policy: cp, Logger: logger, Connections: cfg.Connections}
	if cfg.V40 {
		ncfg.Version = nfs4.Version40
	}
	if !cfg.Defaults {
		ncfg.Socket, ncfg.DialTimeout, ncfg.Timeo, ncfg.Retrans = labSocket, labDialTimeout, labTimeo, 2
	}
	c, err := nfs4.Dial(setup, cfg.Addr, ncfg)
	if err != nil {
		return fail(err)
	}
	// Close is not called when stuck: it would wait for the server.
	f, err := c.Create(setup, cfg.File)
	if err != nil {
		return fail(err)
	}
	ch.firstCall = make([]time.Duration, cfg.Faults)
	for i := range ch.firstCall {
		ch.firstCall[i] = -1
	}
	go ch.readFaults()
	ch.say("ready")

	stopProbes := make(chan struct{})
	probesDone := make(chan struct{})
	var probers sync.WaitGroup
	for k := range max(1, cfg.Probers) {
		probers.Add(1)
		go func() {
			defer probers.Done()
			ch.probe(c, k, stopProbes)
		}()
	}
	go func() {
		defer close(probesDone)
		probers.Wait()
	}()

	type copyResult struct {
		n   int64
		err error
		at  time.Time
	}
	copied := make(chan copyResult, 1)
	data := newDataReader(cfg.Seed, cfg.Size, cfg.Signal, func() {
		if cfg.Idle {
			ch.idle()
			return
		}
		ch.say("fault-point")
		if cfg.HoldCopy {
			// Bounded: the main loop reports the cell stuck at the
			// deadline, and the child exits.
			<-ch.lastFault
		}
	})
	go func() {
		n, err := f.ReadFrom(data)
		if err == nil {
			err = f.Close()
		}
		copied <- copyResult{n, err, time.Now()}
	}()

	// The bound runs from the last fault; before it, from the start.
	deadline := time.NewTimer(cfg.Setup)
	defer deadline.Stop()
	lastFault := ch.lastFault
	var cr copyResult
	done := false
	for !done {
		select {
		case cr = <-copied:
			done = true
		case <-lastFault:
			lastFault = nil
			deadline.Reset(time.Until(ch.lastFaultTime().Add(cfg.Bound)))
		case <-deadline.C:
			res.Stuck = true
			done = true
		}
	}
	// The copy may end before the last fault (a fault that hits nothing);
	// wait for it, within the bound, so that the probes measure it.
	if !res.Stuck && cr.err == nil && cfg.Faults > 0 {
		select {
		case <-ch.lastFault:
			wait := time.Until(ch.lastFaultTime().Add(cfg.Bound))
			ch.waitFirstCall(wait)
		case <-deadline.C:
			res.Stuck = true
		}
	}
	close(stopProbes)
	if !res.Stuck {
		<-probesDone // each probe is bounded by the deadline context
	}

	st := c.Stats()
	ch.mu.Lock()
	res.FirstCall = append([]time.Duration(nil), ch.firstCall...)
	res.Probes = append([]string(nil), ch.res.Probes...)
	res.Duplicates = ch.res.Duplicates
	res.InFlight = ch.res.InFlight
	res.ProbeErrs = append([]string(nil), ch.res.ProbeErrs...)
	faults := len(ch.faults)
	for _, at := range ch.faults {
		d := time.Duration(-1)
		for _, c := range ch.connects {
			if c.After(at) {
				d = c.Sub(at)
				break
			}
		}
		res.Reconnect = append(res.Reconnect, d)
	}
	ch.mu.Unlock()
	res.Ports = st.Transport.LastPorts
	res.Reconnects = st.Transport.Reconnects
	res.Resent = st.Recovery.ReplayedSlots
	res.Reclaims, res.Reopens = st.Recovery.Reclaims, st.Recovery.Reopens
	res.Dials = cp.count() + int(st.Transport.Spares)
	res.Spares, res.SparesUsed = st.Transport.Spares, st.Transport.SparesUsed
	res.Copied = data.read.Load()
	if !res.Stuck {
		res.SHA256 = hex.EncodeToString(data.sum.Sum(nil)) // the copy is over
	}

	switch {
	case res.Stuck:
		res.Err = fmt.Sprintf("stuck: copy at %d of %d bytes when the bound passed", res.Copied, cfg.Size)
		return res
	case cr.err != nil:
		res.Err = "copy: " + cr.err.Error()
		return res
	case faults < cfg.Faults:
		res.Err = fmt.Sprintf("only %d of %d faults announced", faults, cfg.Faults)
		return res
	}
	if faults > 0 {
		res.CopyDone = max(0, cr.at.Sub(ch.lastFaultTime()))
	}
	res.Recovered = cfg.Faults == 0 || res.FirstCall[cfg.Faults-1] >= 0
	if !res.Recovered {
		res.Err = "no successful call after the last fault"
		return res
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			res.Err = "close: " + err.Error()
			res.Recovered = false
		}
	case <-time.After(cfg.Bound):
		res.Err = "close did not return"
		res.Recovered = false
	}
	return res
}

// idle stops the probes (waiting for those in flight), lets the
// connection go quiet for idleFor, says "fault-point", and lets the probes
// go on once the last fault is announced; it returns, letting the copy go
// on, when a probe issued after that fault has succeeded. Each wait is
// bounded: the main loop reports the cell stuck at its deadline, and the
// child exits.
func (ch *child) idle() {
	ch.gate.Lock()
	time.Sleep(idleFor)
	ch.say("fault-point")
	<-ch.lastFault
	ch.gate.Unlock()
	<-ch.recovered
}

func (ch *child) lastFaultTime() time.Time {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.faults[len(ch.faults)-1]
}

// waitFirstCall waits up to d for a successful call after the last fault.
func (ch *child) waitFirstCall(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ch.mu.Lock()
		ok := ch.firstCall[len(ch.firstCall)-1] >= 0
		ch.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(probeEvery / 4)
	}
}

// readFaults reads "fault K UNIXNANO" lines from stdin until it closes.
func (ch *child) readFaults() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "fault" {
			continue
		}
		k, err1 := strconv.Atoi(f[1])
		ns, err2 := strconv.ParseInt(f[2], 10, 64)
		ch.mu.Lock()
		if err1 != nil || err2 != nil || k != len(ch.faults) || k >= ch.cfg.Faults {
			ch.mu.Unlock()
			continue
		}
		ch.faults = append(ch.faults, time.Unix(0, ns))
		last := len(ch.faults) == ch.cfg.Faults
		ch.mu.Unlock()
		if last {
			close(ch.lastFault)
		}
	}
}

// probe creates a directory in ProbeDir every ProbeEvery until stop is
// closed: a small call that is not idempotent, so that one executed twice
// shows (NFS4ERR_EXIST). The first success after each fault is reported.
// Prober k names its directories pK-NNNNN.
func (ch *child) probe(c *nfs4.Client, k int, stop <-chan struct{}) {
	every := ch.cfg.ProbeEvery
	if every == 0 {
		every = probeEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		name := path.Join(ch.cfg.ProbeDir, fmt.Sprintf("p%d-%05d", k, i))
		ch.gate.RLock()
		issued := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), ch.cfg.Setup+ch.cfg.Bound)
		err := c.Mkdir(ctx, name, 0o755)
		cancel()
		done := time.Now()
		ch.gate.RUnlock()
		var recovered []int
		ch.mu.Lock()
		if n := len(ch.faults); n > 0 && n == ch.cfg.Faults && issued.Before(ch.faults[n-1]) && done.After(ch.faults[n-1]) {
			ch.res.InFlight++
		}
		switch {
		case err == nil:
			ch.res.Probes = append(ch.res.Probes, path.Base(name))
			for f, at := range ch.faults {
				if ch.firstCall[f] < 0 && at.Before(issued) {
					ch.firstCall[f] = done.Sub(at)
					recovered = append(recovered, f)
					if f == ch.cfg.Faults-1 {
						close(ch.recovered)
					}
				}
			}
		case errors.Is(err, fs.ErrExist):
			ch.res.Duplicates++
		case len(ch.res.ProbeErrs) < maxProbeErrs:
			ch.res.ProbeErrs = append(ch.res.ProbeErrs, err.Error())
		}
		ch.mu.Unlock()
		for _, f := range recovered {
			ch.say("recovered %d", f)
		}
	}
}
