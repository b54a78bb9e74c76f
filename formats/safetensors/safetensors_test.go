package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/switchyard-ai/switchyard/kernels"
)

func TestRoundTrip(t *testing.T) {
	tensors := []Tensor{
		encTensor("f16.matrix", kernels.F16, 0.25, 3, 5),
		encTensor("bf16.matrix", kernels.BF16, -0.5, 4, 2),
		f32Tensor("f32.matrix", 1.5, 2, 3),
		f32Tensor("f32.vector", 2, 7),
		f32Tensor("f32.scalar", 3),
		f32Tensor("f32.empty", 1, 0, 4),
		encTensor("f16.cube", kernels.F16, 1, 2, 2, 2),
		encTensor("bf16.odd", kernels.BF16, 1, 3), // 6 bytes: later tensors stay aligned anyway
	}
	meta := map[string]string{"format": "pt", "note": "quote \" backslash \\ newline \n tab \t ctl \x01 é ✓"}

	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, f, tensors, meta)

	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, buf.Bytes()) {
		t.Error("WriteFile and Write produced different bytes")
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	checkSame(t, g, tensors, meta)
}

// checkSame checks that f holds exactly tensors and meta.
func checkSame(t *testing.T, f *File, tensors []Tensor, meta map[string]string) {
	t.Helper()
	var want []string
	for _, x := range tensors {
		want = append(want, x.Name)
	}
	slices.Sort(want)
	if got := f.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, x := range tensors {
		if !f.Has(x.Name) {
			t.Errorf("Has(%q) = false", x.Name)
		}
		got, err := f.Tensor(x.Name)
		if err != nil {
			t.Errorf("Tensor(%q): %v", x.Name, err)
			continue
		}
		if got.Name != x.Name || got.DType != x.DType || !slices.Equal(got.Shape, x.Shape) || !bytes.Equal(got.Data, x.Data) {
			t.Errorf("Tensor(%q) = %v %v %v (%d bytes), want %v %v (%d bytes)",
				x.Name, got.Name, got.DType, got.Shape, len(got.Data), x.DType, x.Shape, len(x.Data))
		}
		if len(got.Data) > 0 && uintptr(unsafe.Pointer(&got.Data[0]))%uintptr(got.DType.RowBytes(1)) != 0 {
			t.Errorf("Tensor(%q).Data is not aligned to its element size", x.Name)
		}
	}
	if got := f.Metadata(); !reflect.DeepEqual(got, meta) {
		t.Errorf("Metadata() = %v, want %v", got, meta)
	}
}

// TestWriteGolden checks Write against header bytes of the Python library
// (the same inputs as its Rust serialization tests).
func TestWriteGolden(t *testing.T) {
	six := kernels.EncodeRow(nil, kernels.F32, []float32{0, 1, 2, 3, 4, 5})
	tests := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		header  string
	}{
		{"empty", nil, nil, `{}      `},
		{"metadata only", nil, map[string]string{"framework": "pt"}, `{"__metadata__":{"framework":"pt"}}     `},
		{"one tensor", []Tensor{{Name: "attn.0", DType: kernels.F32, Shape: []int{1, 2, 3}, Data: six}}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`},
		{"padded", []Tensor{{Name: "attn0", DType: kernels.F32, Shape: []int{1, 1, 2, 3}, Data: six}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `},
		{"dtype order then name", []Tensor{
			{Name: "a", DType: kernels.F16, Shape: []int{1}, Data: []byte{1, 2}},
			{Name: "c", DType: kernels.F32, Shape: []int{1}, Data: []byte{3, 4, 5, 6}},
			{Name: "b", DType: kernels.BF16, Shape: []int{1}, Data: []byte{7, 8}},
			{Name: "B", DType: kernels.F32, Shape: []int{}, Data: []byte{9, 10, 11, 12}},
		}, map[string]string{"z": "1", "a": "2"},
			`{"__metadata__":{"a":"2","z":"1"},"B":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
				`"c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},` +
				`"a":{"dtype":"F16","shape":[1],"data_offsets":[10,12]}}       `},
		{"escapes", nil, map[string]string{"k": "\"\\/\b\f\n\r\t\x00\x1f\x7f<>&é\u2028"},
			`{"__metadata__":{"k":"\"\\/\b\f\n\r\t\u0000\u001f` + "\x7f<>&é\u2028" + `"}}   `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tt.tensors, tt.meta); err != nil {
				t.Fatal(err)
			}
			var data []byte
			if tt.name == "dtype order then name" {
				data = []byte{9, 10, 11, 12, 3, 4, 5, 6, 7, 8, 1, 2}
			} else {
				for _, x := range tt.tensors {
					data = append(data, x.Data...)
				}
			}
			if want := rawFile(tt.header, data); !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("Write produced\n%q\nwant\n%q", buf.Bytes(), want)
			}
			if _, err := Parse(buf.Bytes()); err != nil {
				t.Errorf("Parse of the written file: %v", err)
			}
		})
	}
}

