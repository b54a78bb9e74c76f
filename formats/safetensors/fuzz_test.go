package safetensors

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// can be read, and written back into a file that parses to the same
// tensors and rewrites to the same bytes.
func FuzzParse(f *testing.F) {
	seeds := [][]Tensor{
		nil,
		{f32Tensor("a", 1, 2, 3)},
		{f32Tensor("w", 1, 2), encTensor("h", kernels.F16, 1, 3), encTensor("b", kernels.BF16, 1, 1, 2), f32Tensor("s", 1)},
	}
	for _, ts := range seeds {
		var buf bytes.Buffer
		if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(rawFile(`{"pos":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]}}`, make([]byte, 24)))
	f.Add(rawFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`, make([]byte, 5)))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var tensors []Tensor
		for _, name := range file.Names() {
			x, err := file.Tensor(name)
			if errors.Is(err, ErrUnsupportedDType) {
				continue
			}
			if err != nil {
				t.Fatalf("Tensor(%q): %v", name, err)
			}
			if _, err := x.Matrix(); err != nil && (len(x.Shape) == 1 || len(x.Shape) == 2) {
				t.Fatalf("Matrix of %q %v: %v", name, x.Shape, err)
			}
			tensors = append(tensors, x)
		}
		meta := file.Metadata()
		var once bytes.Buffer
		if err := Write(&once, tensors, meta); err != nil {
			return // e.g. a name that is not valid UTF-8 after JSON decoding
		}
		again, err := Parse(once.Bytes())
		if err != nil {
			t.Fatalf("Parse of rewritten file: %v", err)
		}
		var tensors2 []Tensor
		for _, name := range again.Names() {
			x, err := again.Tensor(name)
			if err != nil {
				t.Fatalf("rewritten Tensor(%q): %v", name, err)
			}
			tensors2 = append(tensors2, x)
		}
		if len(tensors2) != len(tensors) {
			t.Fatalf("rewritten file has %d tensors, want %d", len(tensors2), len(tensors))
		}
		for i, x := range tensors {
			y := tensors2[i]
			if x.Name != y.Name || x.DType != y.DType || !bytes.Equal(x.Data, y.Data) || len(x.Shape) != len(y.Shape) {
				t.Fatalf("tensor %q changed in the rewrite", x.Name)
			}
		}
		var twice bytes.Buffer
		if err := Write(&twice, tensors2, again.Metadata()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatal("writing the rewritten file again changed its bytes")
		}
	})
}

// FuzzIndex checks that parseIndex never panics and never accepts a shard
// name that leaves the index's directory.
func FuzzIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../x"}}`))
	f.Add([]byte(`{"metadata":{"x":[1,{"y":null}]},"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := parseIndex("index.json", data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		for name, shard := range ix.weightMap {
			if shard == "" || shard == "." || shard == ".." || bytes.ContainsAny([]byte(shard), `/\`) {
				t.Fatalf("accepted shard %q for %q", shard, name)
			}
		}
	})
}
