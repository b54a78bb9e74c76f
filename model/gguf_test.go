package model_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// convertToGGUF writes a Hugging Face fixture model as llama.cpp's
// converter would: GGUF tensor names, q/k rows permuted for Llama, norms
// in F32, and llama3 rope scaling as a rope_freqs tensor of per-frequency
// divisors.
func convertToGGUF(t *testing.T, dir, out string) {
	t.Helper()
	cfg, err := model.ReadHFConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	arch := cfg.Arch
	w := gguf.NewWriter()
	w.AddString("general.architecture", arch)
	w.AddUint32(arch+".context_length", uint32(cfg.MaxPositions))
	w.AddUint32(arch+".embedding_length", uint32(cfg.Hidden))
	w.AddUint32(arch+".block_count", uint32(cfg.Layers))
	w.AddUint32(arch+".feed_forward_length", uint32(cfg.Intermediate))
	w.AddUint32(arch+".attention.head_count", uint32(cfg.Heads))
	w.AddUint32(arch+".attention.head_count_kv", uint32(cfg.KVHeads))
	w.AddUint32(arch+".attention.key_length", uint32(cfg.HeadDim))
	w.AddFloat32(arch+".rope.freq_base", float32(cfg.RopeTheta))
	w.AddFloat32(arch+".attention.layer_norm_rms_epsilon", cfg.RMSNormEps)
	add := func(name, hf string, transform func([]byte, kernels.DType, []int) []byte) {
		tn, err := st.Tensor(hf)
		if err != nil {
			t.Fatal(err)
		}
		data := tn.Data
		dt := tn.DType
		if len(tn.Shape) == 1 && dt != kernels.F32 { // llama.cpp keeps 1-D tensors in F32
			v := make([]float32, tn.Shape[0])
			kernels.DecodeRow(v, dt, data)
			data, dt = kernels.F32Bytes(v), kernels.F32
		}
		if transform != nil {
			data = transform(data, dt, tn.Shape)
		}
		if err := w.AddTensor(name, dt, tn.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
	permute := func(heads int) func([]byte, kernels.DType, []int) []byte {
		return func(b []byte, dt kernels.DType, shape []int) []byte {
			if arch != "llama" {
				return b
			}
			return model.PermuteRows(b, heads, cfg.HeadDim, dt.RowBytes(shape[len(shape)-1]))
		}
	}
	add("token_embd.weight", "model.embed_tokens.weight", nil)
	add("output_norm.weight", "model.norm.weight", nil)
	if st.Has("lm_head.weight") {
		add("output.weight", "lm_head.weight", nil)
	}
	for l := range cfg.Layers {
		p, b := fmt.Sprintf("model.layers.%d.", l), fmt.Sprintf("blk.%d.", l)
		add(b+"attn_norm.weight", p+"input_layernorm.weight", nil)
		add(b+"ffn_norm.weight", p+"post_attention_layernorm.weight", nil)
		for m := range model.NumModules {
			var tr func([]byte, kernels.DType, []int) []byte
			switch m {
			case model.ModQ:
				tr = permute(cfg.Heads)
			case model.ModK:
				tr = permute(cfg.KVHeads)
			}
			add(b+m.GGUFName()+".weight", p+m.Path()+".weight", tr)
			if st.Has(p + m.Path() + ".bias") {
				add(b+m.GGUFName()+".bias", p+m.Path()+".bias", tr)
			}
		}
	}
	if s := cfg.RopeScaling; s != nil {
		// convert_hf_to_gguf's LlamaModel.generate_extra_tensors.
		factors := make([]float32, cfg.HeadDim/2)
		lowWavelen := float64(s.OriginalMaxPos) / s.LowFreqFactor
		highWavelen := float64(s.OriginalMaxPos) / s.HighFreqFactor
		for i := range factors {
			f := 1 / math.Pow(cfg.RopeTheta, float64(2*i)/float64(cfg.HeadDim))
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen:
				factors[i] = 1
			case wavelen > lowWavelen:
				factors[i] = float32(s.Factor)
			default:
				smooth := (float64(s.OriginalMaxPos)/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				factors[i] = float32(1 / ((1-smooth)/s.Factor + smooth))
			}
		}
		if err := w.AddTensor("rope_freqs.weight", kernels.F32, []int{len(factors)}, kernels.F32Bytes(factors)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
}

// TestFixtureGGUF converts every fixture model to GGUF the way llama.cpp
// does (BF16 kept as BF16, llama3 scaling as rope_freqs, Qwen2 biases and
// NEOX order) and checks the GGUF copy against the same reference.
func TestFixtureGGUF(t *testing.T) {
	for _, name := range []string{"llama_tiny", "llama3_rope", "qwen2_tiny"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".gguf")
			convertToGGUF(t, testshared.Path(t, "fixtures", name, "model"), path)
			m, err := model.Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			checkFixtureBase(t, m, testshared.LoadFixture(t, name))
		})
	}
}
