package hugepages

import (
	"testing"
)

func TestRegionTake(t *testing.T) {
	r := New(10_000)
	defer r.Close()
	var bufs [][]byte
	for _, n := range []int{1, 100, 64, 0, 5000, 3} {
		b := r.Take(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Take(%d): len %d cap %d", n, len(b), cap(b))
		}
		if n > 0 && addr(b)%Align != 0 {
			t.Errorf("Take(%d) at %#x, not %d-byte aligned", n, addr(b), Align)
		}
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Take(%d)[%d] = %d, want a zeroed buffer", n, i, b[i])
			}
			b[i] = byte(len(bufs) + 1)
		}
		bufs = append(bufs, b)
	}
	// Each buffer still holds what was written to it: none overlaps
	// another.
	for k, b := range bufs {
		for i := range b {
			if b[i] != byte(k+1) {
				t.Fatalf("buffer %d byte %d = %d after the later Takes, want %d", k, i, b[i], k+1)
			}
		}
	}
	// Past the region's size, Take still returns an aligned buffer (from
	// the heap).
	for _, n := range []int{1 << 20, 3, 0} {
		if b := r.Take(n); len(b) != n || (n > 0 && addr(b)%Align != 0) {
			t.Fatalf("Take(%d) past the region's end: len %d at %#x, want %d bytes %d-byte aligned", n, len(b), addr(b), n, Align)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Take(-1) did not panic")
			}
		}()
		r.Take(-1)
	}()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRegionEmpty(t *testing.T) {
	r := New(0)
	defer r.Close()
	if r.mapped != nil || r.Huge() {
		t.Errorf("New(0) mapped memory")
	}
	if b := r.Take(0); len(b) != 0 {
		t.Fatalf("Take(0) of an empty region: len %d", len(b))
	}
	if b := r.Take(10); len(b) != 10 {
		t.Fatalf("Take(10) of an empty region: len %d", len(b))
	}
}
