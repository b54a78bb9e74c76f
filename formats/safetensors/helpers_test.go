package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
)

// sharedPath returns the path of rel inside the shared fixtures directory:
// $SWITCHYARD_SHARED, else a shared/ at the repository root or beside it.
func sharedPath(tb testing.TB, rel string) string {
	tb.Helper()
	var roots []string
	if dir := os.Getenv("SWITCHYARD_SHARED"); dir != "" {
		roots = append(roots, dir)
	}
	roots = append(roots, filepath.Join("..", "..", "shared"), filepath.Join("..", "..", "..", "shared"))
	for _, root := range roots {
		p := filepath.Join(root, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	tb.Fatalf("shared fixture %s not found under %v (set SWITCHYARD_SHARED)", rel, roots)
	return ""
}

// rawFile builds a safetensors file from a literal header and data.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// f32Tensor returns an F32 tensor holding 0, 1, 2, ... scaled by k.
func f32Tensor(name string, k float32, shape ...int) Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = k * float32(i)
	}
	return Tensor{Name: name, DType: kernels.F32, Shape: shape, Data: kernels.EncodeRow(nil, kernels.F32, v)}
}

// encTensor returns a tensor of dtype dt holding values derived from seed.
func encTensor(name string, dt kernels.DType, seed float32, shape ...int) Tensor {
	t := f32Tensor(name, seed, shape...)
	t.DType = dt
	t.Data = kernels.EncodeRow(nil, dt, kernels.AsF32(t.Data))
	return t
}
