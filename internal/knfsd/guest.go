package knfsd

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The control channel: the guest's first serial line (/dev/ttyS0, UML's
// ssl0) is wired to a pair of pipes. After setting up nfsd, init.sh reads
// one command per line from it, "ID BASE64-SCRIPT", runs the script with
// sh and answers
//
//	@@BEGIN ID
//	(the script's standard output and error)
//	@@END ID STATUS
//
// One command runs at a time. "@@READY" announces the loop once.
const (
	readyLine = "@@READY"
	beginMark = "@@BEGIN "
	endMark   = "@@END "
)

// ctlLoop is the guest side of the control channel (appended to init.sh).
const ctlLoop = `
stty -F /dev/ttyS0 raw -echo
exec </dev/ttyS0 >/dev/ttyS0 2>&1
set +ex
echo "` + readyLine + `"
while IFS= read -r line; do
	id=${line%% *}
	printf '%s' "${line#* }" | base64 -d >/run/ctl.sh
	sh /run/ctl.sh >/run/ctl.out 2>&1 </dev/null
	rc=$?
	echo "` + beginMark + `$id"
	cat /run/ctl.out
	echo "` + endMark + `$id $rc"
done
`

// A control is the host side of the control channel.
type control struct {
	w     *os.File // the guest's input
	ready chan struct{}

	mu      sync.Mutex
	next    int
	waiting map[int]chan result // guarded by mu
	dead    error               // set once the guest's output ended; guarded by mu
	gone    chan struct{}       // closed when the output ended
}

// result is what one command produced.
type result struct {
	out    string
	status int
	err    error
}

// newControl starts reading the guest's output from r. It owns w and r.
func newControl(w, r *os.File) *control {
	c := &control{w: w, ready: make(chan struct{}), waiting: map[int]chan result{}, gone: make(chan struct{})}
	go c.read(r)
	return c
}

// read dispatches the guest's answers until its output ends (all its
// writers, the UML processes, are gone).
func (c *control) read(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	var (
		cur   = -1 // the command whose output is being read
		out   strings.Builder
		ready bool
	)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == readyLine && !ready:
			ready = true
			close(c.ready)
		case strings.HasPrefix(line, beginMark):
			if id, err := strconv.Atoi(strings.TrimPrefix(line, beginMark)); err == nil {
				cur = id
				out.Reset()
			}
		case strings.HasPrefix(line, endMark) && cur >= 0:
			f := strings.Fields(strings.TrimPrefix(line, endMark))
			if len(f) == 2 && f[0] == strconv.Itoa(cur) {
				st, _ := strconv.Atoi(f[1])
				c.deliver(cur, result{out: out.String(), status: st})
				cur = -1
			}
		case cur >= 0:
			if out.Len() < 4<<20 {
				out.WriteString(line)
				out.WriteByte('\n')
			}
		}
	}
	c.mu.Lock()
	c.dead = fmt.Errorf("knfsd: the guest's control channel ended (the guest is gone)")
	for id, ch := range c.waiting {
		ch <- result{err: c.dead}
		delete(c.waiting, id)
	}
	c.mu.Unlock()
	close(c.gone)
}

func (c *control) deliver(id int, r result) {
	c.mu.Lock()
	ch := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// exec runs script in the guest and returns its combined output; a
// non-zero exit status is an error quoting the output.
func (c *control) exec(ctx context.Context, script string) (string, error) {
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return "", c.dead
	}
	id := c.next
	c.next++
	c.waiting[id] = ch
	line := strconv.Itoa(id) + " " + base64.StdEncoding.EncodeToString([]byte(script)) + "\n"
	_, err := io.WriteString(c.w, line) // under mu: lines never interleave
	c.mu.Unlock()
	if err != nil {
		c.deliver(id, result{})
		return "", fmt.Errorf("knfsd: send to the guest: %w", err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return "", r.err
		}
		if r.status != 0 {
			return r.out, fmt.Errorf("knfsd: guest command failed with status %d: %s\n%s", r.status, script, r.out)
		}
		return r.out, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return "", fmt.Errorf("knfsd: guest command %q: %w", script, ctx.Err())
	}
}

// close closes the guest's input.
func (c *control) close() { c.w.Close() }
