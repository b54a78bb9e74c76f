package tokenizer

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestFromGGUFErrors(t *testing.T) {
	base := func() GGUFVocab {
		return GGUFVocab{Model: "llama", Tokens: []string{"<unk>", "<s>", "</s>", "a"}, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	}
	for _, tc := range []struct {
		name   string
		modify func(*GGUFVocab)
		want   string
	}{
		{"no tokens", func(v *GGUFVocab) { v.Tokens = nil }, "empty"},
		{"model", func(v *GGUFVocab) { v.Model = "bert" }, `"bert" is not supported`},
		{"scores", func(v *GGUFVocab) { v.Scores = []float32{1} }, "scores has 1 entries"},
		{"types", func(v *GGUFVocab) { v.TokenTypes = []int32{1, 1} }, "token_type has 2 entries"},
		{"pre", func(v *GGUFVocab) { v.Model, v.Pre = "gpt2", "tekken" }, `"tekken" is not supported`},
		{"merge", func(v *GGUFVocab) { v.Model, v.Merges = "gpt2", []string{"ab"} }, "merges[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			tc.modify(&v)
			_, err := FromGGUF(v)
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a FormatError mentioning %q", err, tc.want)
			}
		})
	}
	// llama.cpp's defaults apply to absent keys.
	tok, err := FromGGUF(base())
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddsBOS() || tok.AddsEOS() {
		t.Errorf("defaults: BOS %d EOS %d AddsBOS %v AddsEOS %v", tok.BOS(), tok.EOS(), tok.AddsBOS(), tok.AddsEOS())
	}
	if !tok.IsSpecial(1) || tok.IsSpecial(3) {
		t.Error("without token types, BOS/EOS/UNK are special and the rest normal")
	}
}

func TestGGUFSpecialTokens(t *testing.T) {
	llama3 := ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-llama-bpe.gguf")
	// The Llama 3 pre-tokenizer adds BOS by default.
	if got := llama3.Encode("Hi", true); !slices.Equal(got, []int{128000, 13347}) {
		t.Errorf("Encode with BOS = %v", got)
	}
	got := llama3.Encode("<|start_header_id|>user<|end_header_id|>", false)
	if !slices.Equal(got, []int{128006, 882, 128007}) {
		t.Errorf("special tokens: %v", got)
	}
	plain := llama3.EncodeWith("<|eot_id|>", EncodeOptions{})
	if slices.Contains(plain, 128009) {
		t.Errorf("ParseSpecial false still split <|eot_id|>: %v", plain)
	}
	if s := llama3.DecodeWith([]int{128006, 882, 128007}, DecodeOptions{KeepSpecial: true}); s != "<|start_header_id|>user<|end_header_id|>" {
		t.Errorf("DecodeWith KeepSpecial = %q", s)
	}

	// Phi-3's special tokens swallow the white space after them (llama.cpp
	// sets RSTRIP by model name), except <s>, <unk> and <|endoftext|>.
	phi3 := ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-phi-3.gguf")
	a := phi3.Encode("<|user|>\nHi<|end|>\n<|assistant|>", false)
	b := phi3.Encode("<|user|>Hi<|end|><|assistant|>", false)
	if !slices.Equal(a, b) {
		t.Errorf("phi-3 rstrip: %v != %v", a, b)
	}
	if !phi3.IsEOG(32007) || !phi3.IsEOG(32000) {
		t.Errorf("phi-3 EOG = %v", phi3.EOG())
	}
	if !strings.Contains(phi3.ChatTemplate(), "<|user|>") {
		t.Error("phi-3 chat template missing")
	}

	// SentencePiece puts a space in front of text after a special token.
	spm := ggufTokenizer(t, "tokenizers", "gguf-vocab", "ggml-vocab-llama-spm.gguf")
	got = spm.Encode("Hello</s>Hello", true)
	if want := []int{1, 15043, 2, 15043}; !slices.Equal(got, want) {
		t.Errorf("SPM after special: %v, want %v", got, want)
	}
}

func TestPartitioner(t *testing.T) {
	p := newPartitioner([]specialToken{
		{id: 1, text: "<a>", needsParse: true},
		{id: 2, text: "<a>b", needsParse: true},
		{id: 3, text: "[u]"},
		{id: 4, text: "<r>", needsParse: true, rstrip: true, lstrip: true},
	})
	for _, tc := range []struct {
		text  string
		parse bool
		want  []segment
	}{
		{"x<a>by<a>", true, []segment{{"x", -1, 0}, {"<a>b", 2, 1}, {"y", -1, 5}, {"<a>", 1, 6}}},
		{"x<a>[u]", false, []segment{{"x<a>", -1, 0}, {"[u]", 3, 4}}},
		{"x \t<r> \ny", true, []segment{{"x", -1, 0}, {"<r>", 4, 3}, {"y", -1, 8}}},
		{"<r>  ", true, []segment{{"<r>", 4, 0}}},
	} {
		if got := p.split(tc.text, tc.parse); !slices.Equal(got, tc.want) {
			t.Errorf("split(%q, %v) = %v, want %v", tc.text, tc.parse, got, tc.want)
		}
	}
}

func TestFromLlama2CErrors(t *testing.T) {
	good, err := os.ReadFile(sharedPath(t, "models", "stories260K", "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	neg := binary.LittleEndian.AppendUint32(nil, 8)
	neg = binary.LittleEndian.AppendUint32(neg, math.Float32bits(0))
	neg = binary.LittleEndian.AppendUint32(neg, 0xFFFFFFFF)
	for _, tc := range []struct {
		name string
		data []byte
		size int
		want string
	}{
		{"empty", nil, 512, "too short"},
		{"zero size", good, 0, "vocabulary size 0"},
		{"too many", good, 100000, "cannot hold"},
		{"truncated", good[:len(good)-3], 512, "runs past the end"},
		{"negative length", neg, 1, "length -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromLlama2C(tc.data, tc.size)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Source != "tokenizer.bin" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a tokenizer.bin error mentioning %q", err, tc.want)
			}
		})
	}
}
