package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gonfs/nfs/internal/ganesha"
	"github.com/gonfs/nfs/internal/testutil"
)

// Session trunking (Config.Connections): several connections bound to one
// session, calls spread over them, the loss of one not holding up the
// others.

// TestConnections runs against each server with 4 connections: a large
// file goes in and out through io.Copy over all of them and arrives
// intact; one connection reset mid-copy, each way, costs nothing but a
// reconnect; and non-idempotent operations under resets of every
// connection in turn run exactly once.
func TestConnections(t *testing.T) {
	cfg := Config{Connections: 4}
	forEachServerWith(t, ganesha.Config{Lease: time.Minute}, cfg, func(t *testing.T, s testServer, c *Client) {
		t.Run("copy", func(t *testing.T) {
			copyThrough(t, s, c, "trunk-copy", 48<<20, nil)
			st := c.Stats()
			if len(st.Connections) != 4 || st.RPC.Conns != 4 {
				t.Fatalf("%d connections, %d ready; want 4 and 4", len(st.Connections), st.RPC.Conns)
			}
			for i, ts := range st.Connections {
				if ts.Connects < 1 || ts.BytesSent == 0 || ts.BytesReceived == 0 {
					t.Errorf("connection %d carried nothing: %+v", i, ts)
				}
			}
			if st.Recovery.Rebinds < 3 {
				t.Errorf("%d connections bound with BIND_CONN_TO_SESSION; want at least the 3 further ones", st.Recovery.Rebinds)
			}
			if st.Recovery.SessionResets != 0 || st.Recovery.ClientIDResets != 0 {
				t.Errorf("recovery during a plain copy: %+v", st.Recovery)
			}
		})
		t.Run("reset", func(t *testing.T) {
			before := c.Stats()
			fail := func() {
				tr := c.trs[1]
				tr.Fail(tr.Stats().Gen, io.ErrUnexpectedEOF)
			}
			copyThrough(t, s, c, "trunk-reset", 48<<20, fail)
			st := c.Stats()
			if n := st.Connections[1].Reconnects - before.Connections[1].Reconnects; n < 2 {
				t.Errorf("connection 1 reconnected %d times; want 2 (one reset each way)", n)
			}
			if st.Recovery.SessionResets != 0 || st.Recovery.ClientIDResets != 0 {
				t.Errorf("recovery after plain resets: %+v", st.Recovery)
			}
			t.Logf("re-sent calls: %d", st.RPC.Retransmits-before.RPC.Retransmits)
		})
		t.Run("resets", func(t *testing.T) { testResets(t, s, c) })
	})
}

// copyThrough writes size random bytes to dir/name through io.Copy and
// reads them back the same way, checking both the data read and the
// server's file by SHA-256. If midway is set it is called once halfway
// through each copy.
func copyThrough(t *testing.T, s testServer, c *Client, name string, size int64, midway func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := c.Create(ctx, s.dir+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	sent := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{7}), size), sent)
	if midway != nil {
		src = &atOffset{r: src, at: size / 2, f: midway}
	}
	if n, err := io.Copy(f.WithContext(ctx), src); err != nil || n != size {
		t.Fatalf("io.Copy into the file: %d, %v", n, err)
	}
	mustClose(t, f)

	f, err = c.Open(ctx, s.dir+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	got := sha256.New()
	var dst io.Writer = got
	if midway != nil {
		dst = &atOffsetW{w: got, at: size / 2, f: midway}
	}
	if n, err := io.Copy(dst, f.WithContext(ctx)); err != nil || n != size {
		t.Fatalf("io.Copy out of the file: %d, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("data read back differs from the data written")
	}
	if s.side.sha256(t, name) != hex.EncodeToString(sent.Sum(nil)) {
		t.Fatal("the file on the server's disk differs from the data written")
	}
}

// atOffset is a reader that calls f once when at bytes have been read.
type atOffset struct {
	r    io.Reader
	at   int64
	n    int64
	f    func()
	done bool
}

func (a *atOffset) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.n += int64(n)
	if !a.done && a.n >= a.at {
		a.done = true
		a.f()
	}
	return n, err
}

// atOffsetW is a writer that calls f once when at bytes have been written.
type atOffsetW struct {
	w    io.Writer
	at   int64
	n    int64
	f    func()
	done bool
}

func (a *atOffsetW) Write(p []byte) (int, error) {
	n, err := a.w.Write(p)
	a.n += int64(n)
	if !a.done && a.n >= a.at {
		a.done = true
		a.f()
	}
	return n, err
}

// More than 16 connections are refused before anything is dialed.
func TestConnectionsOver16Refused(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, "127.0.0.1:1", Config{Connections: MaxConnections + 1})
	if err == nil {
		c.Close()
		t.Fatal("Dial with 17 connections succeeded")
	}
	if !strings.Contains(err.Error(), "16") || !strings.Contains(err.Error(), "Connections") {
		t.Fatalf("Dial with 17 connections: %v; want an error naming Connections and the limit 16", err)
	}
}

// Over NFSv4.0, which has no session to bind connections to, a Client
// asked for 4 connections uses one, and works.
func TestConnectionsOverV40(t *testing.T) {
	gcfg := ganesha.Config{MinorVersions: []int{0}}
	forEachServerWith(t, gcfg, Config{Version: Version40, Connections: 4}, func(t *testing.T, s testServer, c *Client) {
		copyThrough(t, s, c, "trunk-v40", 8<<20, nil)
		st := c.Stats()
		if len(st.Connections) != 1 || st.RPC.Conns != 1 {
			t.Fatalf("over NFSv4.0: %d connections, %d ready; want 1 and 1", len(st.Connections), st.RPC.Conns)
		}
	})
}
