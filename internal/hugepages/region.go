package hugepages

import (
	"fmt"
	"unsafe"
)

// Align is the alignment of every buffer a Region hands out: a cache line.
const Align = 64

// Region is memory handed out in buffers, one after another, from one
// mapping. A buffer is zero until written. A Region must be used from one
// goroutine at a time; Close releases the mapping, after which nothing it
// handed out may be read or written.
type Region struct {
	mapped []byte // the whole mapping, nil for a Go heap region
	rest   []byte // not yet handed out
	huge   bool   // huge pages were asked for, and the kernel has them enabled
}

// New returns a region of at least n bytes. It maps memory outside the Go
// heap where it can and falls back to one Go heap allocation otherwise
// (and for n <= 0).
func New(n int) *Region {
	if n > 0 {
		if mapped, rest, huge, err := mapRegion(n); err == nil {
			return &Region{mapped: mapped, rest: rest, huge: huge}
		}
	}
	return &Region{rest: make([]byte, max(n, 0)+Align)}
}

// Take returns the next n bytes of the region, Align-aligned. When the
// region has fewer left, the buffer comes from the Go heap instead, in
// ordinary pages: Take fails only for a negative n, with a panic.
func (r *Region) Take(n int) []byte {
	if n < 0 {
		panic(fmt.Sprintf("hugepages: Take(%d)", n))
	}
	from := r.rest
	if skip := alignSkip(from, Align); skip+n <= len(from) {
		r.rest = from[skip+n:]
		return from[skip : skip+n : skip+n]
	}
	b := make([]byte, n+Align)
	skip := alignSkip(b, Align)
	return b[skip : skip+n : skip+n]
}

// Huge reports whether the region is mapped, huge pages were asked for
// and the kernel has transparent huge pages enabled. The kernel may still
// back parts of it with ordinary pages, where it finds no free huge page.
func (r *Region) Huge() bool { return r.huge }

// Close unmaps the region. It is safe to call more than once.
func (r *Region) Close() error {
	m := r.mapped
	r.mapped, r.rest, r.huge = nil, nil, false
	if m == nil {
		return nil
	}
	return unmap(m)
}

// alignSkip returns how many bytes of b come before its first byte whose
// address is a multiple of align.
func alignSkip(b []byte, align int) int { return (align - addr(b)%align) % align }

// addr returns the address of b's first byte, or 0 for a slice with no
// capacity.
func addr(b []byte) int {
	if cap(b) == 0 {
		return 0
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
