package lora

import (
	"math/rand/v2"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// Random returns an adapter of the given rank on the target projections of
// every layer, with A and B drawn from N(0, 0.02²) (B non-zero, unlike a
// fresh PEFT adapter, so the delta is visible) and stored as dt (F32, F16
// or BF16). Benchmarks and load tests use it to stand in for trained
// adapters of a real shape; the same seed gives the same adapter.
func Random(cfg *model.Config, rank int, targets []model.Module, dt kernels.DType, seed uint64) *Adapter {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	matrix := func(rows, cols int) kernels.Matrix {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
		return kernels.Matrix{DType: dt, Rows: rows, Cols: cols, Data: kernels.EncodeRow(nil, dt, v)}
	}
	layers := make([][model.NumModules]loadPair, cfg.Layers)
	for l := range layers {
		for _, m := range targets {
			// build wants lora_B as stored, [out, rank].
			layers[l][m] = loadPair{a: matrix(rank, cfg.InDim(m)), b: matrix(cfg.OutDim(m), rank), scale: 2, present: true}
		}
	}
	return build("random", "", nil, layers)
}
