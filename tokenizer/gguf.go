package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// GGUFVocab is the tokenizer part of a GGUF file's metadata (the
// tokenizer.ggml.* keys), filled in by the caller.
type GGUFVocab struct {
	Model  string    // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre    string    // tokenizer.ggml.pre, e.g. "llama-bpe", "qwen2", "gpt-2", "default"
	Tokens []string  // tokenizer.ggml.tokens
	Scores []float32 // tokenizer.ggml.scores; nil means all zero
	Merges []string  // tokenizer.ggml.merges ("gpt2"), each "left right"

	// TokenTypes is tokenizer.ggml.token_type: 1 normal, 2 unknown,
	// 3 control, 4 user defined, 5 unused, 6 byte. When nil, the special
	// ids below are control tokens, the <0xAB> pieces of a "llama"
	// vocabulary are bytes and the rest is normal.
	TokenTypes []int32

	// Special token ids; -1 when the key is absent. For the "llama" model
	// llama.cpp's defaults apply to absent keys: BOS 1, EOS 2, UNK 0.
	BOS, EOS, UNK, PAD int

	// AddBOS and AddEOS are tokenizer.ggml.add_bos_token / add_eos_token;
	// HasAddBOS and HasAddEOS tell whether the keys were present. Absent
	// keys take llama.cpp's defaults: BOS for "llama" and for the Llama 3
	// pre-tokenizers, no EOS.
	AddBOS, AddEOS       bool
	HasAddBOS, HasAddEOS bool

	// AddSpacePrefix is tokenizer.ggml.add_space_prefix, nil when absent
	// (then true for "llama", false for "gpt2").
	AddSpacePrefix *bool

	// ChatTemplate is tokenizer.chat_template, "" when absent.
	ChatTemplate string
	// Name is general.name. llama.cpp sets token attributes by model name
	// (Phi-3's special tokens swallow the white space after them), so it
	// may matter; "" is fine otherwise.
	Name string
}

// FromGGUF builds a tokenizer from a GGUF vocabulary. It encodes and
// decodes as llama.cpp does: the "llama" model with llm_tokenizer_spm, the
// "gpt2" model with llm_tokenizer_bpe and the pre-tokenizer tokenizer.ggml.pre
// names ("llama-bpe"/"llama3" and relatives, "qwen2", "gpt-2"; "default"
// and "" get the GPT-2 expression).
func FromGGUF(v GGUFVocab) (*Tokenizer, error) {
	t, err := fromGGUF(v)
	if err != nil {
		return nil, &FormatError{Source: "GGUF vocabulary", Err: err}
	}
	return t, nil
}

// GGUF token types.
const (
	ggufNormal      = 1
	ggufUnknown     = 2
	ggufControl     = 3
	ggufUserDefined = 4
	ggufUnused      = 5
	ggufByte        = 6
)

func fromGGUF(v GGUFVocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	switch {
	case n == 0:
		return nil, errors.New("tokenizer.ggml.tokens is empty")
	case n >= maxVocab:
		return nil, fmt.Errorf("tokenizer.ggml.tokens has %d entries", n)
	case v.Scores != nil && len(v.Scores) != n:
		return nil, fmt.Errorf("tokenizer.ggml.scores has %d entries for %d tokens", len(v.Scores), n)
	case v.TokenTypes != nil && len(v.TokenTypes) != n:
		return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(v.TokenTypes), n)
	}
	inRange := func(id int) int {
		if id < 0 || id >= n {
			return -1 // llama.cpp ignores an id outside the vocabulary
		}
		return id
	}
	bos, eos, unk, pad := inRange(v.BOS), inRange(v.EOS), inRange(v.UNK), inRange(v.PAD)
	if v.Model == "llama" {
		if v.BOS < 0 {
			bos = inRange(1)
		}
		if v.EOS < 0 {
			eos = inRange(2)
		}
		if v.UNK < 0 {
			unk = inRange(0)
		}
	}

	t := &Tokenizer{
		pieces: slices.Clone(v.Tokens),
		kinds:  make([]tokenKind, n),
		ids:    make(map[string]int, n),
		bos:    bos,
		eos:    eos,
	}
	for id, p := range t.pieces {
		t.ids[p] = id // a repeated piece maps to its last id, as in llama.cpp
		if v.TokenTypes == nil {
			if _, ok := parseByteToken(p); ok && v.Model == "llama" {
				t.kinds[id] = kindByte
			}
			continue
		}
		switch v.TokenTypes[id] {
		case ggufUnknown:
			t.kinds[id] = kindUnknown
		case ggufControl:
			t.kinds[id] = kindControl
		case ggufUserDefined:
			t.kinds[id] = kindUserDefined
		case ggufUnused:
			t.kinds[id] = kindUnused
		case ggufByte:
			t.kinds[id] = kindByte
		}
	}
	if v.TokenTypes == nil {
		for _, id := range []int{bos, eos, pad} {
			if id >= 0 {
				t.kinds[id] = kindControl
			}
		}
		if unk >= 0 {
			t.kinds[unk] = kindUnknown
		}
	}
	part := newPartitioner(ggufSpecials(t, v.Name))

	var addBOS bool
	switch v.Model {
	case "llama":
		addBOS = true
		addSpacePrefix := v.AddSpacePrefix == nil || *v.AddSpacePrefix
		scores := v.Scores
		if scores == nil {
			scores = make([]float32, n)
		}
		m := &spmModel{vocab: t.ids, scores: scores, unk: unk}
		for b := range m.byteIDs {
			m.byteIDs[b] = -1
			if id, ok := t.ids[byteTokenName(byte(b))]; ok {
				m.byteIDs[b] = id
			}
		}
		t.enc = &spmEncoder{model: m, part: part, addSpacePrefix: addSpacePrefix}
		first := firstSpaceKeep
		if addSpacePrefix {
			first = firstSpaceLlamaCpp
		}
		t.dec = newSPMDecodeSpec(t.pieces, t.kinds, first)
	case "gpt2":
		sp, ignoreMerges, llama3, err := ggufPreTokenizer(v.Pre)
		if err != nil {
			return nil, err
		}
		addBOS = llama3
		merges := make([][2]string, len(v.Merges))
		for i, s := range v.Merges {
			if merges[i], err = splitMerge(s); err != nil {
				return nil, fmt.Errorf("tokenizer.ggml.merges[%d]: %w", i, err)
			}
		}
		m := newBPEModel(t.ids, merges)
		m.ignoreMerges = ignoreMerges
		m.llamaBytes = true
		t.enc = &gpt2Encoder{model: m, splitter: sp, part: part}
		t.dec = newBPEDecodeSpec(t.pieces, t.kinds)
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (want \"llama\" or \"gpt2\")", v.Model)
	}
	if v.HasAddBOS {
		addBOS = v.AddBOS
	}
	if addBOS && bos >= 0 {
		t.prefix = []int{bos}
	}
	if v.HasAddEOS && v.AddEOS && eos >= 0 {
		t.suffix = []int{eos}
	}
	if v.ChatTemplate != "" {
		t.SetChatTemplate(v.ChatTemplate)
	}
	t.finish()
	return t, nil
}

