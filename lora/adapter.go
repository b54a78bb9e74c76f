package lora

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// Pair is one projection's LoRA weights laid out for the kernels. The
// projection's output gains Scale · (x·Aᵀ)·BT for every token x.
type Pair struct {
	A     kernels.Matrix // [Rank, in]: lora_A.weight as stored (F32, F16 or BF16; Q8_0 from GGUF)
	BT    kernels.Matrix // [Rank, out]: lora_B.weight transposed at load (F32, F16 or BF16)
	Rank  int
	Scale float32 // PEFT's scaling for this projection (llama.cpp's alpha/rank for GGUF)
}

// Adapter is a LoRA adapter ready to serve: one optional Pair per decoder
// layer and projection. It is read-only once loaded and safe to share
// between batches and goroutines.
type Adapter struct {
	Name    string                    // directory or file name without extension
	Path    string                    // where it was loaded from
	Layers  [][model.NumModules]*Pair // [layer][module]; nil where the adapter does not touch a projection
	MaxRank int                       // the largest Rank of any Pair
	Bytes   int64                     // payload bytes held (A and BT of every Pair)
	Config  *peft.Config              // adapter_config.json; nil for GGUF
}

// Pair returns the weights for projection m of the given layer, or nil.
func (a *Adapter) Pair(layer int, m model.Module) *Pair {
	if layer < 0 || layer >= len(a.Layers) || m >= model.NumModules {
		return nil
	}
	return a.Layers[layer][m]
}

// Targets returns the projections that carry LoRA weights in at least one
// layer, in model.Module order.
func (a *Adapter) Targets() []model.Module {
	var seen [model.NumModules]bool
	for _, l := range a.Layers {
		for m, p := range l {
			if p != nil {
				seen[m] = true
			}
		}
	}
	var ms []model.Module
	for m, ok := range seen {
		if ok {
			ms = append(ms, model.Module(m))
		}
	}
	return ms
}

// Validate checks that the adapter fits the base model described by cfg:
// as many layers, and every Pair of the right shape, dtype and size.
// Loaded adapters have passed it already; a registry can call it again
// before pairing an adapter with another base model.
func (a *Adapter) Validate(cfg *model.Config) error {
	if len(a.Layers) != cfg.Layers {
		return &Error{Path: a.Path, Detail: fmt.Sprintf("adapter has %d layers, the base model %d", len(a.Layers), cfg.Layers), Err: ErrMismatch}
	}
	for i, l := range a.Layers {
		for m, p := range l {
			if p == nil {
				continue
			}
			mod := model.Module(m)
			name := moduleName(i, mod)
			switch {
			case p.Rank <= 0 || p.A.Rows != p.Rank || p.BT.Rows != p.Rank:
				return &Error{Path: a.Path, Tensor: name, Detail: fmt.Sprintf("rank %d with lora_A of %d rows and lora_B of %d columns", p.Rank, p.A.Rows, p.BT.Rows), Err: ErrFormat}
			case p.A.Cols != cfg.InDim(mod):
				return &Error{Path: a.Path, Tensor: name, Err: &ShapeError{Got: []int{p.A.Rows, p.A.Cols}, Want: []int{p.Rank, cfg.InDim(mod)}, Why: "lora_A is [r, in_features]"}}
			case p.BT.Cols != cfg.OutDim(mod):
				return &Error{Path: a.Path, Tensor: name, Err: &ShapeError{Got: []int{p.BT.Cols, p.BT.Rows}, Want: []int{cfg.OutDim(mod), p.Rank}, Why: "lora_B is [out_features, r]"}}
			case p.BT.DType.BlockSize() > 1:
				return &Error{Path: a.Path, Tensor: name, Detail: "lora_B stored as " + p.BT.DType.String() + " is", Err: ErrUnsupported}
			case math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0):
				return &Error{Path: a.Path, Tensor: name, Detail: fmt.Sprintf("scale %v is not finite", p.Scale), Err: ErrFormat}
			}
			if err := p.A.Validate(); err != nil {
				return &Error{Path: a.Path, Tensor: name + " lora_A", Detail: err.Error(), Err: ErrFormat}
			}
			if err := p.BT.Validate(); err != nil {
				return &Error{Path: a.Path, Tensor: name + " lora_B", Detail: err.Error(), Err: ErrFormat}
			}
		}
	}
	return nil
}

// moduleName returns PEFT's name for projection m of a layer, e.g.
// "model.layers.1.self_attn.v_proj".
func moduleName(layer int, m model.Module) string {
	return fmt.Sprintf("model.layers.%d.%s", layer, m.Path())
}

