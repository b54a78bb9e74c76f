package hugepages

import "unsafe"

// Align is the alignment of every buffer a Region hands out: a cache line.
const Align = 64

// Region is memory handed out in buffers, one after another, from one
// mapping. A buffer is zero until written, and untouched pages of the
// mapping take no memory. A Region must be used from one goroutine at a
// time; Close releases the mapping, after which nothing it handed out may
// be read or written.
type Region struct {
	mapped []byte // the whole mapping, nil for a Go heap region
	rest   []byte // not yet handed out
	huge   bool   // the OS accepted the request for 2 MiB pages
}

// New returns a region of at least n bytes. It maps memory outside the Go
// heap where it can and falls back to one Go heap allocation otherwise.
func New(n int) *Region {
	n = max(n, 0)
	if mapped, rest, huge, err := mapRegion(n); err == nil {
		return &Region{mapped: mapped, rest: rest, huge: huge}
	}
	return &Region{rest: make([]byte, n+Align)}
}

// Take returns the next n bytes of the region, Align-aligned. When the
// region has fewer left, the buffer comes from the Go heap instead, in
// ordinary pages: Take never fails.
func (r *Region) Take(n int) []byte {
	skip := (Align - addr(r.rest)%Align) % Align
	if skip+n > len(r.rest) {
		return make([]byte, n)
	}
	b := r.rest[skip : skip+n : skip+n]
	r.rest = r.rest[skip+n:]
	return b
}

// Huge reports whether the region is mapped and the OS accepted the
// request to back it with 2 MiB pages. (It may still fall back to 4 KiB
// pages where no 2 MiB page is free.)
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

// addr returns the address of b's first byte, or 0 for a slice with no
// capacity.
func addr(b []byte) int {
	if cap(b) == 0 {
		return 0
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