// TestPythonLayout checks that rewriting files saved by the Python library
// reproduces them byte for byte.
func TestPythonLayout(t *testing.T) {
	for _, rel := range []string{
		"fixtures/llama_tiny/model/model.safetensors",
		"fixtures/llama3_rope/model/model.safetensors",
		"fixtures/llama3_rope/adapters/r4_all_rslora/adapter_model.safetensors",
		"fixtures/llama3_rope/adapters/r8_qv/adapter_model.safetensors",
		"fixtures/llama3_rope/adapters/r16_qkvo_patterns/adapter_model.safetensors",
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
			var tensors []Tensor
			for _, name := range f.Names() {
				x, err := f.Tensor(name)
				if err != nil {
					t.Fatal(err)
				}
				tensors = append(tensors, x)
			}
			var buf bytes.Buffer
			if err := Write(&buf, tensors, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				n := min(len(want), buf.Len())
				i := 0
				for i < n && want[i] == buf.Bytes()[i] {
					i++
				}
				t.Fatalf("rewritten file differs from the original at byte %d (lengths %d, %d)", i, buf.Len(), len(want))
			}
		})
	}
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		rel    string
		count  int
		name   string
		dtype  kernels.DType
		shape  []int
		absMax float32 // a bound on every value of the tensor
	}{
		{"fixtures/llama_tiny/model/model.safetensors", 21, "model.layers.1.mlp.down_proj.weight", kernels.F32, []int{64, 160}, 2},
		{"fixtures/llama_tiny/model/model.safetensors", 21, "model.norm.weight", kernels.F32, []int{64}, 2},
		{"fixtures/llama3_rope/model", 20, "model.embed_tokens.weight", kernels.BF16, []int{256, 64}, 1},
		{"fixtures/llama3_rope/adapters/r4_all_rslora/adapter_model.safetensors", 28,
			"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", kernels.F16, []int{4, 160}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.rel+"/"+tt.name, func(t *testing.T) {
			f, err := Open(sharedPath(t, tt.rel))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if n := len(f.Names()); n != tt.count {
				t.Errorf("%d tensors, want %d", n, tt.count)
			}
			if got := f.Metadata()["format"]; got != "pt" {
				t.Errorf(`Metadata()["format"] = %q, want "pt"`, got)
			}
			x, err := f.Tensor(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if x.DType != tt.dtype || !slices.Equal(x.Shape, tt.shape) {
				t.Fatalf("got %v %v, want %v %v", x.DType, x.Shape, tt.dtype, tt.shape)
			}
			m, err := x.Matrix()
			if err != nil {
				t.Fatal(err)
			}
			row := make([]float32, m.Cols)
			nonzero := false
			for r := range m.Rows {
				m.Row(r, row)
				for _, v := range row {
					if !(v >= -tt.absMax && v <= tt.absMax) {
						t.Fatalf("row %d holds %v, outside ±%v", r, v, tt.absMax)
					}
					nonzero = nonzero || v != 0
				}
			}
			if !nonzero {
				t.Error("tensor is all zeros")
			}
			// Release lets the tensor's pages go, not its data; a slice
			// outside the file is left alone.
			want := slices.Clone(x.Data)
			f.Release(x.Data)
			f.Release(want)
			if !bytes.Equal(x.Data, want) {
				t.Error("a released tensor reads differently")
			}
		})
	}
}

