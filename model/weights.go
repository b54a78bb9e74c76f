package model

import (
	"fmt"

	"github.com/switchyard-ai/switchyard/internal/hugepages"
	"github.com/switchyard-ai/switchyard/kernels"
)

// Weights are a model's parameters. Matrices keep the dtype they are
// stored in (some aliasing a memory-mapped file, some interleaved for the
// decode kernels); vectors are float32.
type Weights struct {
	Embed  kernels.Matrix // token embedding [vocab, hidden]
	Layers []Layer
	Norm   []float32      // final RMSNorm weight [hidden]
	Head   kernels.Matrix // LM head [vocab, hidden]; the same matrix as Embed when tied
}

// Layer is one decoder layer.
type Layer struct {
	AttnNorm []float32                  // RMSNorm before attention [hidden]
	Proj     [NumModules]kernels.Matrix // the seven projections, [out, in] each
	Bias     [NumModules][]float32      // projection biases, nil where absent (Qwen2 has q, k, v)
	MLPNorm  []float32                  // RMSNorm before the MLP [hidden]
}

// checkShapes verifies every matrix and vector against the config, so a
// checkpoint that does not fit is refused at load rather than misread.
func (w *Weights) checkShapes(c *Config) error {
	check := func(name string, m kernels.Matrix, rows, cols int) error {
		if m.Rows != rows || m.Cols != cols {
			return fmt.Errorf("model: tensor %s has shape [%d %d], config wants [%d %d]", name, m.Rows, m.Cols, rows, cols)
		}
		return m.Validate()
	}
	vec := func(name string, v []float32, n int) error {
		if len(v) != n {
			return fmt.Errorf("model: tensor %s has %d values, config wants %d", name, len(v), n)
		}
		return nil
	}
	if err := check("token embedding", w.Embed, c.Vocab, c.Hidden); err != nil {
		return err
	}
	if err := check("LM head", w.Head, c.Vocab, c.Hidden); err != nil {
		return err
	}
	if err := vec("final norm", w.Norm, c.Hidden); err != nil {
		return err
	}
	if len(w.Layers) != c.Layers {
		return fmt.Errorf("model: %d layers loaded, config wants %d", len(w.Layers), c.Layers)
	}
	for i, l := range w.Layers {
		for m := range NumModules {
			name := fmt.Sprintf("layers.%d.%s", i, m.Path())
			if err := check(name, l.Proj[m], c.OutDim(m), c.InDim(m)); err != nil {
				return err
			}
			if l.Bias[m] != nil {
				if err := vec(name+".bias", l.Bias[m], c.OutDim(m)); err != nil {
					return err
				}
			}
		}
		if err := vec(fmt.Sprintf("layers.%d.input_layernorm", i), l.AttnNorm, c.Hidden); err != nil {
			return err
		}
		if err := vec(fmt.Sprintf("layers.%d.post_attention_layernorm", i), l.MLPNorm, c.Hidden); err != nil {
			return err
		}
	}
	return nil
}

// interleave puts the projections and the LM head in the layout that the
// decode kernels stream fastest, kernels.Interleave: a decode step reads
// every one of them once, 4 rows at a time. Each copy is written to
// take(its size). A tied embedding follows the head, so the two stay one
// matrix. release is called with the data of each matrix it replaced,
// which nothing reads any more.
func (w *Weights) interleave(take func(n int) []byte, release func([]byte)) {
	tied := w.tied()
	w.toInterleave(func(m *kernels.Matrix) {
		old := m.Data
		*m = kernels.InterleaveInto(take(len(old)), *m)
		release(old)
	})
	if tied {
		w.Embed = w.Head
	}
}

// interleavedBytes returns the bytes interleave copies, each copy
// rounded up to hugepages.Align.
func (w *Weights) interleavedBytes() int {
	n := 0
	w.toInterleave(func(m *kernels.Matrix) {
		n += (len(m.Data) + hugepages.Align - 1) / hugepages.Align * hugepages.Align
	})
	return n
}

// toInterleave calls fn with the LM head and each projection that
// interleave copies: those not interleaved yet whose type and shape
// allow it.
func (w *Weights) toInterleave(fn func(m *kernels.Matrix)) {
	visit := func(m *kernels.Matrix) {
		if kernels.CanInterleave(*m) && !m.Interleaved {
			fn(m)
		}
	}
	visit(&w.Head)
	for i := range w.Layers {
		for m := range w.Layers[i].Proj {
			visit(&w.Layers[i].Proj[m])
		}
	}
}

// tied reports whether the LM head is the token embedding.
func (w *Weights) tied() bool {
	return len(w.Head.Data) > 0 && len(w.Embed.Data) > 0 && &w.Head.Data[0] == &w.Embed.Data[0]
}

// Bytes returns the size of the weights as stored (the tied head counted
// once).
func (w *Weights) Bytes() int64 {
	n := w.StepBytes()
	if !w.tied() {
		n += int64(len(w.Embed.Data))
	}
	return n
}

// StepBytes returns the bytes of weights one decode step reads: all of
// them but an untied token embedding, of which a step reads one row.
func (w *Weights) StepBytes() int64 {
	n := int64(len(w.Head.Data)) + 4*int64(len(w.Norm))
	for _, l := range w.Layers {
		for m := range NumModules {
			n += int64(len(l.Proj[m].Data)) + 4*int64(len(l.Bias[m]))
		}
		n += 4 * int64(len(l.AttnNorm)+len(l.MLPNorm))
	}
	return n
}

// allF32 reports whether every projection is stored as F32.
func (w *Weights) allF32() bool {
	for _, l := range w.Layers {
		for _, p := range l.Proj {
			if p.DType != kernels.F32 {
				return false
			}
		}
	}
	return true
}

// toF32 converts a 1-D tensor of any supported dtype to float32.
func toF32(dt kernels.DType, data []byte, n int) ([]float32, error) {
	if n%dt.BlockSize() != 0 || len(data) != dt.RowBytes(n) {
		return nil, fmt.Errorf("%v vector of %d values has %d bytes", dt, n, len(data))
	}
	v := make([]float32, n)
	kernels.DecodeRow(v, dt, data)
	return v, nil
}
