package model

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/internal/hugepages"
	"github.com/switchyard-ai/switchyard/kernels"
)

// Load opens a model: a Hugging Face directory (config.json and
// safetensors weights, sharded or not) or a GGUF file. The weights keep
// their stored dtype; q/k rows stored in GGUF's interleaved RoPE order are
// converted to rotate_half order. The F32, F16, BF16 and Q8_0
// projections and LM head whose shape allows it are copied into the
// interleaved layout the decode kernels stream fastest
// (kernels.Interleave), and the pages of the file they came from are
// released; the rest stays memory-mapped.
// The copies are the process's own memory, mapped outside the Go heap in
// 2 MiB pages where the OS allows (package hugepages) and unmapped by
// Close, not by the garbage collector: a Model that is never closed keeps
// them for the life of the process. Processes serving one file do not
// share them, and the OS cannot drop them under memory pressure as it can
// a mapping's pages.
// pool runs the model's kernels; nil means a new pool with one worker per
// core.
func Load(path string, pool *kernels.Pool) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var m *Model
	if st.IsDir() {
		m, err = loadHF(path)
	} else {
		m, err = loadGGUF(path)
	}
	if err != nil {
		return nil, err
	}
	if err := m.Weights.checkShapes(&m.Config); err != nil {
		m.Close()
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	// The copies go to memory of their own, in 2 MiB pages where the OS
	// allows: a decode step reads them all, and with 4 KiB pages (35
	// thousand of them for the Q8_0 SmolLM2-135M, each a page walk once
	// the TLB has cycled) the matmuls of a step took 0-24% longer, F16
	// and Q8_0 at 16 and 512 positions, most at 16 (processes taking
	// turns, three runs each).
	copies := hugepages.New(m.Weights.interleavedBytes())
	m.closers = append(m.closers, copies)
	m.Weights.interleave(copies.Take, func(b []byte) {
		// The copy replaces the file's bytes: let their pages go, or the
		// process would hold the weights twice.
		for _, c := range m.closers {
			if f, ok := c.(interface{ Release([]byte) }); ok {
				f.Release(b)
			}
		}
	})
	if pool == nil {
		pool = kernels.NewPool(0)
		m.ownPool = true
	}
	m.init(pool)
	m.KVDType = kernels.F16
	if m.Weights.allF32() {
		m.KVDType = kernels.F32
	}
	return m, nil
}

func loadHF(dir string) (*Model, error) {
	cfg, err := ReadHFConfig(dir)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{Config: *cfg, closers: []io.Closer{f}}
	if err := readHFWeights(f, cfg, &m.Weights); err != nil {
		m.Close()
		return nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	return m, nil
}

func readHFWeights(f *safetensors.File, cfg *Config, w *Weights) error {
	matrix := func(name string) (kernels.Matrix, error) {
		t, err := f.Tensor(name)
		if err != nil {
			return kernels.Matrix{}, err
		}
		if len(t.Shape) != 2 {
			return kernels.Matrix{}, fmt.Errorf("tensor %s has shape %v, want 2 dimensions", name, t.Shape)
		}
		return t.Matrix()
	}
	vector := func(name string) ([]float32, error) {
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 1 {
			return nil, fmt.Errorf("tensor %s has shape %v, want 1 dimension", name, t.Shape)
		}
		v, err := toF32(t.DType, t.Data, t.Shape[0])
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		return v, nil
	}
	var err error
	if w.Embed, err = matrix("model.embed_tokens.weight"); err != nil {
		return err
	}
	if w.Norm, err = vector("model.norm.weight"); err != nil {
		return err
	}
	switch {
	case f.Has("lm_head.weight"):
		if w.Head, err = matrix("lm_head.weight"); err != nil {
			return err
		}
	case cfg.TiedEmbed:
		w.Head = w.Embed
	default:
		return errors.New("no lm_head.weight and tie_word_embeddings is not set")
	}
	w.Layers = make([]Layer, cfg.Layers)
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("model.layers.%d.", i)
		if l.AttnNorm, err = vector(p + "input_layernorm.weight"); err != nil {
			return err
		}
		if l.MLPNorm, err = vector(p + "post_attention_layernorm.weight"); err != nil {
			return err
		}
		for mod := range NumModules {
			if l.Proj[mod], err = matrix(p + mod.Path() + ".weight"); err != nil {
				return err
			}
			if bias := p + mod.Path() + ".bias"; f.Has(bias) {
				if l.Bias[mod], err = vector(bias); err != nil {
					return err
				}
			} else if cfg.AttnBias && mod <= ModV {
				return fmt.Errorf("tensor %s is missing (the config says q/k/v have biases)", bias)
			}
		}
	}
	return nil
}

// ggufArchs maps general.architecture to Config.Arch.
var ggufArchs = map[string]string{"llama": "llama", "qwen2": "qwen2"}

func loadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{closers: []io.Closer{f}}
	if err := readGGUF(f, m); err != nil {
		m.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m.GGUF = f
	return m, nil
}

