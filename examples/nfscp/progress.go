package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how a run advances on a terminal, nothing otherwise. It
// also serialises the lines nfscp prints to stderr, clearing the bar first
// so that they do not garble it. It is safe for concurrent use.
//
// A run of files named on the command line knows its total before the
// first file starts, and shows a bar with the percentage and ETA. A tree's
// walk and copy overlap, so its total is known only when the walk ends,
// near the end of the run (the walk is at most a queue ahead of the
// copies). Its display claims nothing it does not know: the bytes copied,
// the rate and the time so far, and "[N/M+]", the Nth file started of the
// M found so far; once the walk has ended, "[N/M]" and the run's bytes.
type progress struct {
	show           bool // draw a bar once a file starts
	stdout, stderr io.Writer

	mu       sync.Mutex               // orders lines against bar updates; guards the fields below
	bar      *progressbar.ProgressBar // nil: no bar
	stopTick chan struct{}            // closed by Done: ends tick
	files    int                      // files found so far
	bytes    int64                    // their size
	walked   bool                     // the walk has ended: files and bytes are the run's
	fixed    bool                     // the bar was drawn with the run's total
	started  int                      // files started so far
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns the progress display for a run. show says whether
// to draw it (stdout is a terminal and -q was not given); it is drawn on
// stdout once the first file starts, lines go to stderr.
func newProgress(show bool, stdout, stderr io.Writer) *progress {
	return &progress{show: show, stdout: stdout, stderr: stderr}
}

// Found adds a file of size bytes to the run, as the walk finds it.
func (p *progress) Found(size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files++
	p.bytes += size
}

// WalkDone notes that the walk has found every file: the total is final.
func (p *progress) WalkDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.walked = true
}

// newBar draws the display for the first file: a bar if the total is
// known, a spinner (no percentage or ETA) if not.
func (p *progress) newBar() {
	total := int64(-1)
	if p.walked {
		p.fixed = true
		total = max(p.bytes, 1)
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.stdout),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
		// The library's own spinner goroutine renders while Clear, which
		// takes no lock, reads the same state: a data race. tick turns
		// the spinner instead, under p.mu like every other use of the bar.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	p.bar.RenderBlank()
	p.stopTick = make(chan struct{})
	go p.tick(p.bar, p.stopTick)
}

// tick redraws bar every spinnerEvery, so that the spinner and the time
// move while no bytes arrive, until stop is closed.
func (p *progress) tick(bar *progressbar.ProgressBar, stop <-chan struct{}) {
	t := time.NewTicker(spinnerEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		bar.Add64(0)
		p.mu.Unlock()
	}
}

// spinnerEvery is how often tick redraws the bar (the library's default
// for its spinner).
const spinnerEvery = 100 * time.Millisecond

// Start notes that the copy of the file at path name begins.
func (p *progress) Start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.show {
		return
	}
	if p.bar == nil {
		p.newBar()
	}
	p.started++
	desc := quoteName(path.Base(name))
	switch {
	case !p.walked:
		desc = fmt.Sprintf("[%d/%d+] %s", p.started, p.files, desc)
	case !p.fixed:
		desc = fmt.Sprintf("[%d/%d, %s] %s", p.started, p.files, formatBytes(p.bytes), desc)
	case p.files > 1:
		desc = fmt.Sprintf("[%d/%d] %s", p.started, p.files, desc)
	}
	p.bar.Describe(desc)
}

// Add counts n more bytes copied.
func (p *progress) Add(n int64) {
	p.mu.Lock()
	if p.bar != nil {
		p.bar.Add64(n)
	}
	p.mu.Unlock()
}

// Line prints one line to stderr, prefixed with "nfscp: ".
func (p *progress) Line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.stderr, "nfscp: "+termSafe(s))
	if p.bar != nil {
		p.bar.RenderBlank()
	}
}

// Done removes the bar.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		close(p.stopTick)
		p.bar.Clear()
		p.bar = nil
	}
}

// limiter paces a run to --bwlimit bytes per second over all its files.
// A nil *limiter does not limit. It is safe for concurrent use.
type limiter struct {
	rate float64 // bytes per second

	mu    sync.Mutex
	start time.Time // when the current accounting period began
	sent  int64     // bytes since start
}

// maxBurst is how far behind its schedule a limiter lets a run fall (after
// an outage, say) before it stops trying to catch up.
const maxBurst = time.Second

func newLimiter(bytesPerSecond int64) *limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &limiter{rate: float64(bytesPerSecond)}
}

// wait accounts for n bytes and sleeps until the schedule allows them.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.start.IsZero() {
		l.start = now
	}
	l.sent += int64(n)
	due := l.start.Add(time.Duration(float64(l.sent) / l.rate * float64(time.Second)))
	if now.Sub(due) > maxBurst {
		l.start, l.sent = now, 0
		due = now
	}
	l.mu.Unlock()
	d := due.Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
