// Package bufpool recycles byte slices in power-of-two size classes.
//
// Buffers travel as *[]byte so that putting one back into a sync.Pool does
// not allocate. A buffer got for n bytes has len n and a capacity of at
// least n; Put accepts any buffer, including one grown by append.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 9  // smallest class: 512 B
	maxShift = 22 // largest pooled class: 4 MiB
)

var pools [maxShift - minShift + 1]sync.Pool

// Get returns a buffer of length n from the pool, allocating on a miss.
// Buffers larger than the largest class are allocated and not pooled.
// Safe for concurrent use.
func Get(n int) *[]byte {
	if n < 0 {
		n = 0
	}
	if n > 1<<maxShift {
		b := make([]byte, n)
		return &b
	}
	i := 0
	if n > 1<<minShift {
		i = bits.Len(uint(n-1)) - minShift
	}
	if v := pools[i].Get(); v != nil {
		p := v.(*[]byte)
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(i+minShift))
	return &b
}

// Put returns p's buffer to the pool. The caller must not use it afterwards.
// Buffers smaller than the smallest class or larger than the largest are
// dropped. Safe for concurrent use.
func Put(p *[]byte) {
	if p == nil {
		return
	}
	c := cap(*p)
	if c < 1<<minShift || c > 1<<maxShift {
		return
	}
	// The class whose size is the largest power of two not above c: every
	// buffer in class i then has a capacity of at least 1<<(i+minShift).
	i := bits.Len(uint(c)) - 1 - minShift
	*p = (*p)[:0]
	pools[i].Put(p)
}
