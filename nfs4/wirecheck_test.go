package nfs4

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

// The wire check: every COMPOUND the client sends during this package's
// tests, and every reply it parses, must decode cleanly with a decoder
// nobody here wrote — the NFSv4 types generated from RFC 7863's XDR by
// github.com/buildbarn/go-xdr (a test-only dependency) — consuming every
// byte, and must re-encode to exactly the same bytes.

var wire struct {
	sync.Mutex
	args, replies int
	failures      []string
}

func checkCompound(args, res []byte) {
	var failures []string
	if args != nil {
		var m nfsv4.Compound4args
		if err := decodeExactly(args, &m); err != nil {
			failures = append(failures, fmt.Sprintf("COMPOUND4args %x: %v", head(args), err))
		}
	}
	if res != nil {
		var m nfsv4.Compound4res
		if err := decodeExactly(res, &m); err != nil {
			failures = append(failures, fmt.Sprintf("COMPOUND4res %x: %v", head(res), err))
		}
	}
	wire.Lock()
	defer wire.Unlock()
	if args != nil {
		wire.args++
	}
	if res != nil {
		wire.replies++
	}
	if len(wire.failures) < 20 {
		wire.failures = append(wire.failures, failures...)
	}
}

type xdrMessage interface {
	ReadFrom(r io.Reader) (int64, error)
	WriteTo(w io.Writer) (int64, error)
}

func decodeExactly(b []byte, m xdrMessage) error {
	r := bytes.NewReader(b)
	if _, err := m.ReadFrom(r); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d bytes left over", r.Len())
	}
	out := bytes.NewBuffer(make([]byte, 0, len(b)))
	if _, err := m.WriteTo(out); err != nil {
		return fmt.Errorf("re-encode: %v", err)
	}
	if !bytes.Equal(out.Bytes(), b) {
		return fmt.Errorf("re-encodes differently")
	}
	return nil
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

// startWireCheck makes every COMPOUND the tests send and receive pass
// through checkCompound.
func startWireCheck() {
	tap := checkCompound
	wireTap.Store(&tap)
}

// stopWireCheck ends the check and reports whether every COMPOUND passed.
func stopWireCheck() bool {
	wireTap.Store(nil)
	wire.Lock()
	defer wire.Unlock()
	if len(wire.failures) > 0 {
		fmt.Fprintf(os.Stderr, "wire check: %d COMPOUNDs failed the independent decoder:\n", len(wire.failures))
		for _, f := range wire.failures {
			fmt.Fprintln(os.Stderr, "  ", f)
		}
		return false
	}
	if wire.args > 0 {
		fmt.Fprintf(os.Stderr, "wire check: %d requests and %d replies decoded cleanly by buildbarn/go-xdr\n", wire.args, wire.replies)
	}
	return true
}
