package lora

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/model"
)

// peftWeightsFile is the weights file of a PEFT adapter directory.
const peftWeightsFile = "adapter_model.safetensors"

// LoadPEFT reads a Hugging Face PEFT LoRA adapter directory
// (adapter_config.json and adapter_model.safetensors) for the base model
// described by cfg.
//
// Tensor keys must be PEFT's, base_model.model.model.layers.{i}.{self_attn,
// mlp}.{proj}.lora_{A,B}.weight (".lora_A.default.weight" is accepted too).
// Every tensor must belong to a projection the configuration targets, come
// with its partner, and have the shape [r, in] (lora_A) or [out, r]
// (lora_B), where r is the configuration's rank for that projection and
// in/out are the base model's widths; every targeted projection must have
// its tensors. Anything else is an error naming the file and the tensor.
//
// fan_in_fan_out needs no handling: PEFT stores lora_A and lora_B as
// torch.nn.Linear weights whatever the base layer, so they are never
// transposed (the flag only concerns the base weight of transformers'
// Conv1D layers, which these architectures do not have).
func LoadPEFT(dir string, cfg *model.Config) (*Adapter, error) {
	conf, err := peft.ReadFile(dir)
	if err != nil {
		if errors.Is(err, peft.ErrInvalid) {
			return nil, fmt.Errorf("lora: %w (%w)", err, ErrFormat)
		}
		return nil, fmt.Errorf("lora: %w", err)
	}
	path := filepath.Join(dir, peftWeightsFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "adapter_model.bin")); err == nil {
			return nil, &Error{Path: dir, Detail: "adapter_model.bin (PyTorch pickle) without " + peftWeightsFile + " is", Err: ErrUnsupported}
		}
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	defer f.Close()
	return loadPEFT(filepath.Base(filepath.Clean(dir)), dir, path, conf, f, cfg)
}

