package testmodel

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

func TestPermuteRows(t *testing.T) {
	// One head of dim 4, one column: HF rows (0,1 | 2,3) pair j with
	// j+2; GGUF interleaves them as 0,2,1,3.
	src := []float32{10, 11, 12, 13}
	dst := make([]float32, 4)
	permuteRows(dst, src, 1, 1)
	if want := []float32{10, 12, 11, 13}; !slices.Equal(dst, want) {
		t.Errorf("permuteRows = %v, want %v", dst, want)
	}

	// model.UnpermuteRows undoes it, for several heads and columns.
	const heads, headDim, cols = 3, 8, 5
	src = make([]float32, heads*headDim*cols)
	for i := range src {
		src[i] = float32(i)
	}
	dst = make([]float32, len(src))
	permuteRows(dst, src, heads, cols)
	back := kernels.AsF32(model.UnpermuteRows(kernels.F32Bytes(dst), heads, headDim, 4*cols))
	if !slices.Equal(back, src) {
		t.Errorf("UnpermuteRows(permuteRows(x)) != x")
	}
}

func TestVocab(t *testing.T) {
	for _, n := range []int{minGGUFVocab, 320, SmolLM2_135M.Vocab} {
		tokens, scores, types := vocab(n)
		if len(tokens) != n || len(scores) != n || len(types) != n {
			t.Fatalf("vocab(%d): %d tokens, %d scores, %d types", n, len(tokens), len(scores), len(types))
		}
		if got := tokens[:4]; !slices.Equal(got, []string{"<unk>", "<s>", "</s>", "<0x00>"}) {
			t.Errorf("vocab(%d) starts %q", n, got)
		}
		if tokens[3+0x41] != "<0x41>" || types[3+0x41] != tokenByte || tokens[258] != "<0xFF>" {
			t.Errorf("vocab(%d): byte tokens wrong: %q %d %q", n, tokens[3+0x41], types[3+0x41], tokens[258])
		}
		if types[0] != tokenUnknown || types[1] != tokenControl || types[2] != tokenControl || types[n-1] != tokenNormal && n > minGGUFVocab {
			t.Errorf("vocab(%d): token types %v … %d", n, types[:3], types[n-1])
		}
		seen := map[string]bool{}
		for _, tok := range tokens {
			if seen[tok] || tok == "" {
				t.Fatalf("vocab(%d): token %q empty or repeated", n, tok)
			}
			seen[tok] = true
		}
	}
	tokens, _, _ := vocab(minGGUFVocab + 30)
	if tokens[minGGUFVocab] != "▁" || tokens[minGGUFVocab+1] != "e" || tokens[minGGUFVocab+27] != "▁▁" {
		t.Errorf("filler pieces start %q", tokens[minGGUFVocab:minGGUFVocab+30])
	}
}

// wantGGUFNames lists the GGUF tensor names of s in file order, spelled
// out independently of tensors().
func wantGGUFNames(s Shape) []string {
	names := []string{"token_embd.weight"}
	for i := range s.Layers {
		p := "blk." + strconv.Itoa(i) + "."
		names = append(names, p+"attn_norm.weight", p+"attn_q.weight", p+"attn_k.weight", p+"attn_v.weight")
		if s.Arch == "qwen2" {
			names = append(names, p+"attn_q.bias", p+"attn_k.bias", p+"attn_v.bias")
		}
		names = append(names, p+"attn_output.weight", p+"ffn_norm.weight", p+"ffn_gate.weight", p+"ffn_up.weight", p+"ffn_down.weight")
	}
	names = append(names, "output_norm.weight")
	if !s.Tied {
		names = append(names, "output.weight")
	}
	return names
}

// tolerance returns how far a value x may move when stored as dt; amax is
// the largest magnitude in x's Q8_0 block.
func tolerance(dt kernels.DType, x, amax float64) float64 {
	switch dt {
	case kernels.BF16:
		return math.Abs(x) / 256
	case kernels.F16:
		return max(math.Abs(x)/1024, 1e-7)
	case kernels.Q8_0:
		return amax / 127
	}
	return 0
}

