package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// sharedDir returns the shared test data directory: $SWITCHYARD_SHARED,
// or ../../shared relative to this package.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shared test data: %v (set SWITCHYARD_SHARED)", err)
	}
	return dir
}

func sharedPath(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{sharedDir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data: %v", err)
	}
	return p
}

// ---- a minimal GGUF metadata reader, for tests only ----

// ggufValue is a decoded metadata value: uint64, int64, float64, bool,
// string or []any.
type ggufValue = any

type ggufReader struct {
	b   []byte
	off int
	err error
}

func (r *ggufReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("truncated at byte %d", r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *ggufReader) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (r *ggufReader) u64() uint64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (r *ggufReader) str() string {
	n := r.u64()
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("string length %d at byte %d", n, r.off)
		return ""
	}
	return string(r.take(int(n)))
}

func (r *ggufReader) value(typ uint32) ggufValue {
	switch typ {
	case 0:
		return uint64(r.take(1)[0])
	case 1:
		return int64(int8(r.take(1)[0]))
	case 2:
		return uint64(binary.LittleEndian.Uint16(r.take(2)))
	case 3:
		return int64(int16(binary.LittleEndian.Uint16(r.take(2))))
	case 4:
		return uint64(r.u32())
	case 5:
		return int64(int32(r.u32()))
	case 6:
		return float64(math.Float32frombits(r.u32()))
	case 7:
		return r.take(1)[0] != 0
	case 8:
		return r.str()
	case 9:
		et := r.u32()
		n := r.u64()
		if n > uint64(len(r.b)) {
			r.err = fmt.Errorf("array length %d", n)
			return nil
		}
		vals := make([]any, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			vals = append(vals, r.value(et))
		}
		return vals
	case 10:
		return r.u64()
	case 11:
		return int64(r.u64())
	case 12:
		return math.Float64frombits(r.u64())
	}
	r.err = fmt.Errorf("unknown value type %d", typ)
	return nil
}

// readGGUFMetadata returns the key/value metadata of a GGUF v3 file.
func readGGUFMetadata(path string) (map[string]ggufValue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &ggufReader{b: b}
	if string(r.take(4)) != "GGUF" {
		return nil, errors.New("not a GGUF file")
	}
	if v := r.u32(); v != 3 {
		return nil, fmt.Errorf("GGUF version %d", v)
	}
	r.u64() // tensor count
	n := r.u64()
	kv := make(map[string]ggufValue, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.str()
		typ := r.u32()
		func() {
			defer func() {
				if recover() != nil && r.err == nil {
					r.err = fmt.Errorf("truncated value of %s", k)
				}
			}()
			kv[k] = r.value(typ)
		}()
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", path, r.err)
	}
	return kv, nil
}

// ggufVocabFrom fills a GGUFVocab from GGUF metadata, as a GGUF reader
// would.
func ggufVocabFrom(kv map[string]ggufValue) GGUFVocab {
	v := GGUFVocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	v.Model, _ = kv["tokenizer.ggml.model"].(string)
	v.Pre, _ = kv["tokenizer.ggml.pre"].(string)
	v.Name, _ = kv["general.name"].(string)
	v.ChatTemplate, _ = kv["tokenizer.chat_template"].(string)
	if a, ok := kv["tokenizer.ggml.tokens"].([]any); ok {
		for _, x := range a {
			s, _ := x.(string)
			v.Tokens = append(v.Tokens, s)
		}
	}
	if a, ok := kv["tokenizer.ggml.scores"].([]any); ok {
		for _, x := range a {
			f, _ := x.(float64)
			v.Scores = append(v.Scores, float32(f))
		}
	}
	if a, ok := kv["tokenizer.ggml.token_type"].([]any); ok {
		for _, x := range a {
			i, _ := x.(int64)
			v.TokenTypes = append(v.TokenTypes, int32(i))
		}
	}
	if a, ok := kv["tokenizer.ggml.merges"].([]any); ok {
		for _, x := range a {
			s, _ := x.(string)
			v.Merges = append(v.Merges, s)
		}
	}
	id := func(key string) int {
		switch x := kv[key].(type) {
		case uint64:
			return int(x)
		case int64:
			return int(x)
		}
		return -1
	}
	v.BOS = id("tokenizer.ggml.bos_token_id")
	v.EOS = id("tokenizer.ggml.eos_token_id")
	v.UNK = id("tokenizer.ggml.unknown_token_id")
	v.PAD = id("tokenizer.ggml.padding_token_id")
	v.AddBOS, v.HasAddBOS = kv["tokenizer.ggml.add_bos_token"].(bool)
	v.AddEOS, v.HasAddEOS = kv["tokenizer.ggml.add_eos_token"].(bool)
	if b, ok := kv["tokenizer.ggml.add_space_prefix"].(bool); ok {
		v.AddSpacePrefix = &b
	}
	return v
}

// Tokenizers are loaded once per test binary.
var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

func cachedTokenizer(t testing.TB, key string, load func() (*Tokenizer, error)) *Tokenizer {
	t.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if tok, ok := loaded[key]; ok {
		return tok
	}
	tok, err := load()
	if err != nil {
		t.Fatalf("load %s: %v", key, err)
	}
	loaded[key] = tok
	return tok
}

// ggufTokenizer loads the vocabulary of a GGUF file in the shared data.
func ggufTokenizer(t testing.TB, elem ...string) *Tokenizer {
	t.Helper()
	path := sharedPath(t, elem...)
	return cachedTokenizer(t, path, func() (*Tokenizer, error) {
		kv, err := readGGUFMetadata(path)
		if err != nil {
			return nil, err
		}
		return FromGGUF(ggufVocabFrom(kv))
	})
}

// hfTokenizer loads a Hugging Face tokenizer directory of the shared data.
func hfTokenizer(t testing.TB, elem ...string) *Tokenizer {
	t.Helper()
	dir := sharedPath(t, elem...)
	return cachedTokenizer(t, dir, func() (*Tokenizer, error) { return LoadHF(dir) })
}

func llama2cTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	path := sharedPath(t, "models", "stories260K", "tok512.bin")
	return cachedTokenizer(t, path, func() (*Tokenizer, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return FromLlama2C(b, 512)
	})
}
