package testmodel

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"

	"github.com/switchyard-ai/switchyard/kernels"
)

// Shape is the architecture of a test model: the fields of a Hugging Face
// config.json that decide the tensors and the numerics.
type Shape struct {
	Hidden       int     // hidden_size
	Intermediate int     // intermediate_size
	Layers       int     // num_hidden_layers
	Heads        int     // num_attention_heads
	KVHeads      int     // num_key_value_heads
	HeadDim      int     // head_dim
	Vocab        int     // vocab_size
	MaxPositions int     // max_position_embeddings
	Tied         bool    // tie_word_embeddings: no lm_head / output tensor
	Arch         string  // "llama" or "qwen2" (q/k/v biases)
	RopeTheta    float64 // rope_theta
	RMSNormEps   float64 // rms_norm_eps
}

// SmolLM2_135M is the shape of HuggingFaceTB/SmolLM2-135M.
var SmolLM2_135M = Shape{Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64,
	Vocab: 49152, MaxPositions: 8192, Tied: true, Arch: "llama", RopeTheta: 100000, RMSNormEps: 1e-5}

// Tiny is a Llama small enough for unit tests (about 130k parameters)
// that still has grouped-query attention, two layers, an untied LM head
// and a vocabulary large enough for WriteGGUF's byte-fallback tokenizer. Every input width
// is a multiple of 32, so it can be stored as Q8_0.
var Tiny = Shape{Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16,
	Vocab: 320, MaxPositions: 256, Tied: false, Arch: "llama", RopeTheta: 10000, RMSNormEps: 1e-5}

// TinyQwen2 is Tiny as a Qwen2 model: q/k/v biases, a tied LM head and
// Qwen2's rope theta and RMSNorm epsilon.
var TinyQwen2 = Shape{Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16,
	Vocab: 320, MaxPositions: 256, Tied: true, Arch: "qwen2", RopeTheta: 1000000, RMSNormEps: 1e-6}

// Special token ids of every test model.
const (
	UnkID = 0 // <unk>
	BOSID = 1 // <s>
	EOSID = 2 // </s>
)

// Validate reports the first reason s cannot describe a model.
func (s Shape) Validate() error {
	switch {
	case s.Arch != "llama" && s.Arch != "qwen2":
		return fmt.Errorf("testmodel: arch %q, want llama or qwen2", s.Arch)
	case s.Hidden <= 0 || s.Intermediate <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.MaxPositions <= 0:
		return fmt.Errorf("testmodel: hidden %d, intermediate %d, layers %d, heads %d, kv heads %d and max positions %d must all be positive",
			s.Hidden, s.Intermediate, s.Layers, s.Heads, s.KVHeads, s.MaxPositions)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("testmodel: %d heads are not a multiple of %d kv heads", s.Heads, s.KVHeads)
	case s.HeadDim <= 0 || s.HeadDim%2 != 0:
		return fmt.Errorf("testmodel: head dim %d must be positive and even", s.HeadDim)
	case s.Vocab <= EOSID:
		return fmt.Errorf("testmodel: vocab %d too small for the special tokens", s.Vocab)
	case !(s.RopeTheta > 0) || !(s.RMSNormEps > 0):
		return fmt.Errorf("testmodel: rope theta %v and rms norm eps %v must be positive", s.RopeTheta, s.RMSNormEps)
	}
	return nil
}

// Params returns the number of weights of the model.
func (s Shape) Params() int {
	n := 0
	for _, t := range s.tensors() {
		n += t.len()
	}
	return n
}

// kind says how a tensor's values are drawn and stored.
type kind uint8

const (
	matrix kind = iota // N(0, 0.02²); stored in the requested dtype
	norm               // 1 + 0.1·N(0, 1); F32 in GGUF
	bias               // N(0, 0.02²); F32 in GGUF
)

// tensor is one weight of a model, in Hugging Face layout.
type tensor struct {
	hf, gguf string // names in the two formats
	shape    []int  // [out, in] for matrices (torch.nn.Linear layout), [n] otherwise
	kind     kind
	permute  int // GGUF llama q/k: heads whose rows llama.cpp interleaves; 0 for none
}

