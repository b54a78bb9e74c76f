package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Config is the shape and numerics of a decoder-only model, independent of
// the file it came from.
type Config struct {
	Arch         string  // "llama", "mistral" or "qwen2"
	Hidden       int     // width of the residual stream
	Intermediate int     // width of the MLP
	Layers       int     // decoder layers
	Heads        int     // query heads
	KVHeads      int     // key/value heads (Heads for multi-head attention)
	HeadDim      int     // width of one head
	Vocab        int     // vocabulary size
	MaxPositions int     // context length the model was trained for
	RMSNormEps   float32 // epsilon inside RMSNorm
	RopeTheta    float64 // RoPE base frequency
	RopeScaling  *RopeScaling
	FreqFactors  []float32 // GGUF rope_freqs: per-frequency divisors (llama3 scaling as llama.cpp stores it)
	TiedEmbed    bool      // the LM head is the token embedding
	AttnBias     bool      // q/k/v projections have biases (Qwen2)
	BOS          int       // beginning-of-sequence id, -1 when none
	EOS          []int     // ids that end generation
}

// RopeScaling is the "llama3" frequency scaling of rope_scaling /
// rope_parameters in config.json.
type RopeScaling struct {
	Factor         float64
	LowFreqFactor  float64
	HighFreqFactor float64
	OriginalMaxPos int
}

// InDim returns the input width of projection m.
func (c *Config) InDim(m Module) int {
	switch m {
	case ModO:
		return c.Heads * c.HeadDim
	case ModDown:
		return c.Intermediate
	}
	return c.Hidden
}

// OutDim returns the output width of projection m.
func (c *Config) OutDim(m Module) int {
	switch m {
	case ModQ:
		return c.Heads * c.HeadDim
	case ModK, ModV:
		return c.KVHeads * c.HeadDim
	case ModGate, ModUp:
		return c.Intermediate
	}
	return c.Hidden
}

// Validate reports the first inconsistency in the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.Vocab <= 0 || c.Intermediate <= 0:
		return fmt.Errorf("model: config needs positive hidden size, layers, heads, vocab and intermediate size (got %d, %d, %d, %d, %d)",
			c.Hidden, c.Layers, c.Heads, c.Vocab, c.Intermediate)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("model: %d attention heads are not a multiple of %d key/value heads", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("model: head dim %d must be positive and even", c.HeadDim)
	case c.RopeTheta <= 0:
		return fmt.Errorf("model: rope theta %v must be positive", c.RopeTheta)
	case !(c.RMSNormEps >= 0):
		return fmt.Errorf("model: rms norm eps %v must be non-negative", c.RMSNormEps)
	}
	if c.Hidden > 1<<20 || c.Layers > 1<<12 || c.Heads > 1<<12 || c.Vocab > 1<<24 || c.Intermediate > 1<<22 || c.HeadDim > 1<<12 {
		return errors.New("model: config dimensions are implausibly large")
	}
	return nil
}

// InvFreq returns RoPE's inverse frequencies, HeadDim/2 of them, with
// llama3 scaling applied as transformers' _compute_llama3_parameters does.
func (c *Config) InvFreq() []float64 {
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	if len(c.FreqFactors) == half {
		for i := range inv {
			inv[i] /= float64(c.FreqFactors[i])
		}
	}
	s := c.RopeScaling
	if s == nil {
		return inv
	}
	lowWavelen := float64(s.OriginalMaxPos) / s.LowFreqFactor
	highWavelen := float64(s.OriginalMaxPos) / s.HighFreqFactor
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < highWavelen:
		case wavelen > lowWavelen:
			inv[i] = f / s.Factor
		default:
			smooth := (float64(s.OriginalMaxPos)/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			inv[i] = (1-smooth)*f/s.Factor + smooth*f
		}
	}
	return inv
}

// hfConfig is config.json as transformers 4.x and 5.x write it.
type hfConfig struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      int             `json:"num_key_value_heads"`
	HeadDim               int             `json:"head_dim"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RMSNormEps            float64         `json:"rms_norm_eps"`
	RopeTheta             float64         `json:"rope_theta"`
	RopeScaling           *hfRopeParams   `json:"rope_scaling"`
	RopeParameters        *hfRopeParams   `json:"rope_parameters"` // transformers 5
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         bool            `json:"attention_bias"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	HiddenAct             string          `json:"hidden_act"`
}