// decode returns a tensor's values as float32 in Hugging Face row order.
func decode(t *testing.T, dt kernels.DType, shape []int, data []byte, permuteHeads int) []float32 {
	t.Helper()
	rows, cols := 1, shape[len(shape)-1]
	if len(shape) == 2 {
		rows = shape[0]
	}
	if permuteHeads > 0 {
		data = model.UnpermuteRows(data, permuteHeads, rows/permuteHeads, dt.RowBytes(cols))
	}
	v := make([]float32, rows*cols)
	for r := range rows {
		kernels.DecodeRow(v[r*cols:(r+1)*cols], dt, data[r*dt.RowBytes(cols):(r+1)*dt.RowBytes(cols)])
	}
	return v
}

func TestWriteGGUF(t *testing.T) {
	const seed = 11
	for _, sh := range shapes {
		s := sh.shape
		// The Hugging Face checkpoint to compare with, in two dtypes.
		hf := map[kernels.DType]*safetensors.File{}
		for _, dt := range []kernels.DType{kernels.F32, kernels.BF16} {
			dir := t.TempDir()
			if err := WriteHF(dir, s, dt, seed); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			hf[dt] = f
		}

		for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16, kernels.Q8_0} {
			t.Run(sh.name+"/"+dt.String(), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "model.gguf")
				if err := WriteGGUF(path, s, dt, seed); err != nil {
					t.Fatal(err)
				}
				f, err := gguf.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				checkGGUFMetadata(t, f, s, dt)

				var names []string
				for _, ti := range f.Tensors {
					names = append(names, ti.Name)
				}
				if want := wantGGUFNames(s); !slices.Equal(names, want) {
					t.Fatalf("tensors\n%v\nwant\n%v", names, want)
				}
				for _, spec := range s.tensors() {
					ten, err := f.Tensor(spec.gguf)
					if err != nil {
						t.Fatal(err)
					}
					wantDT := dt
					if len(spec.shape) == 1 {
						wantDT = kernels.F32
					}
					if ten.DType != wantDT || !slices.Equal(ten.Shape, spec.shape) {
						t.Errorf("%s: %v %v, want %v %v", spec.gguf, ten.DType, ten.Shape, wantDT, spec.shape)
						continue
					}
					perm := 0
					if s.Arch == "llama" {
						switch {
						case strings.HasSuffix(spec.gguf, "attn_q.weight"):
							perm = s.Heads
						case strings.HasSuffix(spec.gguf, "attn_k.weight"):
							perm = s.KVHeads
						}
					}
					got := decode(t, ten.DType, ten.Shape, ten.Data, perm)
					for hdt, hfFile := range hf {
						ht, err := hfFile.Tensor(spec.hf)
						if err != nil {
							t.Fatal(err)
						}
						want := decode(t, hdt, ht.Shape, ht.Data, 0)
						compareValues(t, spec.gguf+" vs HF "+hdt.String(), got, want, ten.DType, hdt, ten.Shape[len(ten.Shape)-1])
					}
				}
			})
		}
	}
}

// compareValues checks that got (stored as gdt) and want (stored as hdt)
// hold the same values up to the two roundings.
func compareValues(t *testing.T, what string, got, want []float32, gdt, hdt kernels.DType, cols int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		blk := i - i%cols%kernels.Q8_0Block // start of the Q8_0 block
		var amax float64
		for _, v := range want[blk:min(blk+kernels.Q8_0Block, len(want))] {
			amax = max(amax, math.Abs(float64(v)))
		}
		x := float64(want[i])
		tol := tolerance(gdt, x, amax) + tolerance(hdt, x, amax)
		if d := math.Abs(float64(got[i]) - x); d > tol {
			t.Fatalf("%s: value %d is %v, want %v (difference %g > %g)", what, i, got[i], want[i], d, tol)
		}
	}
}

