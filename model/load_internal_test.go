package model

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/switchyard-ai/switchyard/internal/testshared"
)

// TestLoadMapsCopies checks that Load writes its interleaved copies into
// one mapping of their own: every copy inside interleavedBytes from the
// first, which starts on a 2 MiB boundary on Linux (hugepages.Region).
func TestLoadMapsCopies(t *testing.T) {
	m, err := Load(testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var copies [][]byte
	if m.Weights.Head.Interleaved {
		copies = append(copies, m.Weights.Head.Data)
	}
	size := 0
	for _, l := range m.Weights.Layers {
		for _, p := range l.Proj {
			if p.Interleaved {
				copies = append(copies, p.Data)
				size += len(p.Data)
			}
		}
	}
	if len(copies) < 2 {
		t.Fatalf("%d interleaved matrices in stories260K, want its head and projections", len(copies))
	}
	start := uintptr(unsafe.Pointer(&copies[0][0]))
	if runtime.GOOS == "linux" && start%(2<<20) != 0 {
		t.Errorf("the first copy is at %#x, not on a 2 MiB boundary", start)
	}
	limit := start + uintptr(len(copies[0])+size+64*len(copies))
	for i, c := range copies {
		if a := uintptr(unsafe.Pointer(&c[0])); a < start || a+uintptr(len(c)) > limit {
			t.Errorf("copy %d at %#x, outside the copies' region [%#x, %#x)", i, a, start, limit)
		}
	}
}
