package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/model/testmodel"
)

// benchFiles writes the SmolLM2-135M-shaped random model once (cached
// across runs in the temp dir), as GGUF (F32, F16, Q8_0) and as a BF16
// safetensors dir.
var benchFiles = sync.OnceValues(func() (map[string]string, error) {
	dir := filepath.Join(os.TempDir(), "switchyard-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hf, f16, q8, err := testmodel.WriteSmolLM2Files(dir)
	if err != nil {
		return nil, err
	}
	f32 := filepath.Join(dir, "smollm2-135m-f32.gguf")
	if _, err := os.Stat(f32); err != nil {
		if err := testmodel.WriteGGUF(f32, testmodel.SmolLM2_135M, kernels.F32, testmodel.SmolLM2Seed); err != nil {
			return nil, err
		}
	}
	return map[string]string{"gguf-f32": f32, "gguf-f16": f16, "gguf-q8_0": q8, "safetensors-bf16": hf}, nil
})

func loadBench(b *testing.B, kind string) *model.Model {
	files, err := benchFiles()
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(files[kind], nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode measures decode tokens/s: seqs sequences, each adding
// one token per step after a context of 64 or 512 tokens, with no
// adapter, one shared adapter, or a distinct adapter per sequence.
func BenchmarkDecode(b *testing.B) {
	for _, kind := range []string{"gguf-f32", "gguf-f16", "gguf-q8_0", "safetensors-bf16"} {
		for _, seqs := range []int{1, 8} {
			for _, mode := range []string{"base", "distinct-adapters"} {
				if seqs == 1 && mode == "distinct-adapters" {
					mode = "one-adapter"
				}
				for _, ctx := range []int{64, 512} {
					b.Run(kind+"/seqs="+strconv.Itoa(seqs)+"/"+mode+"/ctx="+strconv.Itoa(ctx), func(b *testing.B) {
						m := loadBench(b, kind)
						benchDecode(b, m, seqs, mode, ctx)
					})
				}
			}
		}
	}
}

// benchDecode fills each sequence's cache with ctx tokens, then times
// decode steps; a cache that reaches ctx+64 positions goes back to ctx.
func benchDecode(b *testing.B, m *model.Model, nseq int, mode string, ctx int) {
	batch := lora.NewBatch(m.Pool())
	var adapters []*lora.Adapter
	for i := range nseq {
		if mode == "base" {
			adapters = append(adapters, nil)
		} else {
			adapters = append(adapters, lora.Random(&m.Config, 8, []model.Module{model.ModQ, model.ModV}, kernels.BF16, uint64(i)))
		}
	}
	caches := make([]*model.Cache, nseq)
	seqs := make([]model.Seq, nseq)
	prompt := make([]int, ctx)
	for i := range prompt {
		prompt[i] = (i*31 + 1) % m.Config.Vocab
	}
	for i := range caches {
		caches[i] = m.NewCache(ctx + 64)
		if _, err := m.Forward([]model.Seq{{Cache: caches[i], Tokens: prompt}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	steps := 0
	for b.Loop() {
		batch.Reset()
		for i := range seqs {
			if caches[i].Len == ctx+64 {
				caches[i].Truncate(ctx)
			}
			seqs[i] = model.Seq{Cache: caches[i], Tokens: []int{(steps*7 + i) % m.Config.Vocab}}
			batch.Add(adapters[i], 1)
		}
		if _, err := m.Forward(seqs, batch); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	b.ReportMetric(float64(steps*nseq)/b.Elapsed().Seconds(), "tok/s")
	b.ReportMetric(float64(m.Weights.StepBytes())*float64(steps)/b.Elapsed().Seconds()/1e9, "weightGB/s")
}

// BenchmarkPrefill measures prefill tokens/s for one 512-token prompt.
func BenchmarkPrefill(b *testing.B) {
	const n = 512
	for _, kind := range []string{"gguf-f32", "gguf-f16", "gguf-q8_0", "safetensors-bf16"} {
		b.Run(kind, func(b *testing.B) {
			m := loadBench(b, kind)
			prompt := make([]int, n)
			for i := range prompt {
				prompt[i] = (i*31 + 1) % m.Config.Vocab
			}
			cache := m.NewCache(n)
			for b.Loop() {
				cache.Truncate(0)
				if _, err := m.Forward([]model.Seq{{Cache: cache, Tokens: prompt}}, nil); err != nil {
					b.Fatal(err)
				}
			}
			c := &m.Config
			params := float64(c.Layers)*float64(c.Hidden*(2*c.Heads*c.HeadDim+2*c.KVHeads*c.HeadDim)+3*c.Hidden*c.Intermediate) + float64(c.Vocab*c.Hidden)/n
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(2*params*float64(n*b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
