package model

import "fmt"

// Module names one of the seven linear projections of a decoder layer.
type Module uint8

// The linear projections of a decoder layer, in the order PEFT lists them.
const (
	ModQ    Module = iota // self_attn.q_proj: hidden -> heads*head_dim
	ModK                  // self_attn.k_proj: hidden -> kv_heads*head_dim
	ModV                  // self_attn.v_proj: hidden -> kv_heads*head_dim
	ModO                  // self_attn.o_proj: heads*head_dim -> hidden
	ModGate               // mlp.gate_proj: hidden -> intermediate
	ModUp                 // mlp.up_proj: hidden -> intermediate
	ModDown               // mlp.down_proj: intermediate -> hidden
	NumModules
)

var moduleNames = [NumModules]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// String returns the Hugging Face name of the projection, e.g. "q_proj".
func (m Module) String() string {
	if m < NumModules {
		return moduleNames[m]
	}
	return fmt.Sprintf("Module(%d)", uint8(m))
}

// Path returns the projection's module path inside a Hugging Face decoder
// layer, e.g. "self_attn.q_proj" or "mlp.down_proj".
func (m Module) Path() string {
	if m <= ModO {
		return "self_attn." + m.String()
	}
	return "mlp." + m.String()
}

// ParseModule returns the Module whose Hugging Face name is s ("q_proj").
func ParseModule(s string) (Module, bool) {
	for i, n := range moduleNames {
		if n == s {
			return Module(i), true
		}
	}
	return 0, false
}

// Delta adds a per-token correction to the output of a linear projection,
// as a LoRA adapter does: y[t] += s·(x[t]·Aᵀ)·Bᵀ for the tokens t that use
// the adapter. x holds the projection's input for every token of the batch
// (n rows of the input width) and y its output (n rows of the output
// width); AddDelta adds to y and must not change x. Which token uses which
// correction is the implementation's business.
type Delta interface {
	AddDelta(y, x []float32, layer int, m Module)
}

var ggufNames = [NumModules]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// GGUFName returns the projection's tensor name inside a GGUF block,
// e.g. "attn_q" for ModQ (tensor "blk.0.attn_q.weight").
func (m Module) GGUFName() string { return ggufNames[m] }

// ParseGGUFModule returns the Module whose GGUF tensor name is s ("attn_q").
func ParseGGUFModule(s string) (Module, bool) {
	for i, n := range ggufNames {
		if n == s {
			return Module(i), true
		}
	}
	return 0, false
}

// UnpermuteRows converts the rows of a q or k projection (or of the LoRA
// B matrix that feeds one) from the interleaved RoPE order of GGUF Llama
// files (llama.cpp's convert_hf_to_gguf permute: within a head, dimension
// pairs 2j, 2j+1) to Hugging Face's rotate_half order (pairs j, j+half).
// src holds rows of rowBytes bytes each, heads*headDim rows in all; the
// result is a new slice.
func UnpermuteRows(src []byte, heads, headDim, rowBytes int) []byte {
	return moveRows(src, heads, headDim, rowBytes, false)
}

// PermuteRows is the inverse of UnpermuteRows: Hugging Face rotate_half
// rows to llama.cpp's interleaved order, as its converters write GGUF
// Llama q/k weights and LoRA B matrices.
func PermuteRows(src []byte, heads, headDim, rowBytes int) []byte {
	return moveRows(src, heads, headDim, rowBytes, true)
}

// moveRows maps HF row h*headDim + i*half + j to GGUF row h*headDim + 2j + i
// (toGGUF) or back.
func moveRows(src []byte, heads, headDim, rowBytes int, toGGUF bool) []byte {
	dst := make([]byte, len(src))
	half := headDim / 2
	for h := range heads {
		for i := range 2 {
			for j := range half {
				hf, gg := h*headDim+i*half+j, h*headDim+2*j+i
				from, to := gg, hf
				if toGGUF {
					from, to = hf, gg
				}
				copy(dst[to*rowBytes:(to+1)*rowBytes], src[from*rowBytes:(from+1)*rowBytes])
			}
		}
	}
	return dst
}
