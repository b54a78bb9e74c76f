package tokenizer

import (
	"sync/atomic"
)

// tokenKind classifies a vocabulary entry. The values follow llama.cpp's
// token types; Hugging Face added tokens map to kindControl (special) or
// kindUserDefined (not special).
type tokenKind uint8

const (
	kindNormal      tokenKind = iota
	kindUnknown               // the unknown token; special
	kindControl               // special token such as BOS, EOS or <|im_start|>
	kindUserDefined           // added token that is not special
	kindUnused                // reserved entry, never rendered
	kindByte                  // <0xAB> byte token of a SentencePiece vocabulary
)

// isSpecial reports whether tokens of kind k are special: split out of the
// text only when special tokens are parsed, and skipped by Decode.
func (k tokenKind) isSpecial() bool { return k == kindControl || k == kindUnknown }

// encoder turns text into ids for one tokenizer family. It splits out added
// tokens itself, because the families do that differently.
type encoder interface {
	// encode appends the ids of text to dst. parseSpecial reports whether
	// special tokens written in the text are recognised.
	encode(dst []int, text string, parseSpecial bool) []int
}

// Tokenizer converts text to token ids and back. Safe for concurrent use.
type Tokenizer struct {
	pieces []string       // id -> raw vocabulary piece
	ids    map[string]int // raw piece -> id (the model vocabulary for Hugging Face files)
	added  map[string]int // Hugging Face added tokens, which take precedence over ids
	kinds  []tokenKind    // id -> kind

	bos, eos int   // -1 when absent
	prefix   []int // ids Encode puts in front when addSpecial is set
	suffix   []int // ids Encode appends when addSpecial is set
	eog      []int // ids that end generation, EOS first

	enc encoder
	dec *decodeSpec

	chatTemplate atomic.Pointer[string]
}

// EncodeOptions controls EncodeWith.
type EncodeOptions struct {
	// AddSpecial adds the BOS/EOS tokens the tokenizer's configuration asks
	// for (Hugging Face post-processor and add_bos_token/add_eos_token,
	// GGUF tokenizer.ggml.add_bos_token/add_eos_token).
	AddSpecial bool
	// ParseSpecial recognises special tokens such as "<|im_start|>" written
	// in the text. When false their text is tokenized like any other text,
	// which is what untrusted user content should get. Added tokens that are
	// not special are always recognised, as in Hugging Face and llama.cpp.
	ParseSpecial bool
}

// Encode returns the token ids of text. addSpecial adds BOS/EOS as the
// tokenizer's configuration says; special and added tokens written in the
// text (e.g. "<|im_start|>") are recognised, as Hugging Face does by
// default and llama.cpp does with parse_special.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	return t.EncodeWith(text, EncodeOptions{AddSpecial: addSpecial, ParseSpecial: true})
}

// EncodeWith returns the token ids of text under the given options.
func (t *Tokenizer) EncodeWith(text string, o EncodeOptions) []int {
	out := make([]int, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if o.AddSpecial {
		out = append(out, t.prefix...)
	}
	out = t.enc.encode(out, text, o.ParseSpecial)
	if o.AddSpecial {
		out = append(out, t.suffix...)
	}
	return out
}

// VocabSize returns the number of token ids, including added tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// BOS returns the beginning-of-sequence token id, or -1 if there is none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence token id, or -1 if there is none.
func (t *Tokenizer) EOS() int { return t.eos }

// AddsBOS reports whether Encode with addSpecial puts BOS in front.
func (t *Tokenizer) AddsBOS() bool {
	return t.bos >= 0 && len(t.prefix) > 0 && t.prefix[0] == t.bos
}

// AddsEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddsEOS() bool {
	return t.eos >= 0 && len(t.suffix) > 0 && t.suffix[len(t.suffix)-1] == t.eos
}

// EOG returns the ids that end generation: EOS followed by the special
// end-of-turn tokens the vocabulary has (<|eot_id|>, <|im_end|>, <|end|>,
// <end_of_turn>, <|endoftext|> and the like), as llama.cpp collects them.
// The caller must not modify the slice.
func (t *Tokenizer) EOG() []int { return t.eog }

// IsEOG reports whether id is one of the ids EOG returns.
func (t *Tokenizer) IsEOG(id int) bool {
	for _, e := range t.eog {
		if e == id {
			return true
		}
	}
	return false
}

// TokenString returns the raw vocabulary piece of id (for example "▁the",
// "Ġthe" or "<0x0A>"), or "" if id is out of range.
func (t *Tokenizer) TokenString(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// ID returns the id of a raw vocabulary piece.
func (t *Tokenizer) ID(piece string) (int, bool) {
	if id, ok := t.added[piece]; ok {
		return id, true
	}
	id, ok := t.ids[piece]
	return id, ok
}

// IsSpecial reports whether id is a special token: a control token such as
// BOS, EOS or <|im_start|>, or the unknown token. Decode skips them.
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.kinds) && t.kinds[id].isSpecial()
}

// ChatTemplate returns the Jinja chat template from tokenizer_config.json,
// GGUFVocab.ChatTemplate or SetChatTemplate; "" if there is none.
func (t *Tokenizer) ChatTemplate() string {
	if p := t.chatTemplate.Load(); p != nil {
		return *p
	}
	return ""
}

// SetChatTemplate replaces the chat template. It may be called while other
// goroutines use the Tokenizer.
func (t *Tokenizer) SetChatTemplate(s string) { t.chatTemplate.Store(&s) }

// eogNames are the texts of special tokens that end a turn in the chat
// formats llama.cpp knows.
var eogNames = []string{
	"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
	"<|endoftext|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>",
	"<|return|>", "<|call|>", "<|end_of_text|>",
}

// finish collects the end-of-generation ids once the vocabulary is built.
func (t *Tokenizer) finish() {
	t.eog = t.eog[:0]
	if t.eos >= 0 {
		t.eog = append(t.eog, t.eos)
	}
	for _, name := range eogNames {
		id, ok := t.ID(name)
		if !ok || id == t.eos || !t.kinds[id].isSpecial() {
			continue
		}
		t.eog = append(t.eog, id)
	}
}