// checkGGUFMetadata checks the hyperparameters and tokenizer of f.
func checkGGUFMetadata(t *testing.T, f *gguf.File, s Shape, dt kernels.DType) {
	t.Helper()
	a := s.Arch
	if got := f.Architecture(); got != a {
		t.Errorf("architecture %q, want %q", got, a)
	}
	uints := map[string]uint64{
		a + ".context_length":             uint64(s.MaxPositions),
		a + ".embedding_length":           uint64(s.Hidden),
		a + ".block_count":                uint64(s.Layers),
		a + ".feed_forward_length":        uint64(s.Intermediate),
		a + ".attention.head_count":       uint64(s.Heads),
		a + ".attention.head_count_kv":    uint64(s.KVHeads),
		a + ".rope.dimension_count":       uint64(s.HeadDim),
		"general.file_type":               uint64(fileTypes[dt]),
		"tokenizer.ggml.bos_token_id":     BOSID,
		"tokenizer.ggml.eos_token_id":     EOSID,
		"tokenizer.ggml.unknown_token_id": UnkID,
	}
	if a == "llama" {
		uints["llama.vocab_size"] = uint64(s.Vocab)
	}
	for k, want := range uints {
		if got, ok := f.Uint(k); !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, want)
		}
	}
	floats := map[string]float64{a + ".rope.freq_base": s.RopeTheta, a + ".attention.layer_norm_rms_epsilon": s.RMSNormEps}
	for k, want := range floats {
		if got, ok := f.Float(k); !ok || math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if m, _ := f.String("tokenizer.ggml.model"); m != "llama" {
		t.Errorf("tokenizer.ggml.model = %q, want llama", m)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	scores, _ := f.Float32s("tokenizer.ggml.scores")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	if len(tokens) != s.Vocab || len(scores) != s.Vocab || len(types) != s.Vocab {
		t.Errorf("tokenizer has %d tokens, %d scores, %d types; want %d each", len(tokens), len(scores), len(types), s.Vocab)
	}
	if bos, _ := f.Bool("tokenizer.ggml.add_bos_token"); !bos {
		t.Error("tokenizer.ggml.add_bos_token is not true")
	}
}

func TestWriteGGUFErrors(t *testing.T) {
	dir := t.TempDir()
	small := Tiny
	small.Vocab = 100
	odd := Tiny
	odd.Intermediate = 100
	tests := []struct {
		name string
		s    Shape
		dt   kernels.DType
	}{
		{"vocab too small for the tokenizer", small, kernels.F32},
		{"Q8_0 with a width not a multiple of 32", odd, kernels.Q8_0},
		{"unknown dtype", Tiny, kernels.DType(99)},
		{"invalid shape", Shape{}, kernels.F32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteGGUF(filepath.Join(dir, "x.gguf"), tt.s, tt.dt, 1); err == nil {
				t.Error("WriteGGUF succeeded, want an error")
			}
		})
	}
	// The odd width is fine in F16.
	if err := WriteGGUF(filepath.Join(dir, "odd.gguf"), odd, kernels.F16, 1); err != nil {
		t.Error(err)
	}
}

func TestWriteCached(t *testing.T) {
	dir := t.TempDir()
	// Concurrent first calls all succeed and agree.
	var wg sync.WaitGroup
	paths := make([][3]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Go(func() {
			a, b, c, err := writeCached(dir, "tiny", Tiny, 3)
			paths[i], errs[i] = [3]string{a, b, c}, err
		})
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("call %d returned %v, call 0 %v", i, paths[i], paths[0])
		}
	}
	hfDir, f16, q8 := paths[0][0], paths[0][1], paths[0][2]

	// The files are complete and of the promised dtypes.
	cfg, err := model.ReadHFConfig(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hidden != Tiny.Hidden {
		t.Errorf("cached config has hidden %d, want %d", cfg.Hidden, Tiny.Hidden)
	}
	st, err := safetensors.Open(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ten, err := st.Tensor("model.embed_tokens.weight"); err != nil || ten.DType != kernels.BF16 {
		t.Errorf("cached HF embedding: %v, %v; want BF16", ten.DType, err)
	}
	for path, dt := range map[string]kernels.DType{f16: kernels.F16, q8: kernels.Q8_0} {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if ten, err := f.Tensor("blk.0.ffn_up.weight"); err != nil || ten.DType != dt {
			t.Errorf("%s: ffn_up %v, %v; want %v", path, ten.DType, err, dt)
		}
		f.Close()
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache dir holds %v, want 3 entries (no temporary leftovers)", names)
	}

	// A second call writes nothing.
	before := modTimes(t, hfDir, f16, q8)
	time.Sleep(10 * time.Millisecond)
	if _, _, _, err := writeCached(dir, "tiny", Tiny, 3); err != nil {
		t.Fatal(err)
	}
	if after := modTimes(t, hfDir, f16, q8); !slices.Equal(before, after) {
		t.Error("second call rewrote the cached files")
	}
}

func modTimes(t *testing.T, hfDir string, files ...string) []time.Time {
	t.Helper()
	var times []time.Time
	for _, p := range append(files, filepath.Join(hfDir, "model.safetensors"), filepath.Join(hfDir, "config.json")) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, st.ModTime())
	}
	return times
}
