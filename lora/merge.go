package lora

import (
	"fmt"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// Merge folds an adapter into a model's weights, W' = W + s·B·A, for a
// dedicated deployment that serves one adapter and wants no per-token
// delta. Every projection the adapter touches is replaced by a new F32
// matrix, interleaved as Load leaves them (the stored file is not
// changed); the others are left as they are. The shared serving path
// never merges: it keeps adapters unmerged so one batch can mix them.
func Merge(m *model.Model, a *Adapter) error {
	if err := a.Validate(&m.Config); err != nil {
		return err
	}
	for l := range m.Weights.Layers {
		layer := &m.Weights.Layers[l]
		for mod := range model.NumModules {
			p := a.Pair(l, mod)
			if p == nil {
				continue
			}
			w := layer.Proj[mod]
			if w.Rows != p.BT.Cols || w.Cols != p.A.Cols {
				return fmt.Errorf("lora: merge %s: adapter shape [%d %d] does not fit weight [%d %d]",
					moduleName(l, mod), p.BT.Cols, p.A.Cols, w.Rows, w.Cols)
			}
			merged := make([]float32, w.Rows*w.Cols)
			for r := range w.Rows {
				w.Row(r, merged[r*w.Cols:(r+1)*w.Cols])
			}
			// W'[o, :] += s · Σ_k B[o, k] · A[k, :], with B stored
			// transposed: B[o, k] = BT[k, o].
			a, bt := make([]float32, p.A.Cols), make([]float32, p.BT.Cols)
			for k := range p.Rank {
				p.A.Row(k, a)
				p.BT.Row(k, bt)
				for o, b := range bt {
					kernels.Axpy(p.Scale*b, a, merged[o*w.Cols:(o+1)*w.Cols])
				}
			}
			layer.Proj[mod] = kernels.Interleave(kernels.NewF32Matrix(w.Rows, w.Cols, merged))
		}
	}
	return nil
}
