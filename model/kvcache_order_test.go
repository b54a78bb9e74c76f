package model

import (
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/switchyard-ai/switchyard/kernels"
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

// TestKVPoolMemory checks where a pool's slabs live: a small pool's on
// the Go heap, a pool of hugeKVBytes or more in a mapping whose first
// slab starts on a 2 MiB boundary (on Linux), and every slab of either
// aligned for its values and as long as the pool's blocks need.
func TestKVPoolMemory(t *testing.T) {
	m := &Model{Config: Config{Layers: 3, KVHeads: 2, HeadDim: 8}}
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16} {
		m.KVDType = dt
		blockBytes := m.KVBlockBytes(16)
		for _, blocks := range []int{0, 5, int(hugeKVBytes/blockBytes) + 1} {
			p := m.NewKVPool(16, blocks)
			want := blocks * 16 * 2 * 8
			var slabs [][]byte
			for l := range 3 {
				if dt == kernels.F16 {
					slabs = append(slabs, bytesOf(p.k16[l]), bytesOf(p.v16[l]))
				} else {
					slabs = append(slabs, bytesOf(p.k[l]), bytesOf(p.v[l]))
				}
			}
			for i, s := range slabs {
				if len(s) != want*int(kvValueBytes(dt)) {
					t.Errorf("%v pool of %d blocks: slab %d holds %d bytes, want %d", dt, blocks, i, len(s), want*int(kvValueBytes(dt)))
				}
				if len(s) > 0 && addrOf(s)%64 != 0 {
					t.Errorf("%v pool of %d blocks: slab %d at %#x, not 64-byte aligned", dt, blocks, i, addrOf(s))
				}
			}
			mapped := int64(blocks)*blockBytes >= hugeKVBytes
			if runtime.GOOS == "linux" && mapped && addrOf(slabs[0])%(2<<20) != 0 {
				t.Errorf("%v pool of %d blocks (%d bytes): first slab at %#x, not mapped on a 2 MiB boundary",
					dt, blocks, int64(blocks)*blockBytes, addrOf(slabs[0]))
			}
			// Every value can be written and read back.
			for _, s := range slabs {
				for i := range s {
					s[i] = byte(i)
				}
			}
			for _, s := range slabs {
				for i := range s {
					if s[i] != byte(i) {
						t.Fatalf("%v pool of %d blocks: slabs overlap", dt, blocks)
					}
				}
			}
		}
	}
}

func bytesOf[T uint16 | float32](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
