package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// LoadTokenizer returns the tokenizer that belongs to a loaded model: the
// vocabulary embedded in its GGUF file, or tokenizer.json in its Hugging
// Face directory. It returns nil and no error when the model has none.
func LoadTokenizer(m *model.Model, path string) (*tokenizer.Tokenizer, error) {
	if m.GGUF != nil {
		if _, ok := m.GGUF.Strings("tokenizer.ggml.tokens"); !ok {
			return nil, nil
		}
		t, err := tokenizer.FromGGUF(GGUFVocab(m.GGUF))
		if err != nil {
			return nil, fmt.Errorf("engine: tokenizer of %s: %w", path, err)
		}
		return t, nil
	}
	if _, err := os.Stat(filepath.Join(path, "tokenizer.json")); err != nil {
		return nil, nil
	}
	t, err := tokenizer.LoadHF(path)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return t, nil
}

// GGUFVocab gathers the tokenizer.ggml.* metadata of a GGUF file.
func GGUFVocab(f *gguf.File) tokenizer.GGUFVocab {
	v := tokenizer.GGUFVocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	v.Model, _ = f.String("tokenizer.ggml.model")
	v.Pre, _ = f.String("tokenizer.ggml.pre")
	v.Tokens, _ = f.Strings("tokenizer.ggml.tokens")
	v.Scores, _ = f.Float32s("tokenizer.ggml.scores")
	v.TokenTypes, _ = f.Int32s("tokenizer.ggml.token_type")
	v.Merges, _ = f.Strings("tokenizer.ggml.merges")
	for key, dst := range map[string]*int{
		"tokenizer.ggml.bos_token_id":     &v.BOS,
		"tokenizer.ggml.eos_token_id":     &v.EOS,
		"tokenizer.ggml.unknown_token_id": &v.UNK,
		"tokenizer.ggml.padding_token_id": &v.PAD,
	} {
		if id, ok := f.Uint(key); ok && id < 1<<31 {
			*dst = int(id)
		}
	}
	v.AddBOS, v.HasAddBOS = f.Bool("tokenizer.ggml.add_bos_token")
	v.AddEOS, v.HasAddEOS = f.Bool("tokenizer.ggml.add_eos_token")
	if b, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		v.AddSpacePrefix = &b
	}
	return v
}