func (t tensor) len() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// tensors lists the model's weights in Hugging Face checkpoint order.
func (s Shape) tensors() []tensor {
	q, kv := s.Heads*s.HeadDim, s.KVHeads*s.HeadDim
	permQ, permK := 0, 0
	if s.Arch == "llama" {
		permQ, permK = s.Heads, s.KVHeads
	}
	ts := []tensor{{"model.embed_tokens.weight", "token_embd.weight", []int{s.Vocab, s.Hidden}, matrix, 0}}
	for i := range s.Layers {
		hf := "model.layers." + strconv.Itoa(i) + "."
		gg := "blk." + strconv.Itoa(i) + "."
		ts = append(ts,
			tensor{hf + "input_layernorm.weight", gg + "attn_norm.weight", []int{s.Hidden}, norm, 0},
			tensor{hf + "self_attn.q_proj.weight", gg + "attn_q.weight", []int{q, s.Hidden}, matrix, permQ},
			tensor{hf + "self_attn.k_proj.weight", gg + "attn_k.weight", []int{kv, s.Hidden}, matrix, permK},
			tensor{hf + "self_attn.v_proj.weight", gg + "attn_v.weight", []int{kv, s.Hidden}, matrix, 0},
		)
		if s.Arch == "qwen2" {
			ts = append(ts,
				tensor{hf + "self_attn.q_proj.bias", gg + "attn_q.bias", []int{q}, bias, 0},
				tensor{hf + "self_attn.k_proj.bias", gg + "attn_k.bias", []int{kv}, bias, 0},
				tensor{hf + "self_attn.v_proj.bias", gg + "attn_v.bias", []int{kv}, bias, 0},
			)
		}
		ts = append(ts,
			tensor{hf + "self_attn.o_proj.weight", gg + "attn_output.weight", []int{s.Hidden, q}, matrix, 0},
			tensor{hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", []int{s.Hidden}, norm, 0},
			tensor{hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", []int{s.Intermediate, s.Hidden}, matrix, 0},
			tensor{hf + "mlp.up_proj.weight", gg + "ffn_up.weight", []int{s.Intermediate, s.Hidden}, matrix, 0},
			tensor{hf + "mlp.down_proj.weight", gg + "ffn_down.weight", []int{s.Hidden, s.Intermediate}, matrix, 0},
		)
	}
	ts = append(ts, tensor{"model.norm.weight", "output_norm.weight", []int{s.Hidden}, norm, 0})
	if !s.Tied {
		ts = append(ts, tensor{"lm_head.weight", "output.weight", []int{s.Vocab, s.Hidden}, matrix, 0})
	}
	return ts
}

// values fills dst (t.len() values) with t's weights for seed, in Hugging
// Face row order. Each tensor has its own stream, keyed by its name, so
// the values do not depend on which other tensors are generated.
func (t tensor) values(dst []float32, seed uint64) {
	h := fnv.New64a()
	h.Write([]byte(t.hf))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	switch t.kind {
	case norm:
		for i := range dst {
			dst[i] = float32(1 + 0.1*r.NormFloat64())
		}
	default:
		for i := range dst {
			dst[i] = float32(0.02 * r.NormFloat64())
		}
	}
}

// Values returns the float32 weights of the tensor with the given Hugging
// Face name as WriteHF and WriteGGUF draw them for seed, before any
// rounding to a storage type and in Hugging Face row order, or false if
// the model has no such tensor.
func (s Shape) Values(hfName string, seed uint64) ([]float32, bool) {
	for _, t := range s.tensors() {
		if t.hf == hfName {
			v := make([]float32, t.len())
			t.values(v, seed)
			return v, true
		}
	}
	return nil, false
}

// permuteRows reorders the rows of a q or k projection from Hugging Face's
// rotate_half order to the interleaved order of llama.cpp's
// LlamaModel.permute: within each of heads heads, row i*half + j moves to
// row 2j + i. src holds heads*headDim rows of cols values; dst receives
// the result and must not overlap src.
func permuteRows(dst, src []float32, heads, cols int) {
	headDim := len(src) / cols / heads
	half := headDim / 2
	for h := range heads {
		for i := range 2 {
			for j := range half {
				from := h*headDim + i*half + j
				to := h*headDim + 2*j + i
				copy(dst[to*cols:(to+1)*cols], src[from*cols:(from+1)*cols])
			}
		}
	}
}

// encode returns v stored as dt. For F32 the result aliases v.
func encode(v []float32, dt kernels.DType) []byte {
	if dt == kernels.F32 {
		return kernels.F32Bytes(v)
	}
	return kernels.EncodeRow(make([]byte, 0, dt.RowBytes(len(v))), dt, v)
}
