package engine_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

const logitTol = 1e-4

func greedyParams(steps int) engine.SamplingParams {
	return engine.SamplingParams{Temperature: 0, MaxTokens: steps}
}

// runCase checks one request set against expected logits and greedy ids.
func checkResults(t *testing.T, label string, res []engine.Result, logits [][]float32, greedy [][]int) {
	t.Helper()
	for i, r := range res {
		if d := testshared.MaxAbsDiff(r.LastLogits, logits[i]); d > logitTol {
			t.Errorf("%s[%d]: max |logit diff| = %g", label, i, d)
		}
		if !slices.Equal(r.Generated, greedy[i]) {
			t.Errorf("%s[%d]: greedy\n got %v\nwant %v", label, i, r.Generated, greedy[i])
		}
	}
}

// TestFixtures runs every fixture case through the engine: the base model
// and every adapter one prompt at a time, then the mixed-adapter batch as
// one batch, each entry compared with the float64 reference.
func TestFixtures(t *testing.T) {
	for _, name := range testshared.FixtureCases {
		t.Run(name, func(t *testing.T) {
			fx := testshared.LoadFixture(t, name)
			dir := testshared.Path(t, "fixtures", name)
			m, err := model.Load(filepath.Join(dir, "model"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.KVDType = kernels.F32 // compared with the reference at logitTol
			e := &engine.Engine{Model: m}
			adapters := map[string]*lora.Adapter{}
			for an, ae := range fx.Adapters {
				a, err := lora.Load(filepath.Join(dir, ae.Dir), &m.Config)
				if err != nil {
					t.Fatalf("adapter %s: %v", an, err)
				}
				adapters[an] = a
			}
			run := func(label string, prompts [][]int, adapter func(i int) *lora.Adapter, logits [][]float32, greedy [][]int) {
				var reqs []engine.Request
				for i, p := range prompts {
					reqs = append(reqs, engine.Request{Prompt: p, Adapter: adapter(i), Params: greedyParams(len(greedy[i])), IgnoreEOS: true})
				}
				res, err := e.Generate(context.Background(), reqs)
				if err != nil {
					t.Fatal(err)
				}
				checkResults(t, label, res, logits, greedy)
			}
			for i, p := range fx.Prompts {
				run("base", [][]int{p}, func(int) *lora.Adapter { return nil },
					fx.Base.LastLogits[i:i+1], fx.Base.Greedy[i:i+1])
			}
			for an, ae := range fx.Adapters {
				for i, p := range fx.Prompts {
					run(an, [][]int{p}, func(int) *lora.Adapter { return adapters[an] },
						ae.LastLogits[i:i+1], ae.Greedy[i:i+1])
				}
			}
			var prompts [][]int
			var logits [][]float32
			var greedy [][]int
			for _, b := range fx.Batch {
				prompts = append(prompts, b.Prompt)
				logits = append(logits, b.LastLogits)
				greedy = append(greedy, b.Greedy)
			}
			run("batch", prompts, func(i int) *lora.Adapter {
				if fx.Batch[i].Adapter == nil {
					return nil
				}
				return adapters[*fx.Batch[i].Adapter]
			}, logits, greedy)
		})
	}
}

// TestPEFTAdapterOnGGUFBase applies the PEFT adapter made for the Hugging
// Face copy of TinyStories to the GGUF copy, whose q/k rows are stored in
// llama.cpp's interleaved order, and expects the adapter's reference output.
func TestPEFTAdapterOnGGUFBase(t *testing.T) {
	fx := testshared.LoadFixture(t, "stories260K_hf")
	m, err := model.Load(testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ae := fx.Adapters["r8_qv"]
	a, err := lora.Load(testshared.Path(t, "fixtures", "stories260K_hf", ae.Dir), &m.Config)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine.Engine{Model: m}
	for i, p := range fx.Prompts {
		res, err := e.Generate(context.Background(), []engine.Request{{Prompt: p, Adapter: a, Params: greedyParams(len(ae.Greedy[i])), IgnoreEOS: true}})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, "gguf+r8_qv", res, ae.LastLogits[i:i+1], ae.Greedy[i:i+1])
	}
}