// loadPEFT builds the adapter called name from its parsed configuration
// and weights; dir and path (the weights file) name it in errors. LoadPEFT
// and LoadFiles share it.
func loadPEFT(name, dir, path string, conf *peft.Config, f *safetensors.File, cfg *model.Config) (*Adapter, error) {
	layers := make([][model.NumModules]loadPair, cfg.Layers)
	for _, key := range f.Names() {
		layer, m, isB, err := parsePEFTKey(key, cfg)
		if err != nil {
			err.Path, err.Tensor = path, key
			return nil, err
		}
		t, terr := f.Tensor(key)
		if terr != nil {
			return nil, &Error{Path: path, Tensor: key, Err: terr}
		}
		if err := layers[layer][m].set(isB, path, key, t.Shape, t.Matrix); err != nil {
			return nil, err
		}
	}

	// Check the tensors against the configuration and the base model,
	// projection by projection.
	found := false
	for i := range layers {
		for m := range model.NumModules {
			lp := &layers[i][m]
			name := moduleName(i, m)
			has := lp.aName != "" || lp.bName != ""
			switch {
			case has && !conf.Targets(name):
				key := lp.aName
				if key == "" {
					key = lp.bName
				}
				return nil, &Error{Path: path, Tensor: key, Detail: fmt.Sprintf("%s holds weights for %s, which %s does not target", peftWeightsFile, name, peft.ConfigFile), Err: ErrMismatch}
			case !has && conf.Targets(name):
				return nil, &Error{Path: path, Detail: fmt.Sprintf("%s targets %s but %s has no lora_A/lora_B for it", peft.ConfigFile, name, peftWeightsFile), Err: ErrMismatch}
			case !has:
				continue
			case lp.bName == "":
				return nil, &Error{Path: path, Tensor: lp.aName, Detail: "lora_A without its lora_B", Err: ErrFormat}
			case lp.aName == "":
				return nil, &Error{Path: path, Tensor: lp.bName, Detail: "lora_B without its lora_A", Err: ErrFormat}
			}
			r, in, out := conf.Rank(name), cfg.InDim(m), cfg.OutDim(m)
			if lp.a.Rows != r || lp.a.Cols != in {
				return nil, &Error{Path: path, Tensor: lp.aName, Err: &ShapeError{
					Got: []int{lp.a.Rows, lp.a.Cols}, Want: []int{r, in},
					Why: fmt.Sprintf("lora_A is [r, in_features]: r %d from %s, in_features %d of the base %s", r, peft.ConfigFile, in, m)}}
			}
			if lp.b.Rows != out || lp.b.Cols != r {
				return nil, &Error{Path: path, Tensor: lp.bName, Err: &ShapeError{
					Got: []int{lp.b.Rows, lp.b.Cols}, Want: []int{out, r},
					Why: fmt.Sprintf("lora_B is [out_features, r]: out_features %d of the base %s, r %d from %s", out, m, r, peft.ConfigFile)}}
			}
			lp.present, found = true, true
			lp.scale = float32(conf.Scaling(name))
		}
	}
	if !found {
		return nil, &Error{Path: path, Detail: "no LoRA tensors", Err: ErrFormat}
	}
	a := build(name, dir, conf, layers)
	if err := a.Validate(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// parsePEFTKey splits a PEFT tensor key into layer, projection and
// whether it is lora_B. The returned error lacks Path and Tensor.
func parsePEFTKey(key string, cfg *model.Config) (layer int, m model.Module, isB bool, err *Error) {
	const prefix = "base_model.model."
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, 0, false, &Error{Detail: "not a PEFT LoRA key (want base_model.model.model.layers.{i}.….lora_A.weight)", Err: ErrFormat}
	}
	var mod string
	switch {
	case cutSuffix(rest, ".lora_A.weight", &mod), cutSuffix(rest, ".lora_A.default.weight", &mod):
	case cutSuffix(rest, ".lora_B.weight", &mod), cutSuffix(rest, ".lora_B.default.weight", &mod):
		isB = true
	case strings.Contains(rest, "lora_embedding_"):
		return 0, 0, false, &Error{Detail: "LoRA on an embedding is", Err: ErrUnsupported}
	case strings.Contains(rest, "lora_magnitude_vector"):
		return 0, 0, false, &Error{Detail: "DoRA (lora_magnitude_vector) is", Err: ErrUnsupported}
	case strings.Contains(rest, ".lora_B.") && strings.HasSuffix(rest, ".bias"):
		return 0, 0, false, &Error{Detail: "a trained lora_B bias (lora_bias) is", Err: ErrUnsupported}
	default:
		return 0, 0, false, &Error{Detail: "not a LoRA weight (want ….lora_A.weight or ….lora_B.weight)", Err: ErrFormat}
	}
	switch mod {
	case "model.embed_tokens", "lm_head":
		return 0, 0, false, &Error{Detail: "LoRA on " + mod + " (embedding or output head) is", Err: ErrUnsupported}
	}
	after, ok := strings.CutPrefix(mod, "model.layers.")
	if !ok {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("the base model has no module %s", mod), Err: ErrMismatch}
	}
	idx, path, ok := strings.Cut(after, ".")
	if !ok || idx == "" || strings.TrimLeft(idx, "0123456789") != "" {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("the base model has no module %s", mod), Err: ErrMismatch}
	}
	layer, perr := strconv.Atoi(idx)
	if perr != nil || layer >= cfg.Layers {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("layer %s, but the base model has %d layers", idx, cfg.Layers), Err: ErrMismatch}
	}
	base := path[strings.LastIndexByte(path, '.')+1:]
	m, ok = model.ParseModule(base)
	if !ok || m.Path() != path {
		return 0, 0, false, &Error{Detail: fmt.Sprintf("the base model has no module %s (its projections are self_attn.{q,k,v,o}_proj and mlp.{gate,up,down}_proj)", mod), Err: ErrMismatch}
	}
	return layer, m, isB, nil
}

// cutSuffix stores s without suffix in *out and reports whether s ended
// with it.
func cutSuffix(s, suffix string, out *string) bool {
	v, ok := strings.CutSuffix(s, suffix)
	if ok {
		*out = v
	}
	return ok
}
