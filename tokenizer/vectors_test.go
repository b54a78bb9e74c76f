package tokenizer

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// vocabCase is one input of llama.cpp's test-tokenizer-0 and its ids.
type vocabCase struct {
	text string
	want []int
}

// readVocabCases reads a ggml-vocab-*.gguf.inp/.out pair: inputs joined by
// "\n__ggml_vocab_test__\n", one line of ids per input.
func readVocabCases(t *testing.T, name string) []vocabCase {
	t.Helper()
	inp, err := os.ReadFile(sharedPath(t, "tokenizers", "gguf-vocab", name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(sharedPath(t, "tokenizers", "gguf-vocab", name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if n := len(texts); n > 0 && texts[n-1] == "" {
		texts = texts[:n-1] // the file ends with a separator
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(texts) != len(lines) {
		t.Fatalf("%s: %d inputs, %d outputs", name, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, line := range lines {
		cases[i].text = texts[i]
		for _, f := range strings.Fields(line) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", name, i+1, err)
			}
			cases[i].want = append(cases[i].want, id)
		}
	}
	return cases
}

// checkVocabCases encodes every case without BOS/EOS and with special
// tokens parsed (llama.cpp's common_tokenize(ctx, text, false, true)).
func checkVocabCases(t *testing.T, tok *Tokenizer, cases []vocabCase) {
	t.Helper()
	pass := 0
	for i, c := range cases {
		got := tok.Encode(c.text, false)
		if slices.Equal(got, c.want) || (len(got) == 0 && len(c.want) == 0) {
			pass++
			continue
		}
		t.Errorf("case %d %q:\n got %v\nwant %v", i, c.text, got, c.want)
	}
	t.Logf("%d/%d vectors pass", pass, len(cases))
}

func TestGGUFVocabVectors(t *testing.T) {
	for _, name := range []string{"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3"} {
		t.Run(name, func(t *testing.T) {
			file := "ggml-vocab-" + name + ".gguf"
			tok := ggufTokenizer(t, "tokenizers", "gguf-vocab", file)
			checkVocabCases(t, tok, readVocabCases(t, file))
		})
	}
}

func TestHFVocabVectors(t *testing.T) {
	for _, tc := range []struct{ dir, vectors string }{
		{"llama3", "ggml-vocab-llama-bpe.gguf"},
		{"qwen3", "ggml-vocab-qwen2.gguf"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			tok := hfTokenizer(t, "tokenizers", "hf", tc.dir)
			checkVocabCases(t, tok, readVocabCases(t, tc.vectors))
		})
	}
}
