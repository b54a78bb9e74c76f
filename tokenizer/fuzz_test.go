package tokenizer

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkIDs fails if any id is outside the vocabulary.
func checkIDs(t *testing.T, tok *Tokenizer, ids []int) {
	t.Helper()
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("id %d outside a vocabulary of %d", id, tok.VocabSize())
		}
	}
}

// exercise runs a tokenizer built from fuzzed input through its API.
func exercise(t *testing.T, tok *Tokenizer, text string) {
	ids := tok.Encode(text, true)
	checkIDs(t, tok, ids)
	checkIDs(t, tok, tok.EncodeWith(text, EncodeOptions{}))
	if s := tok.Decode(ids); !utf8.ValidString(s) {
		t.Fatalf("Decode returned invalid UTF-8 %q", s)
	}
	all := make([]int, 0, 64)
	for id := range min(tok.VocabSize(), 64) {
		all = append(all, id)
	}
	checkStream(t, tok, all, DecodeOptions{KeepSpecial: true})
	checkStream(t, tok, append(all, -1, tok.VocabSize()), DecodeOptions{})
	_, _ = tok.ID(text)
	_ = tok.TokenString(len(text))
}

func FuzzParseHF(f *testing.F) {
	stories, err := os.ReadFile(sharedPath(f, "fixtures", "stories260K_hf", "model", "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	storiesCfg, err := os.ReadFile(sharedPath(f, "fixtures", "stories260K_hf", "model", "tokenizer_config.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stories, storiesCfg, "Once upon a time")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`), []byte(nil), "abab")
	f.Add([]byte(`{"added_tokens":[{"id":3,"content":"<x>","special":true,"lstrip":true,"rstrip":true,"single_word":true}],`+
		`"normalizer":{"type":"NFC"},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"`+
		strings.ReplaceAll(strings.ReplaceAll(patternLlama3, `\`, `\\`), `"`, `\"`)+`"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]},`+
		`"decoder":{"type":"ByteLevel"},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<x>"}},{"Sequence":{"id":"A"}}],"special_tokens":{"<x>":{"id":"<x>","ids":[3]}}},`+
		`"model":{"type":"BPE","vocab":{"a":0,"Ġ":1,"Ġa":2},"merges":[["Ġ","a"]],"ignore_merges":true}}`),
		[]byte(`{"add_bos_token":true,"bos_token":{"content":"<x>"},"chat_template":[{"name":"default","template":"t"}]}`), " a <x> a")
	f.Add([]byte(`{"pre_tokenizer":{"type":"Metaspace","replacement":"_","prepend_scheme":"first","split":true},`+
		`"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"_"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},`+
		`"model":{"type":"BPE","byte_fallback":true,"unk_token":"<0x41>","vocab":{"_":0,"<0x41>":1,"x":2},"merges":[]}}`), []byte(nil), "x y\u00e9")
	f.Add([]byte(`{"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},`+
		`"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"Split","pattern":{"String":"-"},"behavior":"MergedWithNext","invert":false},`+
		`{"type":"Split","pattern":{"String":"x"},"behavior":"Contiguous","invert":true},{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}]},`+
		`"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"BertProcessing","sep":["b",1],"cls":["a",0]}]},`+
		`"decoder":{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","add_prefix_space":true},{"type":"Strip","content":"a","start":2,"stop":1}]},`+
		`"added_tokens":[{"id":2,"content":"a-b","normalized":true},{"id":9,"content":"","special":true}],`+
		`"model":{"vocab":{"a":0,"b":1,"ab":3,"Ġ":4},"merges":[["a","b"]],"unk_token":"a","fuse_unk":true}}`),
		[]byte(`{"add_eos_token":true,"eos_token":"b","bos_token":null,"chat_template":"x"}`), "1-2 ab x-a\u00e9")
	f.Fuzz(func(t *testing.T, tokenizerJSON, configJSON []byte, text string) {
		tok, err := ParseHF(tokenizerJSON, configJSON)
		if err != nil {
			return
		}
		exercise(t, tok, text)
	})
}

func FuzzLlama2C(f *testing.F) {
	tok512, err := os.ReadFile(sharedPath(f, "models", "stories260K", "tok512.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok512, 512, "Once upon a time 🦙")
	f.Add(tok512[:300], 20, "x")
	f.Add([]byte("\x08\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00a"), 1, "aaa")
	f.Fuzz(func(t *testing.T, data []byte, vocabSize int, text string) {
		tok, err := FromLlama2C(data, vocabSize)
		if err != nil {
			return
		}
		exercise(t, tok, text)
	})
}

// FuzzGGUFVocab builds vocabularies from arbitrary pieces: NUL-separated
// tokens, one type byte each.
func FuzzGGUFVocab(f *testing.F) {
	f.Add("<unk>\x00<s>\x00</s>\x00<0x41>\x00▁a\x00a\x00▁", []byte{2, 3, 3, 6, 1, 1, 1}, false, "a A")
	f.Add("a\x00b\x00ab\x00Ġ\x00<|x|>\x00", []byte{1, 1, 1, 1, 3, 4}, true, "ab<|x|>ba")
	f.Fuzz(func(t *testing.T, tokens string, types []byte, gpt2 bool, text string) {
		v := GGUFVocab{Model: "llama", Tokens: strings.Split(tokens, "\x00"), BOS: -1, EOS: -1, UNK: -1, PAD: -1}
		if len(types) >= len(v.Tokens) {
			for _, b := range types[:len(v.Tokens)] {
				v.TokenTypes = append(v.TokenTypes, int32(b%8))
			}
		}
		if gpt2 {
			v.Model, v.Pre = "gpt2", "llama-bpe"
			for i := 0; i+1 < len(v.Tokens); i++ {
				v.Merges = append(v.Merges, v.Tokens[i]+" "+v.Tokens[i+1])
			}
		} else {
			for i := range v.Tokens {
				v.Scores = append(v.Scores, float32(len(v.Tokens[i])-i))
			}
		}
		tok, err := FromGGUF(v)
		if err != nil {
			return
		}
		exercise(t, tok, text)
	})
}

// FuzzEncode runs random text through every real tokenizer. Byte-level
// ones must give the text back exactly; SentencePiece ones too, when the
// text has no "▁" (their space) and no token markup.
func FuzzEncode(f *testing.F) {
	for _, s := range roundTripTexts {
		f.Add(s)
	}
	f.Add("<|im_start|>user\nhi<|im_end|>\xff\xfe")
	f.Add("\xe2\x82")
	toks := allTokenizers(f)
	f.Fuzz(func(t *testing.T, text string) {
		for name, tok := range toks {
			ids := tok.Encode(text, true)
			checkIDs(t, tok, ids)
			checkStream(t, tok, ids, DecodeOptions{})
			plain := tok.EncodeWith(text, EncodeOptions{})
			checkIDs(t, tok, plain)
			if !utf8.ValidString(text) {
				continue
			}
			want := text
			if name == "hf/qwen3" {
				want = nfc(text)
			}
			if !byteLevel(name) && (strings.Contains(text, "▁") || strings.ContainsAny(text, "<[")) {
				continue
			}
			if got := tok.Decode(plain); got != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q", name, text, got)
			}
		}
	})
}
