package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// tinyModel loads the llama_tiny fixture model (untied head, GQA).
func tinyModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join(fixtures(t), "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// randomExamples makes n examples of random tokens with a random prompt
// length.
func randomExamples(seed uint64, n, vocab int) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	exs := make([]Example, n)
	for i := range exs {
		l := 4 + rng.IntN(12)
		p := 1 + rng.IntN(l-2)
		ex := Example{Tokens: make([]int, l), Target: make([]bool, l), Line: i + 1}
		for j := range l {
			ex.Tokens[j] = rng.IntN(vocab)
			ex.Target[j] = j >= p
		}
		exs[i] = ex
	}
	return exs
}

// adapterValues returns every value of an adapter's pairs in order.
func adapterValues(a *lora.Adapter) []float32 {
	var v []float32
	for _, l := range a.Layers {
		for _, p := range l {
			if p != nil {
				v = append(v, kernels.AsF32(p.A.Data)...)
				v = append(v, kernels.AsF32(p.BT.Data)...)
			}
		}
	}
	return v
}

// TestResumeEqualsUninterrupted stops a run after a checkpoint, as a crash
// would, resumes it from that checkpoint and checks that the adapter is
// bit for bit the one an uninterrupted run gives (with shuffling, dropout,
// accumulation, clipping, weight decay and a schedule all on).
func TestResumeEqualsUninterrupted(t *testing.T) {
	m := tinyModel(t)
	exs := randomExamples(1, 12, m.Config.Vocab)
	opts := Options{Rank: 4, Alpha: 8, Targets: []string{"all-linear"}, Dropout: 0.1, LR: 3e-3, WeightDecay: 0.01,
		Epochs: 3, BatchSize: 2, GradAccum: 2, Warmup: 2, Schedule: "cosine", ClipNorm: 0.5, Seed: 42, Shuffle: true}

	full := opts
	full.CheckpointDir = t.TempDir()
	want, rep, err := Train(context.Background(), m, exs, nil, full)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Steps != 9 {
		t.Fatalf("%d steps, want 9", rep.Steps)
	}

	crashed := opts
	crashed.CheckpointDir = t.TempDir()
	crashed.CheckpointEvery = 4
	ctx, cancel := context.WithCancel(context.Background())
	crashed.Progress = func(p Progress) {
		if p.Step == 6 {
			cancel() // dies two steps after the checkpoint at 4
		}
	}
	if _, _, err := Train(ctx, m, exs, nil, crashed); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed := opts
	resumed.ResumeFrom = filepath.Join(crashed.CheckpointDir, "checkpoint-000004")
	got, rep2, err := Train(context.Background(), m, exs, nil, resumed)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Steps != 9 {
		t.Fatalf("resumed run ended at step %d, want 9", rep2.Steps)
	}
	if !slices.Equal(adapterValues(got), adapterValues(want)) {
		t.Fatal("the resumed run's adapter differs from the uninterrupted run's")
	}
	// The final checkpoint of the uninterrupted run is a servable adapter.
	if _, err := lora.Load(filepath.Join(full.CheckpointDir, "checkpoint-000009"), &m.Config); err != nil {
		t.Fatal(err)
	}
}

// TestSameSeedSameAdapter checks reproducibility, and that another seed
// gives another adapter.
func TestSameSeedSameAdapter(t *testing.T) {
	m := tinyModel(t)
	exs := randomExamples(2, 6, m.Config.Vocab)
	run := func(seed uint64) []float32 {
		a, _, err := Train(context.Background(), m, exs, nil, Options{Dropout: 0.2, Seed: seed, Shuffle: true, Epochs: 2, LR: 1e-2})
		if err != nil {
			t.Fatal(err)
		}
		return adapterValues(a)
	}
	a, b, c := run(5), run(5), run(6)
	if !slices.Equal(a, b) {
		t.Error("two runs with the same seed differ")
	}
	if slices.Equal(a, c) {
		t.Error("two runs with different seeds are equal")
	}
}

// TestSavePEFTRoundTrip writes a trained adapter and reads it back with
// lora.Load: same weights, scales and targets, and a config PEFT reads.
func TestSavePEFTRoundTrip(t *testing.T) {
	m := tinyModel(t)
	exs := randomExamples(3, 4, m.Config.Vocab)
	for _, opts := range []Options{
		{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}, MaxSteps: 2},
		{Rank: 4, Alpha: 8, RSLoRA: true, Targets: []string{"all-linear"}, MaxSteps: 2},
	} {
		a, _, err := Train(context.Background(), m, exs, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := SavePEFT(dir, a, opts, "llama_tiny"); err != nil {
			t.Fatal(err)
		}
		b, err := lora.Load(dir, &m.Config)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(adapterValues(a), adapterValues(b)) {
			t.Error("weights changed in the round trip")
		}
		if !slices.Equal(a.Targets(), b.Targets()) {
			t.Errorf("targets %v, want %v", b.Targets(), a.Targets())
		}
		want := float32(2)
		if opts.RSLoRA {
			want = 4
		}
		for _, l := range b.Layers {
			for _, p := range l {
				if p != nil && p.Scale != want {
					t.Fatalf("scale %v, want %v", p.Scale, want)
				}
			}
		}
		if b.Config.BaseModel != "llama_tiny" || b.Config.TaskType != "CAUSAL_LM" {
			t.Errorf("config %+v", b.Config)
		}
		// GGUF LoRA: the same weights after llama.cpp's q/k row order and back.
		gpath := filepath.Join(t.TempDir(), "adapter.gguf")
		if err := SaveGGUF(gpath, a, &m.Config); err != nil {
			t.Fatal(err)
		}
		g, err := lora.Load(gpath, &m.Config)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(adapterValues(a), adapterValues(g)) {
			t.Error("weights changed in the GGUF round trip")
		}
		for _, l := range g.Layers {
			for _, p := range l {
				if p != nil && math.Abs(float64(p.Scale-want)) > 1e-6 {
					t.Fatalf("GGUF scale %v, want %v", p.Scale, want)
				}
			}
		}
		// Also without a.Config: built from the options.
		a.Config = nil
		if err := SavePEFT(dir, a, opts, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := lora.Load(dir, &m.Config); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBadOptions checks that bad hyperparameters are refused before
// training, all named in one error.
func TestBadOptions(t *testing.T) {
	m := tinyModel(t)
	exs := randomExamples(4, 2, m.Config.Vocab)
	_, _, err := Train(context.Background(), m, exs, nil, Options{Rank: -1, LR: 5, Dropout: 1, Schedule: "step", Targets: []string{"lm_head"}})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"rank", "learning rate", "dropout", "schedule", "lm_head"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	bad := []Example{{Tokens: []int{1, 99999}, Target: []bool{false, true}}}
	if _, _, err := Train(context.Background(), m, bad, nil, Options{}); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("out-of-vocabulary token: %v", err)
	}
}
