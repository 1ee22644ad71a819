package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// The library reports a connection's life on its Config.Logger (package
// xprt logs these at Info, package rpc and nfs4 add warnings):
//
//	xprt: connected     gen, local_port, remote, attempt, down
//	xprt: disconnected  gen, local_port, cause, err
//	xprt: dial failed   port, cause, err   (Warn)
//	rpc: server not responding, still trying   (Warn)
//
// eventHandler turns them into nfscp's lines: with -v every connection
// event, as it happens; without it only the "not responding" notice a
// kernel mount prints. It also remembers why the last dial failed, for the
// error message when nfscp gives up.

// Message texts of the records handled specially.
const (
	msgConnected    = "xprt: connected"
	msgDisconnected = "xprt: disconnected"
	msgDialFailed   = "xprt: dial failed"
	msgStillTrying  = "rpc: server not responding, still trying"
)

// events is the state of one server's event stream. It is safe for
// concurrent use: the library logs from its own goroutines.
type events struct {
	server  string       // the server as messages name it
	verbose bool         // -v: print every connection event
	quiet   bool         // -q: not even the "not responding" notice
	print   func(string) // prints one line to stderr

	mu        sync.Mutex
	lastDial  string // cause of the last failed dial since the last connect; "" if none
	lostPort  int    // local port of the connection lost last
	lostCause string // why it was lost
	noticed   bool   // "not responding" printed for the current outage
	connected bool
}

// lastDialFailure returns why the last dial failed, if the server has not
// been reached since: "" otherwise.
func (e *events) lastDialFailure() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.connected {
		return ""
	}
	return e.lastDial
}

// handle processes one record, given its attributes by key.
func (e *events) handle(level slog.Level, msg string, attrs map[string]slog.Value) {
	e.mu.Lock()
	var line string
	switch msg {
	case msgConnected:
		port := attrInt(attrs, "local_port")
		switch reconnect := attrInt(attrs, "gen") > 1; {
		case e.verbose && reconnect:
			line = fmt.Sprintf("%s: reconnected: local port %d → %d after %s, %s without a connection",
				e.server, e.lostPort, port, orUnknown(e.lostCause), roundDuration(attrs["down"].Duration()))
		case e.verbose:
			line = fmt.Sprintf("%s: connected from local port %d", e.server, port)
		case e.noticed && !e.quiet:
			line = e.server + ": server OK"
		}
		e.connected, e.lastDial, e.noticed = true, "", false
	case msgDisconnected:
		e.connected = false
		e.lostPort = int(attrInt(attrs, "local_port"))
		e.lostCause = attrs["cause"].String()
		if e.verbose {
			line = fmt.Sprintf("%s: connection from local port %d lost: %s", e.server, e.lostPort, e.lostCause)
		}
	case msgDialFailed:
		e.lastDial = attrs["cause"].String()
		if e.verbose {
			line = fmt.Sprintf("%s: dial from local port %d failed: %s", e.server, attrInt(attrs, "port"), e.lastDial)
		}
	case msgStillTrying:
		if e.verbose || !e.noticed && !e.quiet {
			line = e.server + ": server not responding, still trying"
		}
		e.noticed = true
	case "rpc: connection lost", "rpc: resetting connection", "xprt: closed", "rpc: server not responding, timed out":
		// Said already by the lines above, or by the error nfscp ends with.
	default:
		if e.verbose && level >= slog.LevelInfo {
			line = e.server + ": " + genericLine(msg, attrs)
		}
	}
	e.mu.Unlock()
	if line != "" {
		e.print(line)
	}
}

// genericLine formats any other record: its message without the package
// prefix, then its attributes in key order.
func genericLine(msg string, attrs map[string]slog.Value) string {
	var b strings.Builder
	if i := strings.Index(msg, ": "); i > 0 && !strings.Contains(msg[:i], " ") {
		msg = msg[i+2:]
	}
	b.WriteString(msg)
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		if k != "server" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, attrs[k].String())
	}
	return b.String()
}

func attrInt(attrs map[string]slog.Value, k string) int64 {
	v, ok := attrs[k]
	if !ok {
		return 0
	}
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	}
	return 0
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown cause"
	}
	return s
}

// roundDuration rounds d for a human: milliseconds below 10 s, tenths above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// eventHandler is the slog.Handler given to one nfs4.Client.
type eventHandler struct {
	ev    *events
	attrs []slog.Attr // from WithAttrs, groups flattened away
}

var _ slog.Handler = (*eventHandler)(nil)

// Enabled drops Debug records, which nfscp never shows.
func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle passes the record to the server's events.
func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := make(map[string]slog.Value, len(h.attrs)+r.NumAttrs())
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.Resolve()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve()
		return true
	})
	h.ev.handle(r.Level, r.Message, attrs)
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *eventHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &eventHandler{ev: h.ev, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup ignores the group: nfscp reads attributes by their own names.
func (h *eventHandler) WithGroup(string) slog.Handler { return h }
