package testmodel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/kernels"
)

// transformersVersion is the version WriteHF claims wrote the files.
const transformersVersion = "4.46.0"

// hfConfig is config.json with the fields, and in the order, that
// transformers 4.x writes for LlamaConfig and Qwen2Config.
type hfConfig struct {
	Architectures         []string  `json:"architectures"`
	AttentionBias         *bool     `json:"attention_bias,omitempty"` // llama only
	AttentionDropout      float64   `json:"attention_dropout"`
	BOSTokenID            int       `json:"bos_token_id"`
	EOSTokenID            int       `json:"eos_token_id"`
	HeadDim               int       `json:"head_dim,omitempty"`
	HiddenAct             string    `json:"hidden_act"`
	HiddenSize            int       `json:"hidden_size"`
	InitializerRange      float64   `json:"initializer_range"`
	IntermediateSize      int       `json:"intermediate_size"`
	MaxPositionEmbeddings int       `json:"max_position_embeddings"`
	MaxWindowLayers       *int      `json:"max_window_layers,omitempty"` // qwen2 only
	MLPBias               *bool     `json:"mlp_bias,omitempty"`          // llama only
	ModelType             string    `json:"model_type"`
	NumAttentionHeads     int       `json:"num_attention_heads"`
	NumHiddenLayers       int       `json:"num_hidden_layers"`
	NumKeyValueHeads      int       `json:"num_key_value_heads"`
	PretrainingTP         *int      `json:"pretraining_tp,omitempty"` // llama only
	RMSNormEps            float64   `json:"rms_norm_eps"`
	RopeScaling           *struct{} `json:"rope_scaling"`
	RopeTheta             float64   `json:"rope_theta"`
	SlidingWindow         *int      `json:"sliding_window,omitempty"` // qwen2 only
	TieWordEmbeddings     bool      `json:"tie_word_embeddings"`
	TorchDType            string    `json:"torch_dtype"`
	TransformersVersion   string    `json:"transformers_version"`
	UseCache              bool      `json:"use_cache"`
	UseSlidingWindow      *bool     `json:"use_sliding_window,omitempty"` // qwen2 only
	VocabSize             int       `json:"vocab_size"`
}

// torchDTypes names the dtypes WriteHF can write as config.json does.
var torchDTypes = map[kernels.DType]string{kernels.F32: "float32", kernels.BF16: "bfloat16", kernels.F16: "float16"}

// ConfigJSON returns the config.json that WriteHF writes for s with
// weights stored as dt.
func (s Shape) ConfigJSON(dt kernels.DType) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	name, ok := torchDTypes[dt]
	if !ok {
		return nil, fmt.Errorf("testmodel: Hugging Face checkpoints cannot hold %v; want F32, BF16 or F16", dt)
	}
	f, one := false, 1
	c := hfConfig{
		AttentionDropout:      0,
		BOSTokenID:            BOSID,
		EOSTokenID:            EOSID,
		HiddenAct:             "silu",
		HiddenSize:            s.Hidden,
		InitializerRange:      0.02,
		IntermediateSize:      s.Intermediate,
		MaxPositionEmbeddings: s.MaxPositions,
		ModelType:             s.Arch,
		NumAttentionHeads:     s.Heads,
		NumHiddenLayers:       s.Layers,
		NumKeyValueHeads:      s.KVHeads,
		RMSNormEps:            s.RMSNormEps,
		RopeTheta:             s.RopeTheta,
		TieWordEmbeddings:     s.Tied,
		TorchDType:            name,
		TransformersVersion:   transformersVersion,
		UseCache:              true,
		VocabSize:             s.Vocab,
	}
	switch s.Arch {
	case "llama":
		c.Architectures = []string{"LlamaForCausalLM"}
		c.AttentionBias, c.MLPBias, c.PretrainingTP = &f, &f, &one
		c.HeadDim = s.HeadDim
	case "qwen2":
		c.Architectures = []string{"Qwen2ForCausalLM"}
		c.MaxWindowLayers, c.SlidingWindow, c.UseSlidingWindow = &s.Layers, &s.MaxPositions, &f
		if s.HeadDim*s.Heads != s.Hidden {
			c.HeadDim = s.HeadDim // Qwen2Config derives it otherwise
		}
	}
	return json.MarshalIndent(c, "", "  ")
}

// WriteHF writes a Hugging Face model directory for s with weights drawn
// for seed: config.json, generation_config.json (bos 1, eos 2) and
// model.safetensors with transformers' tensor names. Every tensor, norms
// included, is stored as dt (F32, BF16 or F16), as transformers saves a
// model in one dtype. dir is created if needed; model.safetensors is
// written last and atomically, so its presence marks a complete directory.
func WriteHF(dir string, s Shape, dt kernels.DType, seed uint64) error {
	cfg, err := s.ConfigJSON(dt)
	if err != nil {
		return err
	}
	gen, err := json.MarshalIndent(struct {
		FromModelConfig     bool   `json:"_from_model_config"`
		BOSTokenID          int    `json:"bos_token_id"`
		EOSTokenID          int    `json:"eos_token_id"`
		TransformersVersion string `json:"transformers_version"`
	}{true, BOSID, EOSID, transformersVersion}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	for name, data := range map[string][]byte{"config.json": cfg, "generation_config.json": gen} {
		if err := os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("testmodel: %w", err)
		}
	}

	specs := s.tensors()
	tensors := make([]safetensors.Tensor, len(specs))
	var scratch []float32 // reused for the dtypes that need conversion
	for i, t := range specs {
		var v []float32
		if dt == kernels.F32 {
			v = make([]float32, t.len()) // becomes the tensor's data
		} else {
			if cap(scratch) < t.len() {
				scratch = make([]float32, t.len())
			}
			v = scratch[:t.len()]
		}
		t.values(v, seed)
		tensors[i] = safetensors.Tensor{Name: t.hf, DType: dt, Shape: t.shape, Data: encode(v, dt)}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	return nil
}
