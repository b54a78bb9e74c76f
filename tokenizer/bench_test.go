package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkLoadHF(b *testing.B) {
	for _, dir := range []string{"llama3", "qwen3", "mistral"} {
		b.Run(dir, func(b *testing.B) {
			path := sharedPath(b, "tokenizers", "hf", dir)
			tj, err := os.ReadFile(filepath.Join(path, "tokenizer.json"))
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := os.ReadFile(filepath.Join(path, "tokenizer_config.json"))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(tj)))
			for b.Loop() {
				if _, err := ParseHF(tj, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadGGUF(b *testing.B) {
	for _, name := range []string{"llama-bpe", "qwen2", "llama-spm"} {
		b.Run(name, func(b *testing.B) {
			kv, err := readGGUFMetadata(sharedPath(b, "tokenizers", "gguf-vocab", "ggml-vocab-"+name+".gguf"))
			if err != nil {
				b.Fatal(err)
			}
			v := ggufVocabFrom(kv)
			for b.Loop() {
				if _, err := FromGGUF(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode encodes the 1,943-byte test input of llama.cpp's vocab
// tests.
func BenchmarkEncode(b *testing.B) {
	text, err := os.ReadFile(sharedPath(b, "tokenizers", "gguf-vocab", "ggml-vocab-llama-bpe.gguf.inp"))
	if err != nil {
		b.Fatal(err)
	}
	for name, tok := range allTokenizers(b) {
		b.Run(filepath.Base(name)+"_"+filepath.Dir(name), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Encode(string(text), true)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	text, err := os.ReadFile(sharedPath(b, "tokenizers", "gguf-vocab", "ggml-vocab-llama-bpe.gguf.inp"))
	if err != nil {
		b.Fatal(err)
	}
	tok := hfTokenizer(b, "tokenizers", "hf", "llama3")
	ids := tok.Encode(string(text), false)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Decode(ids)
	}
}
