package testmodel

import (
	"fmt"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
)

// fileTypes maps a matrix dtype to llama.cpp's general.file_type
// (enum llama_ftype).
var fileTypes = map[kernels.DType]uint32{
	kernels.F32:  0,  // LLAMA_FTYPE_ALL_F32
	kernels.F16:  1,  // LLAMA_FTYPE_MOSTLY_F16
	kernels.Q8_0: 7,  // LLAMA_FTYPE_MOSTLY_Q8_0
	kernels.Q4_K: 15, // LLAMA_FTYPE_MOSTLY_Q4_K_M
	kernels.Q6_K: 18, // LLAMA_FTYPE_MOSTLY_Q6_K
	kernels.Q5_0: 8,  // LLAMA_FTYPE_MOSTLY_Q5_0
	kernels.Q4_0: 2,  // LLAMA_FTYPE_MOSTLY_Q4_0
	kernels.BF16: 32, // LLAMA_FTYPE_MOSTLY_BF16
}

// llama.cpp's token types (enum llama_token_type).
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenByte    = 6
)

// minGGUFVocab is the smallest vocabulary WriteGGUF's tokenizer fits in:
// three special tokens and 256 byte tokens.
const minGGUFVocab = 3 + 256

// WriteGGUF writes the model that WriteHF writes for s and seed as a GGUF
// v3 file, as llama.cpp's convert_hf_to_gguf.py converts it: the
// architecture's hyperparameters under "{arch}.", tensors under their
// llama.cpp names (token_embd, blk.N.attn_q, …, output_norm, output unless
// tied), and for arch llama the rows of attn_q and attn_k permuted to
// interleaved RoPE order within each head. Matrices, token_embd included,
// are stored as dt (F32, F16, BF16, Q8_0, Q4_K or Q6_K); norms and biases
// stay F32. For Q4_K the file is laid out as llama-quantize's Q4_K_M
// lays it out: token_embd and output in Q6_K, the other matrices in Q4_K,
// and, as there, a matrix whose rows are not whole 256-value super-blocks
// in Q5_0 instead of Q4_K and in Q8_0 instead of Q6_K.
//
// The file also holds a minimal SentencePiece ("llama") vocabulary so that
// llama.cpp can load it: <unk>, <s>, </s>, the byte tokens <0x00> to
// <0xFF>, then filler pieces up to s.Vocab, which must be at least 259.
// The file is replaced atomically.
func WriteGGUF(path string, s Shape, dt kernels.DType, seed uint64) error {
	if err := s.Validate(); err != nil {
		return err
	}
	ftype, ok := fileTypes[dt]
	if !ok {
		return fmt.Errorf("testmodel: GGUF matrices cannot be %v; want F32, F16, BF16, Q8_0, Q4_K or Q6_K", dt)
	}
	if s.Vocab < minGGUFVocab {
		return fmt.Errorf("testmodel: vocab %d is smaller than the %d tokens of the GGUF tokenizer", s.Vocab, minGGUFVocab)
	}
	if bs := dt.BlockSize(); bs > 1 && dt != kernels.Q4_K {
		for _, n := range []int{s.Hidden, s.Heads * s.HeadDim, s.Intermediate} {
			if n%bs != 0 {
				return fmt.Errorf("testmodel: %v needs input widths that are multiples of %d, got %d", dt, bs, n)
			}
		}
	}

	w := gguf.NewWriter()
	a := s.Arch
	w.AddString("general.architecture", a)
	w.AddString("general.name", "switchyard-testmodel")
	w.AddUint32(a+".context_length", uint32(s.MaxPositions))
	w.AddUint32(a+".embedding_length", uint32(s.Hidden))
	w.AddUint32(a+".block_count", uint32(s.Layers))
	w.AddUint32(a+".feed_forward_length", uint32(s.Intermediate))
	w.AddUint32(a+".attention.head_count", uint32(s.Heads))
	w.AddUint32(a+".attention.head_count_kv", uint32(s.KVHeads))
	w.AddFloat32(a+".rope.freq_base", float32(s.RopeTheta))
	w.AddFloat32(a+".attention.layer_norm_rms_epsilon", float32(s.RMSNormEps))
	w.AddUint32(a+".rope.dimension_count", uint32(s.HeadDim))
	if s.HeadDim*s.Heads != s.Hidden {
		w.AddUint32(a+".attention.key_length", uint32(s.HeadDim))
		w.AddUint32(a+".attention.value_length", uint32(s.HeadDim))
	}
	if a == "llama" {
		w.AddUint32(a+".vocab_size", uint32(s.Vocab))
	}
	w.AddUint32("general.file_type", ftype)
	addVocab(w, s.Vocab)

	var scratch, permuted []float32
	for _, t := range s.tensors() {
		n := t.len()
		if cap(scratch) < n {
			scratch = make([]float32, n)
		}
		v := scratch[:n]
		t.values(v, seed)
		if t.permute > 0 {
			if cap(permuted) < n {
				permuted = make([]float32, n)
			}
			permuteRows(permuted[:n], v, t.permute, t.shape[1])
			v = permuted[:n]
		}
		tdt := dt
		if t.kind != matrix {
			tdt = kernels.F32 // llama.cpp keeps 1-D tensors in F32
		} else if dt == kernels.Q4_K {
			if t.gguf == "token_embd.weight" || t.gguf == "output.weight" {
				tdt = kernels.Q6_K
			}
			if cols := t.shape[len(t.shape)-1]; cols%kernels.KBlock != 0 { // llama-quantize's fallbacks
				tdt = map[kernels.DType]kernels.DType{kernels.Q4_K: kernels.Q5_0, kernels.Q6_K: kernels.Q8_0}[tdt]
				if cols%kernels.Q8_0Block != 0 {
					return fmt.Errorf("testmodel: %s has %d columns, not a multiple of %d", t.gguf, cols, kernels.Q8_0Block)
				}
			}
		}
		// The writer keeps data until WriteFile: give it its own copy.
		data := kernels.EncodeRow(make([]byte, 0, tdt.RowBytes(n)), tdt, v)
		if err := w.AddTensor(t.gguf, tdt, t.shape, data); err != nil {
			return fmt.Errorf("testmodel: %s: %w", t.gguf, err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	return nil
}

// addVocab adds the tokenizer of a vocabulary of n tokens (see vocab).
func addVocab(w *gguf.Writer, n int) {
	tokens, scores, types := vocab(n)
	w.AddString("tokenizer.ggml.model", "llama")
	w.AddString("tokenizer.ggml.pre", "default")
	w.AddStrings("tokenizer.ggml.tokens", tokens)
	w.AddFloat32s("tokenizer.ggml.scores", scores)
	w.AddInt32s("tokenizer.ggml.token_type", types)
	w.AddUint32("tokenizer.ggml.bos_token_id", BOSID)
	w.AddUint32("tokenizer.ggml.eos_token_id", EOSID)
	w.AddUint32("tokenizer.ggml.unknown_token_id", UnkID)
	w.AddBool("tokenizer.ggml.add_bos_token", true)
	w.AddBool("tokenizer.ggml.add_eos_token", false)
}

// vocab returns a SentencePiece vocabulary of n >= minGGUFVocab tokens
// with their scores and llama.cpp token types: the special tokens, the
// 256 byte tokens and then filler pieces, every string of one, two,
// three … letters of fillerAlphabet in turn, scored so that earlier
// (shorter) pieces merge first.
func vocab(n int) (tokens []string, scores []float32, types []int32) {
	tokens = make([]string, 0, n)
	scores = make([]float32, 0, n)
	types = make([]int32, 0, n)
	add := func(tok string, score float32, typ int32) {
		tokens = append(tokens, tok)
		scores = append(scores, score)
		types = append(types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	alpha := []rune(fillerAlphabet)
	for length := 1; len(tokens) < n; length++ {
		idx := make([]int, length) // odometer over alpha
		for len(tokens) < n {
			piece := make([]rune, length)
			for i, k := range idx {
				piece[i] = alpha[k]
			}
			add(string(piece), -float32(len(tokens)), tokenNormal)
			i := length - 1
			for ; i >= 0; i-- {
				if idx[i]++; idx[i] < len(alpha) {
					break
				}
				idx[i] = 0
			}
			if i < 0 {
				break
			}
		}
	}
	return tokens, scores, types
}

// fillerAlphabet is what the filler pieces are spelled with: SentencePiece's
// word-boundary mark and the lowercase letters, most frequent first.
const fillerAlphabet = "▁etaoinshrdlucmfwypvbgkjqxz"
