package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
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

// raw builds GGUF bytes field by field, for files the Writer cannot make.
type raw struct{ bytes.Buffer }

func (r *raw) u8(v uint8) *raw   { r.WriteByte(v); return r }
func (r *raw) u32(v uint32) *raw { r.Write(binary.LittleEndian.AppendUint32(nil, v)); return r }
func (r *raw) u64(v uint64) *raw { r.Write(binary.LittleEndian.AppendUint64(nil, v)); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }

// header starts a v3 file with the given counts.
func header(nTensors, nKV uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(3).u64(nTensors).u64(nKV)
}

// tensor appends a tensor info.
func (r *raw) tensor(name string, ne []uint64, typ uint32, offset uint64) *raw {
	r.str(name).u32(uint32(len(ne)))
	for _, n := range ne {
		r.u64(n)
	}
	return r.u32(typ).u64(offset)
}

// data pads to align and appends n bytes of data.
func (r *raw) data(align, n int) []byte {
	for r.Len()%align != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r.Bytes()
}

// values returns n float32 values derived from seed.
func values(n int, seed float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = seed * float32(math.Sin(float64(i)+float64(seed)))
	}
	return v
}

// encode returns n values derived from seed stored as dt.
func encode(dt kernels.DType, n int, seed float32) []byte {
	return kernels.EncodeRow(nil, dt, values(n, seed))
}
