package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The three sources of stories260K's 512-token vocabulary must agree.
func storiesTokenizers(t *testing.T) map[string]*Tokenizer {
	return map[string]*Tokenizer{
		"hf":      hfTokenizer(t, "fixtures", "stories260K_hf", "model"),
		"gguf":    ggufTokenizer(t, "models", "stories260K", "stories260K-f32.gguf"),
		"llama2c": llama2cTokenizer(t),
	}
}

func TestStoriesEncode(t *testing.T) {
	want := []int{1, 403, 407, 261, 378}
	for name, tok := range storiesTokenizers(t) {
		if got := tok.Encode("Once upon a time", true); !slices.Equal(got, want) {
			t.Errorf("%s: Encode(BOS + \"Once upon a time\") = %v, want %v", name, got, want)
		}
		if !tok.AddsBOS() || tok.BOS() != 1 || tok.EOS() != 2 || tok.VocabSize() != 512 {
			t.Errorf("%s: AddsBOS %v BOS %d EOS %d VocabSize %d", name, tok.AddsBOS(), tok.BOS(), tok.EOS(), tok.VocabSize())
		}
	}
}

func TestStoriesGolden(t *testing.T) {
	data, err := os.ReadFile(sharedPath(t, "models", "stories260K", "stories260K_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]struct {
		IDs  []int  `json:"generated_ids_including_prompt"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden) == 0 {
		t.Fatal("no golden cases")
	}
	toks := storiesTokenizers(t)
	for gname, g := range golden {
		for name, tok := range toks {
			if got := tok.Decode(g.IDs); got != g.Text {
				t.Errorf("%s/%s: Decode =\n%q\nwant\n%q", gname, name, got, g.Text)
			}
			d := tok.NewDecoder()
			var streamed string
			for _, id := range g.IDs {
				streamed += d.Next(id)
			}
			streamed += d.Flush()
			if streamed != g.Text {
				t.Errorf("%s/%s: streamed decode differs from the golden text", gname, name)
			}
			// The text encodes back to the same ids (greedy text from this
			// model is what the tokenizer would produce).
			if got := tok.Encode(g.Text, false); !slices.Equal(got, g.IDs) {
				t.Errorf("%s/%s: Encode(golden text) differs from the golden ids", gname, name)
			}
		}
	}
}

// After BOS, llama.cpp keeps the first word's space and Hugging Face and
// llama2.c drop it.
func TestStoriesDecodeAfterBOS(t *testing.T) {
	ids := []int{1, 403, 407}
	want := map[string]string{"hf": "Once upon", "llama2c": "Once upon", "gguf": " Once upon"}
	for name, tok := range storiesTokenizers(t) {
		if got := tok.Decode(ids); got != want[name] {
			t.Errorf("%s: Decode(%v) = %q, want %q", name, ids, got, want[name])
		}
		if got := tok.DecodeWith(ids[1:], DecodeOptions{Continuation: true}); got != " Once upon" {
			t.Errorf("%s: continuation decode = %q, want %q", name, got, " Once upon")
		}
		keep := map[string]string{"hf": "<s> Once upon", "gguf": "<s> Once upon", "llama2c": "<s>Once upon"}[name]
		if got := tok.DecodeWith(ids, DecodeOptions{KeepSpecial: true}); got != keep {
			t.Errorf("%s: decode keeping special tokens = %q, want %q", name, got, keep)
		}
	}
}
