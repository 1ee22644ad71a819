package nfs4

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

// A reader waiting behind a writer, and a writer waiting behind a reader,
// each give up when their context ends, and give up without leaving the
// lock taken: the next reader and writer get it.
func TestCtxRWMutexGivesUpWithItsContext(t *testing.T) {
	var m ctxRWMutex
	ctx := context.Background()
	ended, cancel := context.WithCancel(ctx)
	cancel()

	if err := m.lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.rlock(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("rlock behind a writer with an ended context: %v, want context.Canceled", err)
	}
	m.unlock()

	if err := m.rlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.lock(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock behind a reader with an ended context: %v, want context.Canceled", err)
	}
	// The writer that gave up lets readers in again, and the reader's
	// leaving lets the next writer in.
	if err := m.rlock(ended); err != nil {
		t.Fatalf("rlock after a writer gave up: %v", err)
	}
	m.runlock()
	m.runlock()
	if err := m.lock(ended); err != nil {
		t.Fatalf("lock of an unlocked mutex with an ended context: %v", err)
	}
	m.unlock()
}

// A writer waiting for readers gets the lock when the last leaves, and
// readers that come meanwhile wait for it, as with sync.RWMutex.
func TestCtxRWMutexWriterWaitsForReaders(t *testing.T) {
	var m ctxRWMutex
	ctx := context.Background()
	if err := m.rlock(ctx); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- m.lock(ctx) }()
	// A second reader, once the writer waits, queues behind it.
	waiting := func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.writing }
	for i := 0; !waiting(); i++ {
		if i == 1e6 {
			t.Fatal("the writer never started waiting")
		}
		select {
		case err := <-locked:
			t.Fatalf("lock returned %v while a reader held the mutex", err)
		default:
			runtime.Gosched()
		}
	}
	read := make(chan error, 1)
	go func() { read <- m.rlock(ctx) }()
	m.runlock()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		t.Fatalf("rlock returned %v while the writer held the mutex", err)
	default:
	}
	m.unlock()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	m.runlock()
}
