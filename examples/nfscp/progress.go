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

// progress shows how a run advances: a bar with bytes, rate and ETA on a
// terminal, nothing otherwise. It also serialises the lines nfscp prints to
// stderr, clearing the bar first so that they do not garble it. It is safe
// for concurrent use.
//
// The walk of a tree and its copy overlap, so the run's total grows as the
// walk finds files (Found) and is known only when the walk ends
// (WalkDone). Until then the bar's total is what has been found so far,
// and the count of files found is shown with a "+".
type progress struct {
	show           bool // draw a bar once a file is found
	stdout, stderr io.Writer

	mu      sync.Mutex               // orders lines against bar updates; guards the fields below
	bar     *progressbar.ProgressBar // nil: no bar
	files   int                      // files found so far
	bytes   int64                    // their size
	walked  bool                     // the walk has ended: files and bytes are the run's
	started int                      // files started so far
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns the progress display for a run. show says whether
// to draw a bar (stdout is a terminal and -q was not given); the bar is
// drawn on stdout once the walk finds a file, lines go to stderr.
func newProgress(show bool, stdout, stderr io.Writer) *progress {
	return &progress{show: show, stdout: stdout, stderr: stderr}
}

// Found adds a file of size bytes to the run, as the walk finds it.
func (p *progress) Found(size int64) {
	if !p.show {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files++
	p.bytes += size
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(p.barMax(),
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
		)
		p.bar.RenderBlank()
		return
	}
	if size > 0 {
		p.bar.ChangeMax64(p.barMax())
	}
}

// WalkDone notes that the walk has found every file: the total is final.
func (p *progress) WalkDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.walked = true
	if p.bar != nil {
		p.bar.ChangeMax64(p.barMax())
	}
}

// barMax is the bar's total: the bytes found, and while the walk goes on
// one more, so that a bar whose copies catch up with the walk does not
// count as finished (progressbar stops drawing a finished bar).
func (p *progress) barMax() int64 {
	if p.walked {
		return max(p.bytes, 1)
	}
	return p.bytes + 1
}

// Start notes that the copy of the file at path name begins.
func (p *progress) Start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	p.started++
	desc := quoteName(path.Base(name))
	switch {
	case !p.walked:
		desc = fmt.Sprintf("[%d/%d+] %s", p.started, p.files, desc)
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