// ggufPreTokenizer maps tokenizer.ggml.pre to a splitter, as llama.cpp's
// llama_vocab::load does. llama3 reports the Llama 3 family, which also
// adds BOS by default.
func ggufPreTokenizer(pre string) (sp splitter, ignoreMerges, llama3 bool, err error) {
	switch pre {
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
		return splitLlama3, true, true, nil
	case "qwen2", "deepseek-r1-qwen":
		return splitQwen2, false, false, nil
	case "gpt-2", "phi-2", "roberta-bpe", "jina-es", "jina-de", "gigachat",
		"jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code":
		return splitGPT2, false, false, nil
	case "default", "":
		// llama.cpp's "default" is a chain of four expressions that no
		// current model uses; GPT-2's expression is the common intent.
		return splitGPT2, false, false, nil
	}
	return 0, false, false, fmt.Errorf("tokenizer.ggml.pre %q is not supported", pre)
}

// ggufSpecials lists the tokens llama.cpp splits out of text before
// tokenizing: control, unknown and user-defined entries, with the
// attributes llama.cpp sets by model name.
func ggufSpecials(t *Tokenizer, name string) []specialToken {
	name = strings.ToLower(name)
	phi3 := strings.Contains(name, "phi-3") || strings.Contains(name, "phi3")
	var toks []specialToken
	for id, k := range t.kinds {
		if k != kindControl && k != kindUnknown && k != kindUserDefined {
			continue
		}
		st := specialToken{id: id, text: t.pieces[id], needsParse: k != kindUserDefined}
		if phi3 {
			switch st.text {
			case "<unk>", "<s>", "<|endoftext|>":
			default:
				st.rstrip = true
			}
		}
		toks = append(toks, st)
	}
	return toks
}

// spmEncoder encodes a SentencePiece vocabulary as llama.cpp does: special
// tokens are split out, and a space is put in front of text that starts
// the input or follows a special token.
type spmEncoder struct {
	model          *spmModel
	part           *partitioner
	addSpacePrefix bool
}

func (e *spmEncoder) encode(dst []int, text string, parseSpecial bool) []int {
	if text == "" {
		return dst
	}
	prevSpecial := true
	for _, sg := range e.part.split(text, parseSpecial) {
		if sg.id >= 0 {
			dst = append(dst, sg.id)
			prevSpecial = true
			continue
		}
		s := sg.text
		if e.addSpacePrefix && prevSpecial {
			s = " " + s
		}
		dst = e.model.encode(dst, strings.ReplaceAll(s, " ", "▁"))
		prevSpecial = false
	}
	return dst
}

// gpt2Encoder encodes a byte-level BPE vocabulary as llama.cpp does.
type gpt2Encoder struct {
	model    *bpeModel
	splitter splitter
	part     *partitioner
}

func (e *gpt2Encoder) encode(dst []int, text string, parseSpecial bool) []int {
	if text == "" {
		return dst
	}
	var sc bpeScratch
	var words []string
	var buf []byte
	for _, sg := range e.part.split(text, parseSpecial) {
		if sg.id >= 0 {
			dst = append(dst, sg.id)
			continue
		}
		words = e.splitter.split(words[:0], sg.text)
		for _, w := range words {
			buf = appendByteLevel(buf[:0], w)
			dst = e.model.encodeWord(dst, string(buf), &sc)
		}
	}
	return dst
}