type hfRopeParams struct {
	RopeType                      string  `json:"rope_type"`
	Type                          string  `json:"type"` // older name of rope_type
	RopeTheta                     float64 `json:"rope_theta"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// archs maps config.json's architectures entry to Config.Arch.
var archs = map[string]string{
	"LlamaForCausalLM":   "llama",
	"MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM":   "qwen2",
}

// ReadHFConfig reads config.json, and generation_config.json when present,
// from a Hugging Face model directory.
func ReadHFConfig(dir string) (*Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	c, err := ParseHFConfig(data)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	if gen, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		var g struct {
			BOS json.RawMessage `json:"bos_token_id"`
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(gen, &g); err != nil {
			return nil, fmt.Errorf("model: %s: %w", filepath.Join(dir, "generation_config.json"), err)
		}
		if ids, err := tokenIDs(g.BOS); err == nil && len(ids) > 0 {
			c.BOS = ids[0]
		}
		if ids, err := tokenIDs(g.EOS); err == nil && len(ids) > 0 {
			c.EOS = ids
		}
	}
	return c, nil
}

// ParseHFConfig parses the contents of a Hugging Face config.json.
func ParseHFConfig(data []byte) (*Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	arch := ""
	for _, a := range h.Architectures {
		if archs[a] != "" {
			arch = archs[a]
			break
		}
	}
	if arch == "" {
		return nil, fmt.Errorf("unsupported architecture %q (model_type %q); supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM", h.Architectures, h.ModelType)
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return nil, fmt.Errorf("unsupported hidden_act %q, want silu", h.HiddenAct)
	}
	c := &Config{
		Arch:         arch,
		Hidden:       h.HiddenSize,
		Intermediate: h.IntermediateSize,
		Layers:       h.NumHiddenLayers,
		Heads:        h.NumAttentionHeads,
		KVHeads:      h.NumKeyValueHeads,
		HeadDim:      h.HeadDim,
		Vocab:        h.VocabSize,
		MaxPositions: h.MaxPositionEmbeddings,
		RMSNormEps:   float32(h.RMSNormEps),
		RopeTheta:    h.RopeTheta,
		AttnBias:     arch == "qwen2" || h.AttentionBias,
		BOS:          -1,
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	// tie_word_embeddings defaults to false for Llama/Mistral in
	// transformers; Qwen2 checkpoints always write it.
	c.TiedEmbed = h.TieWordEmbeddings != nil && *h.TieWordEmbeddings
	rope := h.RopeScaling
	if h.RopeParameters != nil {
		rope = h.RopeParameters
		if rope.RopeTheta != 0 {
			c.RopeTheta = rope.RopeTheta
		}
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if rope != nil {
		typ := rope.RopeType
		if typ == "" {
			typ = rope.Type
		}
		switch typ {
		case "", "default":
		case "llama3":
			if rope.Factor <= 0 || rope.LowFreqFactor <= 0 || rope.HighFreqFactor <= rope.LowFreqFactor || rope.OriginalMaxPositionEmbeddings <= 0 {
				return nil, fmt.Errorf("llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
			}
			c.RopeScaling = &RopeScaling{Factor: rope.Factor, LowFreqFactor: rope.LowFreqFactor,
				HighFreqFactor: rope.HighFreqFactor, OriginalMaxPos: rope.OriginalMaxPositionEmbeddings}
		default:
			return nil, fmt.Errorf("unsupported rope scaling type %q (supported: default, llama3)", typ)
		}
	}
	if ids, err := tokenIDs(h.BOSTokenID); err != nil {
		return nil, fmt.Errorf("bos_token_id: %w", err)
	} else if len(ids) > 0 {
		c.BOS = ids[0]
	}
	ids, err := tokenIDs(h.EOSTokenID)
	if err != nil {
		return nil, fmt.Errorf("eos_token_id: %w", err)
	}
	c.EOS = ids
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// tokenIDs decodes a token id field that may be null, a number or a list.
func tokenIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want a token id or a list of them, got %s", raw)
	}
	return many, nil
}
