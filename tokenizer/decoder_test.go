package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// allTokenizers loads every real tokenizer of the shared data.
func allTokenizers(t testing.TB) map[string]*Tokenizer {
	t.Helper()
	m := map[string]*Tokenizer{
		"hf/llama3":    hfTokenizer(t, "tokenizers", "hf", "llama3"),
		"hf/qwen3":     hfTokenizer(t, "tokenizers", "hf", "qwen3"),
		"hf/mistral":   hfTokenizer(t, "tokenizers", "hf", "mistral"),
		"hf/stories":   hfTokenizer(t, "fixtures", "stories260K_hf", "model"),
		"llama2c":      llama2cTokenizer(t),
		"gguf/stories": ggufTokenizer(t, "models", "stories260K", "stories260K-f32.gguf"),
	}
	for _, name := range []string{"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3"} {
		m["gguf/"+name] = ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-"+name+".gguf")
	}
	return m
}

// byteLevel reports whether a tokenizer's text survives Encode/Decode
// unchanged (byte-level BPE).
func byteLevel(name string) bool {
	switch name {
	case "hf/llama3", "hf/qwen3", "gguf/llama-bpe", "gguf/qwen2", "gguf/gpt-2":
		return true
	}
	return false
}

// idPool lists the ids that make decoding hard: byte tokens and special
// tokens.
type idPool struct{ bytes, special []int }

func newIDPool(tok *Tokenizer) idPool {
	var p idPool
	for id := range tok.VocabSize() {
		if _, ok := parseByteToken(tok.TokenString(id)); ok {
			p.bytes = append(p.bytes, id)
		}
		if tok.IsSpecial(id) {
			p.special = append(p.special, id)
		}
	}
	return p
}

// randomIDs favours byte tokens, special tokens, the first ids and
// out-of-range ids.
func randomIDs(rng *rand.Rand, tok *Tokenizer, p idPool, n int) []int {
	bytes, special := p.bytes, p.special
	ids := make([]int, n)
	for i := range ids {
		switch k := rng.IntN(10); {
		case k < 3 && len(bytes) > 0:
			ids[i] = bytes[rng.IntN(len(bytes))]
		case k == 3 && len(special) > 0:
			ids[i] = special[rng.IntN(len(special))]
		case k == 4:
			ids[i] = rng.IntN(300) // for byte-level vocabularies, single bytes
		case k == 5 && i%7 == 0:
			ids[i] = tok.VocabSize() + rng.IntN(3) - 1 // partly out of range
		default:
			ids[i] = rng.IntN(tok.VocabSize())
		}
	}
	return ids
}

// checkStream decodes ids one at a time and compares with DecodeWith.
func checkStream(t *testing.T, tok *Tokenizer, ids []int, o DecodeOptions) {
	t.Helper()
	want := tok.DecodeWith(ids, o)
	if !utf8.ValidString(want) {
		t.Fatalf("DecodeWith(%v, %+v) is not valid UTF-8: %q", ids, o, want)
	}
	d := tok.NewDecoderWith(o)
	var b strings.Builder
	for _, id := range ids {
		s := d.Next(id)
		if !utf8.ValidString(s) {
			t.Fatalf("Next(%d) returned invalid UTF-8 %q", id, s)
		}
		b.WriteString(s)
	}
	b.WriteString(d.Flush())
	if got := b.String(); got != want {
		t.Fatalf("ids %v (%+v): streamed\n%q\nwant\n%q", ids, o, got, want)
	}
}

func TestDecoderStreamingMatchesDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for name, tok := range allTokenizers(t) {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			pool := newIDPool(tok)
			for i := range 400 {
				ids := randomIDs(rng, tok, pool, 1+rng.IntN(40))
				o := DecodeOptions{KeepSpecial: i%3 == 1, Continuation: i%4 == 2}
				checkStream(t, tok, ids, o)
			}
			// Encoded text streams back to itself.
			for _, s := range roundTripTexts {
				checkStream(t, tok, tok.Encode(s, true), DecodeOptions{})
			}
		})
	}
}

// The decoder assembles UTF-8 from byte tokens and replaces what cannot
// complete, as String::from_utf8_lossy (byte-level) or Hugging Face's
// ByteFallback decoder (one U+FFFD per byte) do. Unlike ByteFallback, a
// complete character before the invalid bytes of the same run is kept (it
// has already been streamed out): see the last-but-one case.
func TestDecoderInvalidUTF8(t *testing.T) {
	gpt2 := ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-gpt-2.gguf")
	mistral := hfTokenizer(t, "tokenizers", "hf", "mistral")
	llamaSPM := ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-llama-spm.gguf")
	// byteIDs returns the ids of single bytes in tok's vocabulary.
	byteIDs := func(tok *Tokenizer, spm bool, bs string) []int {
		var ids []int
		for i := 0; i < len(bs); i++ {
			name := byteLevelEnc[bs[i]]
			if spm {
				name = byteTokenName(bs[i])
			}
			id, ok := tok.ID(name)
			if !ok {
				t.Fatalf("no token for byte %#x", bs[i])
			}
			ids = append(ids, id)
		}
		return ids
	}
	const r = "\uFFFD"
	for _, tc := range []struct {
		bytes          string
		lossy, perByte string
	}{
		{"\xE4\xBD\xA0", "你", "你"},
		{"\xE4\xBD", r, r + r},
		{"\xE2\x82A", r + "A", r + r + "A"},
		{"\xF0\x80", r + r, r + r},
		{"\xED\xA0\x80", r + r + r, r + r + r},
		{"\xC0\xAF", r + r, r + r},
		{"\xF0\x9F\xA6\x99\xF0", "🦙" + r, "🦙" + r},
		{"\x80A", r + "A", r + "A"},
	} {
		if got := gpt2.Decode(byteIDs(gpt2, false, tc.bytes)); got != tc.lossy {
			t.Errorf("byte-level %q: got %q, want %q", tc.bytes, got, tc.lossy)
		}
		if got := llamaSPM.DecodeWith(byteIDs(llamaSPM, true, tc.bytes), DecodeOptions{Continuation: true}); got != tc.lossy {
			t.Errorf("llama.cpp SentencePiece %q: got %q, want %q", tc.bytes, got, tc.lossy)
		}
		if got := mistral.Decode(byteIDs(mistral, true, tc.bytes)); got != tc.perByte {
			t.Errorf("ByteFallback %q: got %q, want %q", tc.bytes, got, tc.perByte)
		}
	}
	// An incomplete character is held back, not returned in halves.
	d := gpt2.NewDecoder()
	ids := byteIDs(gpt2, false, "\xF0\x9F\xA6\x99")
	for _, id := range ids[:3] {
		if s := d.Next(id); s != "" {
			t.Fatalf("Next returned %q before the character completed", s)
		}
	}
	if s := d.Next(ids[3]); s != "🦙" {
		t.Fatalf("Next = %q, want the completed character", s)
	}
}
