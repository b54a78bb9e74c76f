package gguf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// can be read, and copied through a Writer into a file that parses and
// copies again to the same bytes.
func FuzzParse(f *testing.F) {
	w := NewWriter()
	w.AddString("general.architecture", "llama")
	w.AddUint32("llama.block_count", 1)
	w.AddStrings("tokenizer.ggml.tokens", []string{"<unk>", "a"})
	w.AddFloat32s("tokenizer.ggml.scores", []float32{0, -1})
	w.Add("nested", []any{[]int8{-1}, []bool{true}})
	w.AddTensor("w", kernels.F32, []int{2, 2}, encode(kernels.F32, 4, 1))
	w.AddTensor("h", kernels.F16, []int{3}, encode(kernels.F16, 3, 1))
	w.AddTensor("q", kernels.Q8_0, []int{1, 32}, encode(kernels.Q8_0, 32, 1))
	var buf bytes.Buffer
	w.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add(header(0, 1).str("general.alignment").u32(uint32(typeUint32)).u32(8).Bytes())
	f.Add(header(2, 0).tensor("q4k", []uint64{256}, TypeQ4_K, 0).tensor("b", []uint64{2, 1}, TypeBF16, 160).data(32, 164))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		for _, k := range file.Keys() {
			file.Uint(k)
			file.Int(k)
			file.Float(k)
			file.Int32s(k)
			file.Float32s(k)
		}
		once := copyParsed(t, file)
		again, err := Parse(once)
		if err != nil {
			t.Fatalf("Parse of the copy: %v", err)
		}
		if twice := copyParsed(t, again); !bytes.Equal(once, twice) {
			t.Fatal("copying the copy changed its bytes")
		}
	})
}

// copyParsed writes f's metadata and every tensor a Writer accepts.
func copyParsed(t *testing.T, f *File) []byte {
	w := NewWriter()
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		if err := w.Add(k, v); err != nil {
			t.Fatalf("Add(%q, %T): %v", k, v, err)
		}
	}
	for _, ti := range f.Tensors {
		x, err := f.Tensor(ti.Name)
		if errors.Is(err, ErrUnsupportedType) {
			continue
		}
		if err != nil {
			t.Fatalf("Tensor(%q): %v", ti.Name, err)
		}
		if uint64(len(x.Data)) != ti.Size {
			t.Fatalf("Tensor(%q) has %d bytes, info says %d", ti.Name, len(x.Data), ti.Size)
		}
		if _, err := x.Matrix(); err != nil && (len(x.Shape) == 1 || len(x.Shape) == 2) {
			t.Fatalf("Matrix of %q %v: %v", ti.Name, x.Shape, err)
		}
		w.AddTensor(x.Name, x.DType, x.Shape, x.Data) // may refuse long names and 0-D shapes
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}