func TestUnsupportedDType(t *testing.T) {
	hdr := `{"pos":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]},` +
		`"fp8":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[24,27]},"odd":{"dtype":"MYSTERY","shape":[5],"data_offsets":[27,28]}} `
	f, err := Parse(rawFile(hdr, make([]byte, 28)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fp8", "odd", "pos", "w"}; !slices.Equal(f.Names(), want) {
		t.Errorf("Names() = %v, want %v", f.Names(), want)
	}
	for _, name := range []string{"pos", "fp8", "odd"} {
		if !f.Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
		_, err := f.Tensor(name)
		if !errors.Is(err, ErrUnsupportedDType) || !strings.Contains(err.Error(), name) {
			t.Errorf("Tensor(%q) error %v, want ErrUnsupportedDType naming the tensor", name, err)
		}
	}
	if _, err := f.Tensor("pos"); err == nil || !strings.Contains(err.Error(), "dtype I64 is not supported") {
		t.Errorf("Tensor(pos) error %q does not name the dtype", err)
	}
	if _, err := f.Tensor("w"); err != nil {
		t.Errorf("Tensor(w): %v", err)
	}
	_, err = f.Tensor("absent")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"absent"`) {
		t.Errorf("Tensor(absent) error %v, want ErrNotFound naming the tensor", err)
	}
	if f.Has("absent") {
		t.Error(`Has("absent") = true`)
	}
}

// TestMisaligned checks that a tensor at an offset that is not a multiple
// of its element size comes back as an aligned copy with the right bytes.
func TestMisaligned(t *testing.T) {
	data := []byte{0xee, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}
	hdr := `{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}       `
	f, err := Parse(rawFile(hdr, data))
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.Tensor("w")
	if err != nil {
		t.Fatal(err)
	}
	if uintptr(unsafe.Pointer(&w.Data[0]))%4 != 0 {
		t.Fatal("Data is not aligned")
	}
	if got := kernels.AsF32(w.Data); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("values %v, want [1 2]", got)
	}
}

func TestCorrupt(t *testing.T) {
	long := make([]byte, 8)
	long[0] = 0xff
	long[7] = 0x7f
	tests := []struct {
		name string
		file []byte
		want string // a part of the message
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 0, 0}, "too short"},
		{"huge header", long, "exceeds the 100000000-byte limit"},
		{"header past end", rawFile("{}", nil)[:9], "runs past the end"},
		{"invalid UTF-8", rawFile("{\"\xff\":1}", nil), "UTF-8"},
		{"array", rawFile("[]", nil), "not a JSON object"},
		{"null", rawFile("null", nil), "not a JSON object"},
		{"blank", rawFile("   ", nil), "not a JSON object"},
		{"bad JSON", rawFile(`{"a":`, nil), "not valid JSON"},
		{"trailing garbage", rawFile(`{} x`, nil), "not valid JSON"},
		{"metadata not strings", rawFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"entry not object", rawFile(`{"w":5}`, nil), "bad header entry"},
		{"no dtype", rawFile(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "no dtype"},
		{"no shape", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "no shape"},
		{"no offsets", rawFile(`{"w":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "not a [begin, end] pair"},
		{"three offsets", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 8)), "pair"},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "bad header entry"},
		{"float dim", rawFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "bad header entry"},
		{"huge dim", rawFile(`{"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}`, make([]byte, 4)), "fit in an int"},
		{"shape overflow", rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), "fit in an int"},
		{"bytes overflow", rawFile(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, make([]byte, 4)), "more than 2^61 bytes"},
		{"begin after end", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), "end before they begin"},
		{"end past data", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "run past the 4-byte data area"},
		{"huge end", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}`, make([]byte, 4)), "run past"},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 8)), "hold 4 bytes, but F32 shape [2] needs 8 bytes"},
		{"sub-byte", rawFile(`{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)), "not a whole number of bytes"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlap"},
		{"same range", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded with tensors %v", f.Names())
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}

	// Files that look odd but are valid.
	for _, file := range [][]byte{
		rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		rawFile(` {"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}} `, make([]byte, 12)), // gap and trailing bytes
	} {
		if _, err := Parse(file); err != nil {
			t.Errorf("Parse(%q): %v", file, err)
		}
	}
}