// Load reads an adapter for the base model described by cfg: a PEFT
// directory (LoadPEFT; the path of its adapter_config.json or
// adapter_model.safetensors also works) or a GGUF LoRA file (LoadGGUF,
// recognised by its magic bytes whatever its name).
func Load(path string, cfg *model.Config) (*Adapter, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	if st.IsDir() {
		return LoadPEFT(path, cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err == nil && bytes.Equal(magic, []byte("GGUF")) {
		return LoadGGUF(path, cfg)
	}
	switch filepath.Base(path) {
	case peft.ConfigFile, peftWeightsFile:
		return LoadPEFT(filepath.Dir(path), cfg)
	}
	return nil, &Error{Path: path, Detail: "neither a PEFT adapter directory nor a GGUF file", Err: ErrFormat}
}

// arena carves the weights of an adapter out of one allocation, each
// piece at an offset that is a multiple of 64 bytes, so that float32 and
// uint16 views of it are aligned (Go aligns the allocation itself to at
// least 8 bytes).
type arena struct {
	buf []byte
	off int
}

const arenaAlign = 64

func alignUp(n int) int { return (n + arenaAlign - 1) &^ (arenaAlign - 1) }

// take returns the next n bytes.
func (a *arena) take(n int) []byte {
	b := a.buf[a.off : a.off+n : a.off+n]
	a.off += alignUp(n)
	return b
}

// loadPair is a pair of tensors on their way into an Adapter: lora_A as
// [rank, in] and lora_B as [out, rank], both in their stored dtype.
type loadPair struct {
	a, b    kernels.Matrix
	scale   float32
	aName   string
	bName   string
	present bool
}

// set records tensor key (a 2-D lora_A, or lora_B when isB) in the pair;
// matrix is the tensor's Matrix method, called once the shape is known to
// be 2-D. PEFT and GGUF loading share it.
func (lp *loadPair) set(isB bool, path, key string, shape []int, matrix func() (kernels.Matrix, error)) error {
	if len(shape) != 2 {
		return &Error{Path: path, Tensor: key, Detail: fmt.Sprintf("has %d dimensions, want 2", len(shape)), Err: ErrMismatch}
	}
	mat, err := matrix()
	if err != nil {
		return &Error{Path: path, Tensor: key, Err: err}
	}
	dst, dstName := &lp.a, &lp.aName
	if isB {
		dst, dstName = &lp.b, &lp.bName
	}
	if *dstName != "" {
		return &Error{Path: path, Tensor: key, Detail: "duplicates " + *dstName, Err: ErrFormat}
	}
	*dst, *dstName = mat, key
	return nil
}

// build copies the pairs into one arena (transposing lora_B) and returns
// the Adapter.
func build(name, path string, conf *peft.Config, layers [][model.NumModules]loadPair) *Adapter {
	size := 0
	for _, l := range layers {
		for _, lp := range l {
			if lp.present {
				size += alignUp(len(lp.a.Data)) + alignUp(len(lp.b.Data))
			}
		}
	}
	ar := &arena{buf: make([]byte, size)}
	ad := &Adapter{Name: name, Path: path, Config: conf, Layers: make([][model.NumModules]*Pair, len(layers)), Bytes: int64(size)}
	for i, l := range layers {
		for m, lp := range l {
			if !lp.present {
				continue
			}
			rank := lp.a.Rows
			a := kernels.Matrix{DType: lp.a.DType, Rows: rank, Cols: lp.a.Cols, Data: ar.take(len(lp.a.Data))}
			copy(a.Data, lp.a.Data)
			bt := kernels.Matrix{DType: lp.b.DType, Rows: rank, Cols: lp.b.Rows, Data: ar.take(len(lp.b.Data))}
			transpose(bt.Data, lp.b.Data, lp.b.Rows, lp.b.Cols, elemSize(lp.b.DType))
			ad.Layers[i][m] = &Pair{A: a, BT: bt, Rank: rank, Scale: lp.scale}
			ad.MaxRank = max(ad.MaxRank, rank)
		}
	}
	return ad
}

// transpose writes the rows x cols matrix src, of 2- or 4-byte elements,
// as its cols x rows transpose into dst. Both must be aligned to the
// element size (the arena and the file readers guarantee it).
func transpose(dst, src []byte, rows, cols, size int) {
	if size == 4 {
		transposeOf(kernels.AsF32(dst), kernels.AsF32(src), rows, cols)
	} else {
		transposeOf(kernels.AsU16(dst), kernels.AsU16(src), rows, cols)
	}
}

func transposeOf[T float32 | uint16](dst, src []T, rows, cols int) {
	for r := range rows {
		for c, v := range src[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
}

// elemSize returns the bytes of one value of a non-block dtype.
func elemSize(dt kernels.DType) int {
	if dt == kernels.F32 {
		return 4
	}
	return 2
}

// shapeString formats a tensor shape for messages.
func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
