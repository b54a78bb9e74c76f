package model_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/model/testmodel"
)

// tinyK is a Llama whose input widths are multiples of 256, so that every
// matrix can be a K-quant.
var tinyK = testmodel.Shape{Hidden: 256, Intermediate: 512, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 64,
	Vocab: 320, MaxPositions: 128, Tied: false, Arch: "llama", RopeTheta: 10000, RMSNormEps: 1e-5}

// dequantizeGGUF rewrites a GGUF file with every tensor converted to F32.
func dequantizeGGUF(t *testing.T, in, out string) {
	t.Helper()
	f, err := gguf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		if err := w.Add(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors {
		x, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		n := 1
		for _, d := range x.Shape {
			n *= d
		}
		v := make([]float32, n)
		kernels.DecodeRow(v, x.DType, x.Data)
		if err := w.AddTensor(x.Name, kernels.F32, x.Shape, kernels.F32Bytes(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
}

// TestKQuantModel runs a model stored in Q4_K (Q6_K embeddings and LM
// head, as Q4_K_M files are), in Q6_K and in Q8_0 against the same weights
// dequantized to F32: the K-quant rows, their q/k un-permutation at load
// and the embedding lookup must give the F32 model's logits, in prefill
// and in decode.
func TestKQuantModel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shape   testmodel.Shape
		dt      kernels.DType
		gateAs  kernels.DType // gate_proj's type in the file
		vocabAs kernels.DType // the LM head's
		tol     float64       // largest logit difference from the dequantized model
	}{
		{"Q4_K_M", tinyK, kernels.Q4_K, kernels.Q4_K, kernels.Q6_K, 1e-4},
		{"Q6_K", tinyK, kernels.Q6_K, kernels.Q6_K, kernels.Q6_K, 1e-4},
		// Widths of 64 and 160: llama-quantize's fallbacks, Q5_0 and Q8_0.
		// A Q8_0 matrix takes its input rounded to int8 in decode, as
		// llama.cpp's does (kernels/q8act.go): 3.5e-3 measured here.
		{"Q4_K_M-fallback", testmodel.Tiny, kernels.Q4_K, kernels.Q5_0, kernels.Q8_0, 1e-2},
		// All Q8_0, tied: the head, which is the embedding, is packed
		// (kernels.Interleave) and looked up by row.
		{"Q8_0", testmodel.TinyQwen2, kernels.Q8_0, kernels.Q8_0, kernels.Q8_0, 1e-2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q, f32 := filepath.Join(dir, "q.gguf"), filepath.Join(dir, "f32.gguf")
			if err := testmodel.WriteGGUF(q, tc.shape, tc.dt, 7); err != nil {
				t.Fatal(err)
			}
			dequantizeGGUF(t, q, f32)
			mq, err := model.Load(q, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer mq.Close()
			mf, err := model.Load(f32, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			// Both caches float32: only the weights may differ.
			mq.KVDType, mf.KVDType = kernels.F32, kernels.F32
			if got := mq.Weights.Layers[0].Proj[model.ModGate].DType; got != tc.gateAs {
				t.Fatalf("gate_proj loaded as %v, want %v", got, tc.gateAs)
			}
			if got := mq.Weights.Head.DType; got != tc.vocabAs {
				t.Fatalf("LM head loaded as %v, want %v", got, tc.vocabAs)
			}
			if h := mq.Weights.Head; h.DType == kernels.Q8_0 && !h.Interleaved {
				t.Fatalf("Q8_0 LM head not packed")
			}
			prompt := []int{1, 17, 200, 5, 99, 3, 250, 42} // all below both vocabularies
			cq, cf := mq.NewCache(64), mf.NewCache(64)
			for step := range 4 {
				tokens := prompt
				if step > 0 {
					tokens = []int{(step * 37) % tc.shape.Vocab}
				}
				lq, err := mq.Forward([]model.Seq{{Cache: cq, Tokens: tokens, AllLogits: true}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				lf, err := mf.Forward([]model.Seq{{Cache: cf, Tokens: tokens, AllLogits: true}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d := testshared.MaxAbsDiff(lq[0], lf[0]); d > tc.tol {
					t.Fatalf("step %d: logits differ from the dequantized model's by %g", step, d)
				}
			}
		})
	}
}

// TestStepBytes checks that a decode step's bytes leave out an untied
// embedding table (a step reads one row of it) and keep a tied one (it is
// the LM head).
func TestStepBytes(t *testing.T) {
	for _, s := range []testmodel.Shape{testmodel.Tiny, testmodel.TinyQwen2} {
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := testmodel.WriteGGUF(path, s, kernels.F16, 1); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		embed := int64(len(m.Weights.Embed.Data))
		want := m.Weights.Bytes() - embed
		if s.Tied {
			want = m.Weights.Bytes()
		}
		if got := m.Weights.StepBytes(); got != want || embed == 0 {
			t.Errorf("%s tied=%v: StepBytes %d, want %d (Bytes %d, embedding %d)", s.Arch, s.Tied, got, want, m.Weights.Bytes(), embed)
		}
		m.Close()
	}
}

// TestAttentionParts checks attention cut into parts: a sequence decoding
// alone after a 600-token prompt, on 4 workers, has its positions split
// in parts that are merged after; the same step batched with 3 other
// sequences (enough work items, so no parts) must give the same logits.
// It runs with F32 and F16 caches, each from NewCache (adjacent blocks)
// and from one shared pool whose blocks the caches take in turn
// (scattered blocks).
func TestAttentionParts(t *testing.T) {
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16} {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/shared=%v", dt, shared), func(t *testing.T) { checkAttentionParts(t, dt, shared) })
		}
	}
}

func checkAttentionParts(t *testing.T, dt kernels.DType, shared bool) {
	s := testmodel.Tiny
	s.MaxPositions = 1024
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := testmodel.WriteGGUF(path, s, kernels.F32, 3); err != nil {
		t.Fatal(err)
	}
	pool := kernels.NewPool(4)
	defer pool.Close()
	m, err := model.Load(path, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.KVDType = dt
	prompt := make([]int, 600)
	for i := range prompt {
		prompt[i] = (i*37 + 5) % s.Vocab
	}
	caches := make([]*model.Cache, 5)
	if shared {
		pool := m.NewKVPool(model.CacheBlockTokens, 5*700/model.CacheBlockTokens)
		for i := range caches {
			caches[i] = pool.NewCache()
		}
		for n := model.CacheBlockTokens; n <= 608; n += model.CacheBlockTokens {
			for _, c := range caches {
				if !c.Grow(n) {
					t.Fatalf("the pool ran out at %d positions", n)
				}
			}
		}
	} else {
		for i := range caches {
			caches[i] = m.NewCache(700)
		}
	}
	alone, batched := caches[0], caches[1]
	for _, c := range []*model.Cache{alone, batched} {
		if _, err := m.Forward([]model.Seq{{Cache: c, Tokens: prompt}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	others := make([]model.Seq, 3)
	for i := range others {
		others[i] = model.Seq{Cache: caches[2+i], Tokens: prompt[:10+i]}
	}
	for step := range 3 {
		tok := []int{(step*11 + 7) % s.Vocab}
		la, err := m.Forward([]model.Seq{{Cache: alone, Tokens: tok}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), la[0]...)
		lb, err := m.Forward(append([]model.Seq{{Cache: batched, Tokens: tok}}, others...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := testshared.MaxAbsDiff(got, lb[0]); d > 1e-5 {
			t.Fatalf("step %d: logits in parts differ from whole by %g", step, d)
		}
		for i := range others {
			others[i].Tokens = tok
		}
	}
}
