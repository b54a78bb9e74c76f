package model

import (
	"slices"
	"testing"
)

// TestBlockOrder checks that a cache takes a fresh pool's blocks in
// ascending order, and the same blocks again in the same order after
// Free, so that attention finds adjacent value blocks (one p·V call per
// run).
func TestBlockOrder(t *testing.T) {
	m := &Model{Config: Config{Layers: 1, KVHeads: 1, HeadDim: 2}}
	p := m.NewKVPool(4, 8)
	a, b := p.NewCache(), p.NewCache()
	a.Grow(16)
	b.Grow(8)
	if want := []int32{0, 1, 2, 3}; !slices.Equal(a.blocks, want) {
		t.Fatalf("first Grow: blocks %v, want %v", a.blocks, want)
	}
	if want := []int32{4, 5}; !slices.Equal(b.blocks, want) {
		t.Fatalf("second cache: blocks %v, want %v", b.blocks, want)
	}
	a.Free()
	a.Grow(12)
	if want := []int32{0, 1, 2}; !slices.Equal(a.blocks, want) {
		t.Fatalf("Grow after Free: blocks %v, want %v", a.blocks, want)
	}
}