func readGGUF(f *gguf.File, m *Model) error {
	arch := f.Architecture()
	if ggufArchs[arch] == "" {
		return fmt.Errorf("unsupported architecture %q (supported: llama, qwen2)", arch)
	}
	if t, ok := f.String("general.type"); ok && t != "model" {
		return fmt.Errorf("general.type is %q, not a model (a LoRA adapter goes to --adapter)", t)
	}
	num := func(key string, dst *int) error {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			return fmt.Errorf("metadata %s.%s is missing", arch, key)
		}
		*dst = int(min(v, 1<<31))
		return nil
	}
	c := &m.Config
	c.Arch = ggufArchs[arch]
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"embedding_length", &c.Hidden},
		{"feed_forward_length", &c.Intermediate},
		{"block_count", &c.Layers},
		{"attention.head_count", &c.Heads},
		{"context_length", &c.MaxPositions},
	} {
		if err := num(k.key, k.dst); err != nil {
			return err
		}
	}
	c.KVHeads = c.Heads
	if v, ok := f.Uint(arch + ".attention.head_count_kv"); ok {
		c.KVHeads = int(min(v, 1<<31))
	}
	if c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if v, ok := f.Uint(arch + ".attention.key_length"); ok {
		c.HeadDim = int(min(v, 1<<31))
	}
	if eps, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.RMSNormEps = float32(eps)
	} else {
		return fmt.Errorf("metadata %s.attention.layer_norm_rms_epsilon is missing", arch)
	}
	c.RopeTheta = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok {
		c.RopeTheta = v
	}
	if typ, ok := f.String(arch + ".rope.scaling.type"); ok && typ != "none" {
		return fmt.Errorf("unsupported rope scaling type %q", typ)
	}
	c.AttnBias = arch == "qwen2"
	c.BOS = -1
	if v, ok := f.Uint("tokenizer.ggml.bos_token_id"); ok {
		c.BOS = int(min(v, 1<<31))
	}
	if v, ok := f.Uint("tokenizer.ggml.eos_token_id"); ok {
		c.EOS = []int{int(min(v, 1<<31))}
	}
	emb, err := ggufMatrix(f, "token_embd.weight")
	if err != nil {
		return err
	}
	c.Vocab = emb.Rows
	if ggufHas(f, "rope_freqs.weight") {
		t, err := f.Tensor("rope_freqs.weight")
		if err != nil {
			return err
		}
		if c.FreqFactors, err = toF32(t.DType, t.Data, c.HeadDim/2); err != nil {
			return fmt.Errorf("tensor rope_freqs.weight: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return err
	}

	w := &m.Weights
	w.Embed = emb
	if w.Norm, err = ggufVector(f, "output_norm.weight"); err != nil {
		return err
	}
	if ggufHas(f, "output.weight") {
		if w.Head, err = ggufMatrix(f, "output.weight"); err != nil {
			return err
		}
	} else {
		w.Head, c.TiedEmbed = emb, true
	}
	w.Layers = make([]Layer, c.Layers)
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		if l.AttnNorm, err = ggufVector(f, p+"attn_norm.weight"); err != nil {
			return err
		}
		if l.MLPNorm, err = ggufVector(f, p+"ffn_norm.weight"); err != nil {
			return err
		}
		for mod := range NumModules {
			name := p + mod.GGUFName()
			if l.Proj[mod], err = ggufMatrix(f, name+".weight"); err != nil {
				return err
			}
			if ggufHas(f, name+".bias") {
				if l.Bias[mod], err = ggufVector(f, name+".bias"); err != nil {
					return err
				}
			}
		}
		// llama.cpp's converter stores Llama q/k rows interleaved for
		// its RoPE; turn them back into rotate_half order (Qwen2 runs
		// with NEOX RoPE in llama.cpp and is stored unpermuted).
		if arch == "llama" {
			for _, mod := range []Module{ModQ, ModK} {
				heads := c.Heads
				if mod == ModK {
					heads = c.KVHeads
				}
				w := &l.Proj[mod]
				if w.Rows != heads*c.HeadDim {
					return fmt.Errorf("tensor %s%s.weight has %d rows, want %d", p, mod.GGUFName(), w.Rows, heads*c.HeadDim)
				}
				stored := w.Data
				w.Data = UnpermuteRows(stored, heads, c.HeadDim, w.DType.RowBytes(w.Cols))
				f.Release(stored) // copied: let the file's pages go (see Load)
				if b := l.Bias[mod]; b != nil {
					l.Bias[mod] = kernels.AsF32(UnpermuteRows(kernels.F32Bytes(b), heads, c.HeadDim, 4))
				}
			}
		}
	}
	return nil
}

func ggufMatrix(f *gguf.File, name string) (kernels.Matrix, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return kernels.Matrix{}, err
	}
	if len(t.Shape) != 2 {
		return kernels.Matrix{}, fmt.Errorf("tensor %s has shape %v, want 2 dimensions", name, t.Shape)
	}
	return t.Matrix()
}

func ggufVector(f *gguf.File, name string) ([]float32, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	if len(t.Shape) != 1 && !(len(t.Shape) == 2 && t.Shape[0] == 1) {
		return nil, fmt.Errorf("tensor %s has shape %v, want 1 dimension", name, t.Shape)
	}
	v, err := toF32(t.DType, t.Data, n)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return v, nil
}

func ggufHas(f *gguf.File, name string) bool {
	for _, t := range f.Tensors {
		if t.Name == name {
			return true
		}
	}
	return false
}
