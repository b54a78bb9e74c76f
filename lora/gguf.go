package lora

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// LoadGGUF reads a llama.cpp LoRA adapter (the output of
// convert_lora_to_gguf.py) for the base model described by cfg.
//
// The file must say general.type "adapter" and adapter.type "lora", and
// its general.architecture must be the base model's ("llama" for Mistral
// too). Tensors are blk.{i}.{attn_q,attn_k,attn_v,attn_output,ffn_gate,
// ffn_up,ffn_down}.weight.lora_a ([r, in]) and .lora_b ([out, r]). Every
// projection gets llama.cpp's scale adapter.lora.alpha / r, or 1 when the
// file has no alpha; llama.cpp ignores PEFT's use_rslora and
// alpha_pattern, and so does this function.
//
// For Llama-architecture files, the converter stored the lora_b rows of
// attn_q and attn_k in GGUF's interleaved RoPE order; they are put back in
// the Hugging Face rotate_half order that Switchyard runs, as the base
// model's q/k rows are. A Q8_0 lora_b is widened to F32 (it is transposed
// at load, which Q8_0 blocks do not survive); a Q8_0 lora_a stays as is.
func LoadGGUF(path string, cfg *model.Config) (*Adapter, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	defer f.Close()
	return loadGGUF(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), path, f, cfg)
}

// loadGGUF builds the adapter called name from the parsed file f; path
// names it in errors. LoadGGUF and LoadFiles share it.
func loadGGUF(name, path string, f *gguf.File, cfg *model.Config) (*Adapter, error) {
	if t, _ := f.String("general.type"); t != "adapter" {
		return nil, &Error{Path: path, Detail: fmt.Sprintf("general.type is %q, want \"adapter\" (is this a base model?)", t), Err: ErrFormat}
	}
	if t, _ := f.String("adapter.type"); t != "lora" {
		return nil, &Error{Path: path, Detail: fmt.Sprintf("adapter.type %q is", t), Err: ErrUnsupported}
	}
	wantArch := cfg.Arch
	if wantArch == "mistral" {
		wantArch = "llama" // llama.cpp runs Mistral as llama
	}
	if arch := f.Architecture(); arch != wantArch {
		return nil, &Error{Path: path, Detail: fmt.Sprintf("general.architecture is %q, the base model is %q", arch, cfg.Arch), Err: ErrMismatch}
	}
	if _, ok := f.Value("adapter.alora.invocation_tokens"); ok {
		return nil, &Error{Path: path, Detail: "activated LoRA (aLoRA) is", Err: ErrUnsupported}
	}
	alpha, _ := f.Float("adapter.lora.alpha")

	layers := make([][model.NumModules]loadPair, cfg.Layers)
	for _, ti := range f.Tensors {
		key := ti.Name
		layer, m, isB, kerr := parseGGUFKey(key, cfg)
		if kerr != nil {
			kerr.Path, kerr.Tensor = path, key
			return nil, kerr
		}
		t, terr := f.Tensor(key)
		if terr != nil {
			return nil, &Error{Path: path, Tensor: key, Err: terr}
		}
		if err := layers[layer][m].set(isB, path, key, t.Shape, t.Matrix); err != nil {
			return nil, err
		}
	}

	found := false
	for i := range layers {
		for m := range model.NumModules {
			lp := &layers[i][m]
			switch {
			case lp.aName == "" && lp.bName == "":
				continue
			case lp.bName == "":
				return nil, &Error{Path: path, Tensor: lp.aName, Detail: "lora_a without its lora_b", Err: ErrFormat}
			case lp.aName == "":
				return nil, &Error{Path: path, Tensor: lp.bName, Detail: "lora_b without its lora_a", Err: ErrFormat}
			}
			r, in, out := lp.a.Rows, cfg.InDim(m), cfg.OutDim(m)
			if lp.a.Cols != in {
				return nil, &Error{Path: path, Tensor: lp.aName, Err: &ShapeError{
					Got: []int{lp.a.Rows, lp.a.Cols}, Want: []int{r, in},
					Why: fmt.Sprintf("lora_a is [r, in_features]: in_features %d of the base %s", in, m.GGUFName())}}
			}
			if lp.b.Rows != out || lp.b.Cols != r {
				return nil, &Error{Path: path, Tensor: lp.bName, Err: &ShapeError{
					Got: []int{lp.b.Rows, lp.b.Cols}, Want: []int{out, r},
					Why: fmt.Sprintf("lora_b is [out_features, r]: out_features %d of the base %s, r %d from its lora_a", out, m.GGUFName(), r)}}
			}
			if r <= 0 {
				return nil, &Error{Path: path, Tensor: lp.aName, Detail: "rank 0", Err: ErrFormat}
			}
			if wantArch == "llama" && (m == model.ModQ || m == model.ModK) {
				heads := cfg.Heads
				if m == model.ModK {
					heads = cfg.KVHeads
				}
				lp.b.Data = model.UnpermuteRows(lp.b.Data, heads, cfg.HeadDim, lp.b.DType.RowBytes(r))
			}
			if lp.b.DType.BlockSize() > 1 { // Q8_0, K-quants
				lp.b = widen(lp.b)
			}
			lp.scale = 1
			if alpha != 0 {
				lp.scale = float32(alpha / float64(r))
			}
			lp.present, found = true, true
		}
	}
	if !found {
		return nil, &Error{Path: path, Detail: "no LoRA tensors", Err: ErrFormat}
	}
	a := build(name, path, nil, layers)
	if err := a.Validate(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// widen decodes a matrix to F32.
func widen(m kernels.Matrix) kernels.Matrix {
	v := make([]float32, m.Rows*m.Cols)
	for r := range m.Rows {
		m.Row(r, v[r*m.Cols:(r+1)*m.Cols])
	}
	return kernels.NewF32Matrix(m.Rows, m.Cols, v)
}

// parseGGUFKey splits a llama.cpp LoRA tensor name into layer, projection
// and whether it is lora_b. The returned error lacks Path and Tensor.
func parseGGUFKey(key string, cfg *model.Config) (layer int, m model.Module, isB bool, err *Error) {
	var base string
	switch {
	case cutSuffix(key, ".weight.lora_a", &base):
	case cutSuffix(key, ".weight.lora_b", &base):
		isB = true
	default:
		return 0, 0, false, &Error{Detail: "not a LoRA tensor (want blk.{i}.{name}.weight.lora_a or .lora_b)", Err: ErrFormat}
	}
	switch base {
	case "token_embd", "output":
		return 0, 0, false, &Error{Detail: "LoRA on " + base + " (embedding or output head) is", Err: ErrUnsupported}
	}
	after, ok := strings.CutPrefix(base, "blk.")
	idx, name, ok2 := strings.Cut(after, ".")
	if !ok || !ok2 || idx == "" || strings.TrimLeft(idx, "0123456789") != "" {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("the base model has no tensor %s.weight", base), Err: ErrMismatch}
	}
	layer, perr := strconv.Atoi(idx)
	if perr != nil || layer >= cfg.Layers {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("layer %s, but the base model has %d layers", idx, cfg.Layers), Err: ErrMismatch}
	}
	m, ok = model.ParseGGUFModule(name)
	if !ok {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("the base model has no tensor %s.weight (its projections are attn_{q,k,v,output} and ffn_{gate,up,down})", base), Err: ErrMismatch}
	}
	return layer, m, isB, nil
}
