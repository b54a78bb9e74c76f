package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/switchyard-ai/switchyard/kernels"
)

func TestStories260K(t *testing.T) {
	path := sharedPath(t, "models/stories260K/stories260K-f32.gguf")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Errorf("version %d, alignment %d, data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if got := f.Architecture(); got != "llama" {
		t.Errorf("Architecture() = %q, want llama", got)
	}
	if keys := f.Keys(); len(keys) != 21 || keys[0] != "general.architecture" {
		t.Errorf("Keys() = %v", keys)
	}
	if n, ok := f.Uint("llama.block_count"); !ok || n != 5 {
		t.Errorf("llama.block_count = %d, %v; want 5", n, ok)
	}
	if eps, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || float32(eps) != 1e-5 {
		t.Errorf("rms epsilon = %v, %v", eps, ok)
	}
	if b, ok := f.Bool("tokenizer.ggml.add_bos_token"); !ok || !b {
		t.Errorf("add_bos_token = %v, %v", b, ok)
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) != 512 || tokens[0] != "<unk>" || tokens[1] != "<s>" || tokens[3] != "<0x00>" {
		t.Errorf("tokenizer.ggml.tokens: %d strings, ok %v", len(tokens), ok)
	}
	if scores, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(scores) != 512 {
		t.Errorf("tokenizer.ggml.scores: %d values, ok %v", len(scores), ok)
	}
	if types, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(types) != 512 || types[0] != 2 {
		t.Errorf("tokenizer.ggml.token_type: %d values, ok %v", len(types), ok)
	}

	if len(f.Tensors) != 48 {
		t.Errorf("%d tensors, want 48", len(f.Tensors))
	}
	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	if emb.DType != kernels.F32 || !slices.Equal(emb.Shape, []int{512, 64}) {
		t.Fatalf("token_embd.weight is %v %v, want F32 [512 64]", emb.DType, emb.Shape)
	}
	if q, _ := f.Info("blk.0.attn_k.weight"); !slices.Equal(q.Shape, []int{32, 64}) || q.Type != TypeF32 {
		t.Errorf("blk.0.attn_k.weight info %+v, want F32 [32 64]", q)
	}
	// The same weights in llama2.c's format: 7 int32 of config, then the
	// token embedding as [vocab][dim] float32.
	bin, err := os.ReadFile(sharedPath(t, "models/stories260K/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(emb.Data, bin[28:28+512*64*4]) {
		t.Error("token_embd.weight differs from the embedding in stories260K.bin")
	}
	for _, ti := range f.Tensors {
		x, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := x.Matrix()
		if err != nil {
			t.Fatal(err)
		}
		if m.Rows*m.Cols*4 != len(x.Data) || uint64(len(x.Data)) != ti.Size {
			t.Errorf("%s: %dx%d matrix of %d bytes", ti.Name, m.Rows, m.Cols, len(x.Data))
		}
	}
}

func TestVocabFile(t *testing.T) {
	f, err := Open(sharedPath(t, "tokenizers/gguf-vocab/ggml-vocab-llama-bpe.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != 0 {
		t.Errorf("%d tensors, want 0", len(f.Tensors))
	}
	n, _ := f.Uint("llama.vocab_size")
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	merges, _ := f.Strings("tokenizer.ggml.merges")
	if n != 128256 || len(tokens) != 128256 || len(types) != 128256 || len(merges) < 100000 {
		t.Errorf("vocab_size %d, %d tokens, %d types, %d merges", n, len(tokens), len(types), len(merges))
	}
	if tokens[0] != "!" || merges[0] != "Ġ Ġ" {
		t.Errorf("tokens[0] = %q, merges[0] = %q", tokens[0], merges[0])
	}
	if got := f.Architecture(); got != "llama" {
		t.Errorf("Architecture() = %q", got)
	}
}

// copyFile rebuilds f with a Writer: every metadata pair and every tensor.
func copyFile(t testing.TB, f *File) *Writer {
	w := NewWriter()
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		if err := w.Add(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors {
		x, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(x.Name, x.DType, x.Shape, x.Data); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// TestRewrite checks that copying real files through a Writer reproduces
// them byte for byte (they were written by llama.cpp's gguf-py).
func TestRewrite(t *testing.T) {
	for _, rel := range []string{
		"models/stories260K/stories260K-f32.gguf",
		"tokenizers/gguf-vocab/ggml-vocab-llama-spm.gguf",
		"tokenizers/gguf-vocab/ggml-vocab-qwen2.gguf",
	} {
		t.Run(rel, func(t *testing.T) {
			path := sharedPath(t, rel)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var buf bytes.Buffer
			n, err := copyFile(t, f).WriteTo(&buf)
			if err != nil || n != int64(buf.Len()) {
				t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
			}
			if !bytes.Equal(buf.Bytes(), want) {
				i := 0
				for i < min(len(want), buf.Len()) && want[i] == buf.Bytes()[i] {
					i++
				}
				t.Fatalf("rewritten file differs at byte %d (lengths %d, %d)", i, buf.Len(), len(want))
			}
		})
	}
}

// allValues holds one metadata value of every Go type File.Value returns.
func allValues() map[string]any {
	return map[string]any{
		"u8": uint8(200), "i8": int8(-100), "u16": uint16(60000), "i16": int16(-30000),
		"u32": uint32(4e9), "i32": int32(-2e9), "u64": uint64(1) << 63, "i64": int64(-1) << 62,
		"f32": float32(1.5), "f64": math.Pi, "true": true, "false": false, "str": "héllo\x00",
		"a.u8": []uint8{1, 2}, "a.i8": []int8{-1}, "a.u16": []uint16{7}, "a.i16": []int16{-7, 8},
		"a.u32": []uint32{1 << 31}, "a.i32": []int32{-5, 5}, "a.u64": []uint64{1 << 40}, "a.i64": []int64{-1 << 40},
		"a.f32": []float32{0.25, float32(math.Inf(-1))}, "a.f64": []float64{-0.5}, "a.bool": []bool{true, false},
		"a.str": []string{"", "a", "ünïcode"}, "a.empty": []string{}, "a.nested": []any{[]int32{1, 2}, []string{"x"}, []any{}},
	}
}

func TestRoundTrip(t *testing.T) {
	w := NewWriter()
	vals := allValues()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range vals {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if err := w.Add(k, vals[k]); err != nil {
			t.Fatal(err)
		}
	}
	w.AddString("general.architecture", "test")
	w.AddUint32("n", 1)
	w.AddUint32("n", 2) // replaces, keeps its place
	w.AddInt32("i32b", -3)
	w.AddUint64("u64b", 3)
	w.AddFloat32("f32b", 2.5)
	w.AddBool("b", true)
	w.AddStrings("ss", []string{"a", "b"})
	w.AddInt32s("is", []int32{1, -1})
	w.AddFloat32s("fs", []float32{1, -1})

	tensors := []Tensor{
		{"w.f32", kernels.F32, []int{3, 5}, encode(kernels.F32, 15, 1)},
		{"v.f16", kernels.F16, []int{7}, encode(kernels.F16, 7, 2)},
		{"c.bf16", kernels.BF16, []int{2, 3, 4}, encode(kernels.BF16, 24, 3)},
		{"q.q8_0", kernels.Q8_0, []int{3, 64}, encode(kernels.Q8_0, 192, 4)},
		{"x.4d", kernels.F32, []int{1, 2, 1, 3}, encode(kernels.F32, 6, 5)},
		{"z.empty", kernels.F32, []int{0, 4}, nil},
	}
	for _, x := range tensors {
		if err := w.AddTensor(x.Name, x.DType, x.Shape, x.Data); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "rt.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if disk, _ := os.ReadFile(path); !bytes.Equal(disk, buf.Bytes()) {
		t.Error("WriteFile and WriteTo differ")
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	wantKeys := append(keys, "general.architecture", "n", "i32b", "u64b", "f32b", "b", "ss", "is", "fs")
	if got := f.Keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("Keys() = %v, want %v", got, wantKeys)
	}
	for k, want := range vals {
		if got, ok := f.Value(k); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Value(%q) = %#v, want %#v", k, got, want)
		}
	}
	if v, _ := f.Uint("n"); v != 2 {
		t.Errorf("n = %d, want the replaced value 2", v)
	}
	if s, _ := f.Strings("ss"); !slices.Equal(s, []string{"a", "b"}) {
		t.Errorf("ss = %v", s)
	}
	if got := f.Architecture(); got != "test" {
		t.Errorf("Architecture() = %q", got)
	}

	for i, x := range tensors {
		got, err := f.Tensor(x.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != x.DType || !slices.Equal(got.Shape, x.Shape) || !bytes.Equal(got.Data, x.Data) {
			t.Errorf("Tensor(%q) = %v %v (%d bytes), want %v %v (%d bytes)", x.Name, got.DType, got.Shape, len(got.Data), x.DType, x.Shape, len(x.Data))
		}
		if ti := f.Tensors[i]; ti.Name != x.Name || ti.Offset%32 != 0 {
			t.Errorf("Tensors[%d] = %+v", i, ti)
		}
	}
	m, err := must(f.Tensor("q.q8_0")).Matrix()
	if err != nil || m.Rows != 3 || m.Cols != 64 || m.DType != kernels.Q8_0 {
		t.Errorf("Q8_0 Matrix() = %v %dx%d, %v", m.DType, m.Rows, m.Cols, err)
	}
	// Rewriting what was read gives the same bytes.
	var again bytes.Buffer
	if _, err := copyFile(t, f).WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("rewriting the file changed its bytes")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestNeIsReversed(t *testing.T) {
	// A weight with ne = [in=4, out=2] is a 2x4 matrix: row r holds
	// values r*4 .. r*4+3.
	v := []float32{0, 1, 2, 3, 10, 11, 12, 13}
	file := header(1, 0).tensor("w", []uint64{4, 2}, TypeF32, 0).data(32, 0)
	file = append(file, kernels.F32Bytes(v)...)
	f, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := must(f.Tensor("w")).Matrix()
	if err != nil || m.Rows != 2 || m.Cols != 4 {
		t.Fatalf("Matrix() = %dx%d, %v; want 2x4", m.Rows, m.Cols, err)
	}
	row := make([]float32, 4)
	m.Row(1, row)
	if !slices.Equal(row, []float32{10, 11, 12, 13}) {
		t.Errorf("row 1 = %v", row)
	}
}

func TestAlignment(t *testing.T) {
	w := NewWriter()
	w.AddUint32("general.alignment", 64)
	w.AddTensor("a", kernels.F16, []int{3}, encode(kernels.F16, 3, 1))
	w.AddTensor("b", kernels.F32, []int{5}, encode(kernels.F32, 5, 2))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || f.Tensors[1].Offset != 64 {
		t.Errorf("alignment %d, data offset %d, offsets %d %d", f.Alignment, f.DataOffset, f.Tensors[0].Offset, f.Tensors[1].Offset)
	}

	// With alignment 1, an F32 tensor may sit at an odd address: Tensor
	// returns an aligned copy.
	w.AddUint32("general.alignment", 1)
	buf.Reset()
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for shift := range 4 {
		b := make([]byte, buf.Len()+shift)
		b = b[shift:]
		copy(b, buf.Bytes())
		f, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		x, err := f.Tensor("b")
		if err != nil {
			t.Fatal(err)
		}
		if uintptr(unsafe.Pointer(&x.Data[0]))%4 != 0 {
			t.Fatal("F32 data not aligned")
		}
		if !bytes.Equal(x.Data, encode(kernels.F32, 5, 2)) {
			t.Error("F32 data changed")
		}
		if h := must(f.Tensor("a")); uintptr(unsafe.Pointer(&h.Data[0]))%2 != 0 {
			t.Fatal("F16 data not aligned")
		}
	}

	for _, bad := range []any{uint32(0), uint32(3), uint64(32), "32"} {
		w := NewWriter()
		w.Add("general.alignment", bad)
		if _, err := w.WriteTo(&buf); !errors.Is(err, ErrInvalid) {
			t.Errorf("WriteTo with general.alignment %#v: %v, want ErrInvalid", bad, err)
		}
		if err := w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")); !errors.Is(err, ErrInvalid) {
			t.Errorf("WriteFile with general.alignment %#v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestUnsupportedType(t *testing.T) {
	file := header(3, 0).
		tensor("q5k", []uint64{256, 2}, TypeQ5_K, 0).
		tensor("q4k", []uint64{256, 2}, TypeQ4_K, 352).
		tensor("f32", []uint64{8}, TypeF32, 352+288).
		data(32, 352+288+32)
	f, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	if ti, ok := f.Info("q5k"); !ok || ti.Size != 352 || !slices.Equal(ti.Shape, []int{2, 256}) || ti.TypeName() != "Q5_K" {
		t.Errorf("Info(q5k) = %+v, %v", ti, ok)
	}
	_, err = f.Tensor("q5k")
	if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `tensor "q5k": Q5_K (13) is not supported yet`) {
		t.Errorf("Tensor(q5k) error %q", err)
	}
	if x, err := f.Tensor("q4k"); err != nil || x.DType != kernels.Q4_K || len(x.Data) != 288 {
		t.Errorf("Tensor(q4k) = %v, %d bytes, %v", x.DType, len(x.Data), err)
	}
	if _, err := f.Tensor("f32"); err != nil {
		t.Error(err)
	}
	if _, err := f.Tensor("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Tensor(nope) error %v", err)
	}
}

func TestTypeTable(t *testing.T) {
	tests := []struct {
		id          uint32
		name        string
		block, size uint64
	}{
		{TypeF32, "F32", 1, 4}, {TypeF16, "F16", 1, 2}, {TypeQ4_0, "Q4_0", 32, 18}, {TypeQ4_1, "Q4_1", 32, 20},
		{TypeQ5_0, "Q5_0", 32, 22}, {TypeQ5_1, "Q5_1", 32, 24}, {TypeQ8_0, "Q8_0", 32, 34}, {TypeQ8_1, "Q8_1", 32, 36},
		{TypeQ2_K, "Q2_K", 256, 84}, {TypeQ3_K, "Q3_K", 256, 110}, {TypeQ4_K, "Q4_K", 256, 144},
		{TypeQ5_K, "Q5_K", 256, 176}, {TypeQ6_K, "Q6_K", 256, 210}, {TypeQ8_K, "Q8_K", 256, 292},
		{TypeIQ2_XXS, "IQ2_XXS", 256, 66}, {TypeIQ4_XS, "IQ4_XS", 256, 136}, {TypeIQ1_M, "IQ1_M", 256, 56},
		{TypeBF16, "BF16", 1, 2}, {TypeTQ1_0, "TQ1_0", 256, 54}, {TypeMXFP4, "MXFP4", 32, 17},
	}
	for _, tt := range tests {
		b, s, ok := TypeSize(tt.id)
		if name := TypeName(tt.id); name != tt.name || !ok || b != tt.block || s != tt.size {
			t.Errorf("type %d: %s %d %d %v, want %s %d %d", tt.id, name, b, s, ok, tt.name, tt.block, tt.size)
		}
	}
	for _, id := range []uint32{4, 5, 31, 36, 1000} {
		if _, _, ok := TypeSize(id); ok || TypeName(id) != fmt.Sprintf("type(%d)", id) {
			t.Errorf("type %d is known as %s", id, TypeName(id))
		}
	}
}

func TestAccessors(t *testing.T) {
	w := NewWriter()
	for k, v := range map[string]any{
		"neg": int32(-1), "big": uint64(math.MaxUint64), "i8": int8(7), "f64": 0.5, "u16": uint16(9), "s": "x",
		"f64s": []float64{0.5, 2}, "u32s": []uint32{1, math.MaxUint32}, "i64s": []int64{-3, 1 << 20}, "u8s": []uint8{255},
		"i64sbig": []int64{1 << 40},
	} {
		if err := w.Add(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	w.WriteTo(&buf)
	f := must(Parse(buf.Bytes()))

	check := func(what string, got, want any, ok, wantOK bool) {
		t.Helper()
		if ok != wantOK || wantOK && !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, %v; want %v, %v", what, got, ok, want, wantOK)
		}
	}
	u, ok := f.Uint("neg")
	check("Uint(neg)", u, nil, ok, false)
	i, ok := f.Int("neg")
	check("Int(neg)", i, int64(-1), ok, true)
	u, ok = f.Uint("big")
	check("Uint(big)", u, uint64(math.MaxUint64), ok, true)
	i, ok = f.Int("big")
	check("Int(big)", i, nil, ok, false)
	u, ok = f.Uint("i8")
	check("Uint(i8)", u, uint64(7), ok, true)
	u, ok = f.Uint("u16")
	check("Uint(u16)", u, uint64(9), ok, true)
	x, ok := f.Float("f64")
	check("Float(f64)", x, 0.5, ok, true)
	x, ok = f.Float("neg")
	check("Float(neg)", x, -1.0, ok, true)
	x, ok = f.Float("big")
	check("Float(big)", x, float64(math.MaxUint64), ok, true)
	x, ok = f.Float("s")
	check("Float(s)", x, nil, ok, false)
	s, ok := f.String("s")
	check("String(s)", s, "x", ok, true)
	s, ok = f.String("neg")
	check("String(neg)", s, nil, ok, false)
	b, ok := f.Bool("s")
	check("Bool(s)", b, nil, ok, false)
	fs, ok := f.Float32s("f64s")
	check("Float32s(f64s)", fs, []float32{0.5, 2}, ok, true)
	fs, ok = f.Float32s("u32s")
	check("Float32s(u32s)", fs, nil, ok, false)
	is, ok := f.Int32s("u32s")
	check("Int32s(u32s)", is, nil, ok, false)
	is, ok = f.Int32s("i64s")
	check("Int32s(i64s)", is, []int32{-3, 1 << 20}, ok, true)
	is, ok = f.Int32s("u8s")
	check("Int32s(u8s)", is, []int32{255}, ok, true)
	is, ok = f.Int32s("i64sbig")
	check("Int32s(i64sbig)", is, nil, ok, false)
	ss, ok := f.Strings("missing")
	check("Strings(missing)", ss, nil, ok, false)
	v, ok := f.Value("missing")
	check("Value(missing)", v, nil, ok, false)
	if f.Architecture() != "" {
		t.Error("Architecture() of a file without it is not empty")
	}
}

func TestCorrupt(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrCorrupt, "not a GGUF file"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), ErrCorrupt, `starts with "GGML"`},
		{"no version", []byte("GGUF\x03"), ErrCorrupt, "file ends"},
		{"version 1", append([]byte("GGUF"), 1, 0, 0, 0), ErrVersion, "version 1 is not supported (want 2 or 3)"},
		{"big-endian", append([]byte("GGUF"), 0, 0, 0, 3), ErrVersion, "big-endian"},
		{"no counts", []byte("GGUF\x03\x00\x00\x00\x01"), ErrCorrupt, "file ends"},
		{"huge kv count", header(0, 1<<60).Bytes(), ErrCorrupt, "metadata pairs cannot fit"},
		{"huge tensor count", header(1<<60, 0).Bytes(), ErrCorrupt, "tensor infos cannot fit"},
		{"huge key", header(0, 1).u64(1 << 62).u32(0).u8(0).Bytes(), ErrCorrupt, "metadata 0: file ends"},
		{"unknown value type", header(0, 1).str("k").u32(13).u64(0).Bytes(), ErrCorrupt, `metadata 0 ("k"): unknown value type 13`},
		{"truncated value", header(0, 1).str("k").u32(uint32(typeUint64)).u32(0).Bytes(), ErrCorrupt, "file ends"},
		{"huge string", header(0, 1).str("k").u32(uint32(typeString)).u64(math.MaxUint64).Bytes(), ErrCorrupt, "file ends"},
		{"huge array", header(0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeUint8)).u64(1 << 40).Bytes(), ErrCorrupt, "cannot fit"},
		{"huge string array", header(0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeString)).u64(1 << 61).u64(0).Bytes(), ErrCorrupt, "cannot fit"},
		{"huge array of arrays", header(0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeArray)).u64(1 << 61).u64(0).u32(0).Bytes(), ErrCorrupt, "cannot fit"},
		{"string array past end", header(0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeString)).u64(1).u64(100).Bytes(), ErrCorrupt, "file ends"},
		{"array of bad type", header(0, 1).str("k").u32(uint32(typeArray)).u32(99).u64(0).Bytes(), ErrCorrupt, "array of unknown value type 99"},
		{"deep arrays", deepArrays(9), ErrCorrupt, "nested more than 8 deep"},
		{"bool 2", header(0, 1).str("k").u32(uint32(typeBool)).u8(2).Bytes(), ErrCorrupt, "bool value 2"},
		{"duplicate key", header(0, 2).str("k").u32(uint32(typeUint8)).u8(1).str("k").u32(uint32(typeUint8)).u8(2).Bytes(), ErrCorrupt, `metadata 1 ("k"): key appears twice`},
		{"alignment type", header(0, 1).str("general.alignment").u32(uint32(typeUint64)).u64(32).Bytes(), ErrCorrupt, "power of two of type UINT32"},
		{"alignment 0", header(0, 1).str("general.alignment").u32(uint32(typeUint32)).u32(0).Bytes(), ErrCorrupt, "general.alignment = 0"},
		{"alignment 48", header(0, 1).str("general.alignment").u32(uint32(typeUint32)).u32(48).Bytes(), ErrCorrupt, "general.alignment = 48"},
		{"5 dims", header(1, 0).tensor("t", []uint64{1, 1, 1, 1, 1}, TypeF32, 0).data(32, 4), ErrCorrupt, `tensor info 0 ("t"): 5 dimensions`},
		{"huge dims", header(1, 0).str("t").u32(math.MaxUint32).data(1, 32), ErrCorrupt, "4294967295 dimensions"},
		{"unknown type", header(1, 0).tensor("t", []uint64{1}, 4, 0).data(32, 4), ErrCorrupt, `tensor "t": unknown ggml type 4`},
		{"partial block", header(1, 0).tensor("t", []uint64{16, 2}, TypeQ8_0, 0).data(32, 34), ErrCorrupt, "not a multiple of the Q8_0 block size 32"},
		{"ne overflow", header(1, 0).tensor("t", []uint64{1 << 32, 1 << 32}, TypeF32, 0).data(32, 4), ErrCorrupt, "more elements than fit"},
		{"ne too big", header(1, 0).tensor("t", []uint64{1 << 63}, TypeI8, 0).data(32, 4), ErrCorrupt, "more elements than fit"},
		{"bytes overflow", header(1, 0).tensor("t", []uint64{1 << 62}, TypeF64, 0).data(32, 4), ErrCorrupt, "more bytes than fit"},
		{"misaligned", header(1, 0).tensor("t", []uint64{1}, TypeF32, 4).data(32, 8), ErrCorrupt, "offset 4 is not a multiple of the alignment 32"},
		{"past end", header(1, 0).tensor("t", []uint64{16}, TypeF32, 0).data(32, 60), ErrCorrupt, "64 bytes at offset 0 run past the 60-byte data section"},
		{"huge offset", header(1, 0).tensor("t", []uint64{1}, TypeF32, math.MaxUint64-31).data(32, 4), ErrCorrupt, "run past"},
		{"overlap", header(2, 0).tensor("a", []uint64{16}, TypeF32, 0).tensor("b", []uint64{1}, TypeF32, 32).data(32, 64), ErrCorrupt, `tensor "b": data [32, 36) overlaps that of "a" [0, 64)`},
		{"same offset", header(2, 0).tensor("a", []uint64{1}, TypeF32, 0).tensor("b", []uint64{1}, TypeF32, 0).data(32, 4), ErrCorrupt, "overlaps"},
		{"duplicate tensor", header(2, 0).tensor("a", []uint64{1}, TypeF32, 0).tensor("a", []uint64{1}, TypeF32, 32).data(32, 36), ErrCorrupt, `tensor "a": name appears twice`},
		{"no data section", header(1, 0).tensor("t", []uint64{0}, TypeF32, 0).Bytes(), ErrCorrupt, "before its data section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded: %d keys, %d tensors", len(f.Keys()), len(f.Tensors))
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}

	// Odd but valid files.
	valid := map[string][]byte{
		"version 2":               append(append([]byte("GGUF"), le.AppendUint32(nil, 2)...), make([]byte, 16)...),
		"empty tensors overlap":   header(3, 0).tensor("a", []uint64{0}, TypeF32, 0).tensor("b", []uint64{0, 3}, TypeF32, 0).tensor("c", []uint64{1}, TypeF32, 0).data(32, 4),
		"no tensors, no padding":  header(0, 1).str("k").u32(uint32(typeString)).str("v").Bytes(),
		"gap between tensors":     header(2, 0).tensor("a", []uint64{1}, TypeF32, 64).tensor("b", []uint64{1}, TypeF32, 0).data(32, 68),
		"zero-dimension tensor":   header(1, 0).tensor("s", nil, TypeF32, 0).data(32, 4),
		"alignment 1 fixed-point": header(1, 1).str("general.alignment").u32(uint32(typeUint32)).u32(1).tensor("t", []uint64{1}, TypeF32, 0).data(1, 4),
	}
	for name, file := range valid {
		if _, err := Parse(file); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// deepArrays returns a file with one value of n nested arrays.
func deepArrays(n int) []byte {
	r := header(0, 1).str("k").u32(uint32(typeArray))
	for range n - 1 {
		r.u32(uint32(typeArray)).u64(1)
	}
	return r.u32(uint32(typeUint8)).u64(0).Bytes()
}

// TestTruncated checks that every strict prefix of a valid file is refused.
func TestTruncated(t *testing.T) {
	w := NewWriter()
	w.AddString("general.architecture", "llama")
	w.AddStrings("tokens", []string{"a", "bc"})
	w.Add("nested", []any{[]uint16{1}})
	w.AddTensor("q", kernels.Q8_0, []int{1, 32}, encode(kernels.Q8_0, 32, 1))
	w.AddTensor("w", kernels.F32, []int{2, 4}, encode(kernels.F32, 8, 1)) // 32 bytes: no padding after it
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for n := range len(full) {
		if _, err := Parse(full[:n]); err == nil {
			t.Fatalf("Parse accepted the first %d of %d bytes", n, len(full))
		}
	}
	if _, err := Parse(full); err != nil {
		t.Fatal(err)
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("dup", kernels.F32, []int{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dt    kernels.DType
		shape []int
		data  []byte
		want  error
	}{
		{"", kernels.F32, []int{1}, make([]byte, 4), ErrInvalid},
		{strings.Repeat("x", 64), kernels.F32, []int{1}, make([]byte, 4), ErrInvalid},
		{"dup", kernels.F32, []int{1}, make([]byte, 4), ErrInvalid},
		{"scalar", kernels.F32, nil, make([]byte, 4), ErrShape},
		{"5d", kernels.F32, []int{1, 1, 1, 1, 1}, make([]byte, 4), ErrShape},
		{"negative", kernels.F32, []int{-1}, nil, ErrShape},
		{"q8 cols", kernels.Q8_0, []int{1, 33}, make([]byte, 34), ErrShape},
		{"short", kernels.F16, []int{2, 2}, make([]byte, 6), ErrShape},
		{"huge", kernels.F32, []int{1 << 62, 1 << 62}, nil, ErrShape},
		{"dtype", kernels.DType(99), []int{1}, make([]byte, 4), ErrUnsupportedType},
	}
	for _, tt := range tests {
		if err := w.AddTensor(tt.name, tt.dt, tt.shape, tt.data); !errors.Is(err, tt.want) {
			t.Errorf("AddTensor(%q, %v, %v): %v, want %v", tt.name, tt.dt, tt.shape, err, tt.want)
		}
	}
	if long := strings.Repeat("x", 63); w.AddTensor(long, kernels.F32, []int{1}, make([]byte, 4)) != nil {
		t.Error("a 63-byte name was refused")
	}
	for _, v := range []any{1, uint(1), []int{1}, []any{1}, []any{[]any{[]int{}}}, nil, map[string]string{}, deepValue(9)} {
		if err := w.Add("k", v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%#v): %v, want ErrInvalid", v, err)
		}
	}
	if err := w.Add("k", deepValue(8)); err != nil {
		t.Errorf("Add of arrays nested 8 deep: %v", err)
	}
	if _, err := w.WriteTo(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteTo a failing writer: %v", err)
	}
	if err := w.WriteFile(filepath.Join(t.TempDir(), "missing", "x.gguf")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// deepValue returns arrays nested n deep: n-1 []any around a []uint8.
func deepValue(n int) any {
	var v any = []uint8{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.gguf")
	w := NewWriter()
	w.AddString("general.architecture", "llama")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	w.AddString("general.architecture", "qwen2")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Architecture() != "qwen2" {
		t.Errorf("Architecture() = %q after overwrite", f.Architecture())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestMatrixErrors(t *testing.T) {
	for _, x := range []Tensor{
		{"s", kernels.F32, nil, make([]byte, 4)},
		{"c", kernels.F32, []int{1, 1, 1}, make([]byte, 4)},
		{"short", kernels.F32, []int{2, 2}, make([]byte, 12)},
		{"q", kernels.Q8_0, []int{1, 16}, make([]byte, 17)},
	} {
		if _, err := x.Matrix(); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), x.Name) {
			t.Errorf("%s: Matrix error %v, want ErrShape naming the tensor", x.Name, err)
		}
	}
}

func TestOpenClose(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing): %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Open(empty): %v, want ErrCorrupt naming the file", err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("Open(directory) succeeded")
	}

	f, err := Open(sharedPath(t, "models/stories260K/stories260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	// Release lets a tensor's pages go, not its data: they read back the
	// same. A slice outside the file is left alone.
	tensor, err := f.Tensor("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(tensor.Data)
	f.Release(tensor.Data)
	f.Release(want)
	if !bytes.Equal(tensor.Data, want) {
		t.Error("a released tensor reads differently")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Tensor("token_embd.weight"); !errors.Is(err, ErrClosed) {
		t.Errorf("Tensor after Close: %v", err)
	}
	if n, ok := f.Uint("llama.block_count"); !ok || n != 5 {
		t.Error("metadata lost after Close")
	}
	f.Release(want) // after Close: nothing to release, no panic
}