// TestTruncated checks that every strict prefix of a valid file is refused.
func TestTruncated(t *testing.T) {
	var buf bytes.Buffer
	tensors := []Tensor{f32Tensor("a", 1, 2, 3), encTensor("b", kernels.F16, 1, 5)}
	if err := Write(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
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

func TestWriteErrors(t *testing.T) {
	good := f32Tensor("w", 1, 2)
	tests := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    error
	}{
		{"duplicate", []Tensor{good, good}, nil, ErrInvalid},
		{"empty name", []Tensor{{DType: kernels.F32, Shape: []int{0}}}, nil, ErrInvalid},
		{"reserved name", []Tensor{{Name: "__metadata__", DType: kernels.F32, Shape: []int{0}}}, nil, ErrInvalid},
		{"bad UTF-8 name", []Tensor{{Name: "\xff", DType: kernels.F32, Shape: []int{0}}}, nil, ErrInvalid},
		{"bad UTF-8 metadata", nil, map[string]string{"k": "\xff"}, ErrInvalid},
		{"Q8_0", []Tensor{{Name: "q", DType: kernels.Q8_0, Shape: []int{32}, Data: make([]byte, 34)}}, nil, ErrUnsupportedDType},
		{"short data", []Tensor{{Name: "w", DType: kernels.F32, Shape: []int{2}, Data: make([]byte, 4)}}, nil, ErrShape},
		{"negative dim", []Tensor{{Name: "w", DType: kernels.F32, Shape: []int{-1}}}, nil, ErrShape},
		{"huge shape", []Tensor{{Name: "w", DType: kernels.F32, Shape: []int{1 << 62, 4}}}, nil, ErrShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.tensors, tt.meta)
			if !errors.Is(err, tt.want) {
				t.Errorf("Write error %v, want %v", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adapter.safetensors")
	first := []Tensor{f32Tensor("a", 1, 4)}
	if err := WriteFile(path, first, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)

	// A failed write leaves the old file and no temporary file behind.
	bad := []Tensor{{Name: "a", DType: kernels.F32, Shape: []int{3}}}
	if err := WriteFile(path, bad, nil); err == nil {
		t.Fatal("WriteFile accepted a tensor without data")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Error("failed WriteFile changed the file")
	}
	// A successful one replaces it.
	if err := WriteFile(path, []Tensor{f32Tensor("b", 2, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Names(), []string{"b"}) {
		t.Errorf("Names() = %v after overwrite", f.Names())
	}
	f.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.safetensors"), first, nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestMatrix(t *testing.T) {
	tests := []struct {
		t          Tensor
		rows, cols int
		ok         bool
	}{
		{f32Tensor("m", 1, 3, 4), 3, 4, true},
		{encTensor("v", kernels.BF16, 1, 5), 1, 5, true},
		{f32Tensor("s", 1), 0, 0, false},
		{f32Tensor("c", 1, 2, 2, 2), 0, 0, false},
		{Tensor{Name: "short", DType: kernels.F32, Shape: []int{2, 2}, Data: make([]byte, 12)}, 0, 0, false},
	}
	for _, tt := range tests {
		m, err := tt.t.Matrix()
		if !tt.ok {
			if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), tt.t.Name) {
				t.Errorf("%s: Matrix error %v, want ErrShape naming the tensor", tt.t.Name, err)
			}
			continue
		}
		if err != nil || m.Rows != tt.rows || m.Cols != tt.cols || m.DType != tt.t.DType || &m.Data[0] != &tt.t.Data[0] {
			t.Errorf("%s: Matrix() = %v %dx%d, %v; want %dx%d sharing Data", tt.t.Name, m.DType, m.Rows, m.Cols, err, tt.rows, tt.cols)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), indexFileName) {
		t.Errorf("Open(empty dir) error %v, want fs.ErrNotExist naming the files looked for", err)
	}
	if _, err := Open(filepath.Join(dir, "nope.safetensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) error %v, want fs.ErrNotExist", err)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Open(empty file) error %v, want ErrCorrupt naming the file", err)
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteFile(path, []Tensor{f32Tensor("w", 1, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Tensor("w"); !errors.Is(err, ErrClosed) {
		t.Errorf("Tensor after Close: %v, want ErrClosed", err)
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	shard1 := []Tensor{f32Tensor("model.embed_tokens.weight", 1, 4, 2), encTensor("model.norm.weight", kernels.BF16, 2, 2)}
	shard2 := []Tensor{encTensor("lm_head.weight", kernels.F16, 3, 4, 2), f32Tensor("extra.not.listed", 1, 1)}
	names := [2]string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	for i, ts := range [][]Tensor{shard1, shard2} {
		if err := WriteFile(filepath.Join(dir, names[i]), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	index := map[string]any{
		"metadata": map[string]any{"total_size": 44, "note": "two shards"},
		"weight_map": map[string]string{
			"model.embed_tokens.weight": names[0],
			"model.norm.weight":         names[0],
			"lm_head.weight":            names[1],
		},
	}
	writeJSON(t, filepath.Join(dir, indexFileName), index)

	for _, path := range []string{dir, filepath.Join(dir, indexFileName)} {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, f, append(slices.Clone(shard1), shard2[0]), map[string]string{"total_size": "44", "note": "two shards", "format": "pt"})
		if f.Has("extra.not.listed") {
			t.Error("a tensor missing from the weight_map is visible")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Tensor("lm_head.weight"); !errors.Is(err, ErrClosed) {
			t.Errorf("Tensor after Close: %v", err)
		}
	}

	bad := []struct {
		name      string
		weightMap map[string]string
		want      error
		msg       string
	}{
		{"parent dir", map[string]string{"w": "../" + names[0]}, ErrCorrupt, "not a plain file name"},
		{"dot dot", map[string]string{"w": ".."}, ErrCorrupt, "not a plain file name"},
		{"dot", map[string]string{"w": "."}, ErrCorrupt, "not a plain file name"},
		{"subdir", map[string]string{"w": "sub/x.safetensors"}, ErrCorrupt, "not a plain file name"},
		{"backslash", map[string]string{"w": `sub\x.safetensors`}, ErrCorrupt, "not a plain file name"},
		{"absolute", map[string]string{"w": filepath.Join(dir, names[0])}, ErrCorrupt, "not a plain file name"},
		{"empty", map[string]string{"w": ""}, ErrCorrupt, "not a plain file name"},
		{"absent tensor", map[string]string{"missing.weight": names[0]}, ErrCorrupt, "absent from shard"},
		{"missing shard", map[string]string{"w": "model-00003-of-00003.safetensors"}, fs.ErrNotExist, "model-00003"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.index.json")
			writeJSON(t, path, map[string]any{"weight_map": tt.weightMap})
			_, err := Open(path)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Open error %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	for _, doc := range []string{``, `[]`, `null`, `{"weight_map":`, `{"metadata":{}}`, `{"weight_map":{"w":5}}`} {
		path := filepath.Join(dir, "bad.index.json")
		os.WriteFile(path, []byte(doc), 0o644)
		if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open of index %q: error %v, want ErrCorrupt", doc, err)
		}
	}
	// A corrupt shard is reported by its own name.
	os.WriteFile(filepath.Join(dir, "broken.safetensors"), []byte("garbage!garbage!"), 0o644)
	writeJSON(t, filepath.Join(dir, "bad.index.json"), map[string]any{"weight_map": map[string]string{"w": "broken.safetensors"}})
	if _, err := Open(filepath.Join(dir, "bad.index.json")); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "broken.safetensors") {
		t.Errorf("Open with a corrupt shard: %v", err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
