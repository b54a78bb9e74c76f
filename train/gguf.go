package train

import (
	"fmt"
	"math"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// SaveGGUF writes a as a llama.cpp LoRA adapter file, laid out as
// convert_lora_to_gguf.py does: general.type "adapter", adapter.type
// "lora", adapter.lora.alpha, and per projection blk.{i}.{attn_q,...}.
// weight.lora_a [r, in] and .lora_b [out, r] in float32, with the rows of
// q and k lora_b permuted to llama.cpp's interleaved RoPE order for Llama
// models. llama.cpp scales every pair by alpha/r, so every pair must
// share Scale·Rank (rsLoRA is written as the alpha that gives its scale).
func SaveGGUF(path string, a *lora.Adapter, cfg *model.Config) error {
	arch := cfg.Arch
	if arch == "mistral" {
		arch = "llama"
	}
	w := gguf.NewWriter()
	w.AddString("general.architecture", arch)
	w.AddString("general.type", "adapter")
	w.AddString("adapter.type", "lora")
	alpha := math.NaN()
	for l := range a.Layers {
		for mod := range model.NumModules {
			p := a.Pair(l, mod)
			if p == nil {
				continue
			}
			pa := float64(p.Scale) * float64(p.Rank)
			if math.IsNaN(alpha) {
				alpha = pa
			} else if math.Abs(pa-alpha) > 1e-6*math.Abs(alpha) {
				return fmt.Errorf("train: GGUF LoRA has one alpha/r scale for all pairs; %s has scale·rank %v, others %v", peftName(l, mod), pa, alpha)
			}
			in, out := p.A.Cols, p.BT.Cols
			av := make([]float32, p.Rank*in)
			bt := make([]float32, out)
			bv := make([]float32, out*p.Rank)
			for k := range p.Rank {
				p.A.Row(k, av[k*in:(k+1)*in])
				p.BT.Row(k, bt)
				for o, v := range bt {
					bv[o*p.Rank+k] = v
				}
			}
			bb := kernels.F32Bytes(bv)
			if arch == "llama" && (mod == model.ModQ || mod == model.ModK) {
				heads := cfg.Heads
				if mod == model.ModK {
					heads = cfg.KVHeads
				}
				bb = model.PermuteRows(bb, heads, cfg.HeadDim, 4*p.Rank)
			}
			name := fmt.Sprintf("blk.%d.%s.weight", l, mod.GGUFName())
			if err := w.AddTensor(name+".lora_a", kernels.F32, []int{p.Rank, in}, kernels.F32Bytes(av)); err != nil {
				return fmt.Errorf("train: %w", err)
			}
			if err := w.AddTensor(name+".lora_b", kernels.F32, []int{out, p.Rank}, bb); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
	}
	if math.IsNaN(alpha) {
		return fmt.Errorf("train: the adapter has no LoRA pairs")
	}
	w.AddFloat32("adapter.lora.alpha", float32(alpha))
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
