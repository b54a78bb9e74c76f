package model_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// logitTol is the largest logit difference from the float64 reference
// the fixture tests allow with a float32 KV cache. With an F16 one (each
// cached key and value rounded to 11 significant bits) they allow
// f16CacheTol times the largest reference logit: the fixtures' models
// come within half of it.
const (
	logitTol    = 1e-4
	f16CacheTol = 2e-3
)

// greedy runs argmax decoding for steps tokens after prompt.
func greedy(t *testing.T, m *model.Model, prompt []int, steps int) []int {
	t.Helper()
	cache := m.NewCache(len(prompt) + steps)
	var out []int
	tokens := prompt
	for range steps {
		logits, err := m.Forward([]model.Seq{{Cache: cache, Tokens: tokens}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := argmax(logits[0])
		out = append(out, id)
		tokens = []int{id}
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestFixtureBase checks the base model of every fixture case against the
// float64 reference: logits at every position of prompt 0, last logits of
// every prompt, and greedy ids; with a float32 KV cache, and again with
// an F16 one, within f16CacheTol.
func TestFixtureBase(t *testing.T) {
	for _, name := range testshared.FixtureCases {
		t.Run(name, func(t *testing.T) {
			fx := testshared.LoadFixture(t, name)
			m, err := model.Load(testshared.Path(t, "fixtures", name, "model"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			checkFixtureBase(t, m, fx)
		})
	}
}

// checkFixtureBase runs the checks of TestFixtureBase on m, with an F32
// KV cache and then an F16 one.
func checkFixtureBase(t *testing.T, m *model.Model, fx *testshared.Fixture) {
	t.Helper()
	m.KVDType = kernels.F32
	checkFixtureBaseTol(t, m, fx, logitTol)
	m.KVDType = kernels.F16
	top := 0.0
	for _, l := range fx.Base.LastLogits {
		for _, v := range l {
			top = max(top, math.Abs(float64(v)))
		}
	}
	checkFixtureBaseTol(t, m, fx, f16CacheTol*top)
}

func checkFixtureBaseTol(t *testing.T, m *model.Model, fx *testshared.Fixture, logitTol float64) {
	t.Helper()
	p0 := fx.Prompts[0]
	logits, err := m.Forward([]model.Seq{{Cache: m.NewCache(len(p0)), Tokens: p0, AllLogits: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Config.Vocab
	for pos, want := range fx.AllPositions {
		if d := testshared.MaxAbsDiff(logits[0][pos*v:(pos+1)*v], want); d > logitTol {
			t.Errorf("prompt 0 position %d: max |logit diff| = %g", pos, d)
		}
	}
	for i, p := range fx.Prompts {
		logits, err := m.Forward([]model.Seq{{Cache: m.NewCache(len(p)), Tokens: p}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := testshared.MaxAbsDiff(logits[0], fx.Base.LastLogits[i]); d > logitTol {
			t.Errorf("prompt %d: max |last logit diff| = %g", i, d)
		}
		if got := greedy(t, m, p, fx.GreedySteps); !slices.Equal(got, fx.Base.Greedy[i]) {
			t.Errorf("prompt %d greedy:\n got %v\nwant %v", i, got, fx.Base.Greedy[i])
		}
	}
}

// TestBatchEqualsAlone runs every prompt of a case in one batch and checks
// each gets the logits it gets alone.
func TestBatchEqualsAlone(t *testing.T) {
	fx := testshared.LoadFixture(t, "qwen2_tiny")
	m, err := model.Load(testshared.Path(t, "fixtures", "qwen2_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var seqs []model.Seq
	for _, p := range fx.Prompts {
		seqs = append(seqs, model.Seq{Cache: m.NewCache(len(p) + 1), Tokens: p})
	}
	logits, err := m.Forward(seqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fx.Prompts {
		if d := testshared.MaxAbsDiff(logits[i], fx.Base.LastLogits[i]); d > logitTol {
			t.Errorf("prompt %d in a batch: max |logit diff| = %g", i, d)
		}
	}
}

// TestStoriesGGUFGolden checks the real TinyStories 260K GGUF (interleaved
// q/k rows converted at load) against llama2.c's golden greedy output, and
// the HF copy of the same model against the same ids.
func TestStoriesGGUFGolden(t *testing.T) {
	data, err := os.ReadFile(testshared.Path(t, "models", "stories260K", "stories260K_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]struct {
		Steps     int   `json:"steps"`
		PromptIDs []int `json:"prompt_ids"`
		IDs       []int `json:"generated_ids_including_prompt"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	g := golden["<BOS only>"]
	for _, path := range []string{
		testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"),
		testshared.Path(t, "fixtures", "stories260K_hf", "model"),
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := model.Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := greedy(t, m, []int{1}, g.Steps); !slices.Equal(got, g.IDs) {
				t.Errorf("greedy from BOS:\n got %v\nwant %v", got, g.IDs)
			}
		})
	}
}

// TestStoriesGGUFMatchesHF checks that the GGUF and HF copies of the
// TinyStories model give the HF fixture's logits.
func TestStoriesGGUFMatchesHF(t *testing.T) {
	fx := testshared.LoadFixture(t, "stories260K_hf")
	m, err := model.Load(testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkFixtureBase(t, m, fx)
}

// TestLoadInterleaves checks that Load puts every projection and the LM
// head that the layout fits into kernels.Interleave's layout (which the
// fixture tests above then run), keeps a tied embedding the same matrix
// as the head, and leaves the rest row-major: an untied embedding, and
// TinyStories' down_proj, whose 172 columns are not a multiple of 32.
func TestLoadInterleaves(t *testing.T) {
	for _, path := range []string{
		testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"), // untied
		testshared.Path(t, "fixtures", "stories260K_hf", "model"),           // tied
	} {
		m, err := model.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := &m.Weights
		same := &w.Head.Data[0] == &w.Embed.Data[0]
		if !w.Head.Interleaved || w.Embed.Interleaved != m.Config.TiedEmbed || same != m.Config.TiedEmbed {
			t.Errorf("%s (tied %v): head interleaved %v, embedding interleaved %v, one matrix %v",
				path, m.Config.TiedEmbed, w.Head.Interleaved, w.Embed.Interleaved, same)
		}
		for l, layer := range w.Layers {
			for mod, p := range layer.Proj {
				if want := p.Cols%kernels.InterleaveCols == 0; p.Interleaved != want {
					t.Errorf("%s layer %d %v (%dx%d): interleaved %v, want %v", path, l, model.Module(mod), p.Rows, p.Cols, p.Interleaved, want)
				}
			}
		}
		m.Close()
	}
}

func TestForwardErrors(t *testing.T) {
	m, err := model.Load(testshared.Path(t, "fixtures", "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, tc := range []struct {
		name string
		seq  model.Seq
	}{
		{"id above vocab", model.Seq{Cache: m.NewCache(4), Tokens: []int{1, 256}}},
		{"negative id", model.Seq{Cache: m.NewCache(4), Tokens: []int{-1}}},
		{"no tokens", model.Seq{Cache: m.NewCache(4)}},
		{"longer than cache", model.Seq{Cache: m.NewCache(2), Tokens: []int{1, 2, 3}}},
	} {
		if _, err := m.Forward([]model.Seq{tc.seq}, nil); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestDecodeAllocatesNothing checks that once its buffers have grown, a
// decode step allocates nothing: no per-step garbage for the collector
// to chase while a server decodes.
func TestDecodeAllocatesNothing(t *testing.T) {
	m, err := model.Load(testshared.Path(t, "fixtures", "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.NewCache(64)
	seqs := []model.Seq{{Cache: c, Tokens: []int{1, 2, 3}}}
	if _, err := m.Forward(seqs, nil); err != nil {
		t.Fatal(err)
	}
	tok := []int{5}
	allocs := testing.AllocsPerRun(100, func() {
		if c.Len > 60 {
			c.Truncate(3)
		}
		seqs[0] = model.Seq{Cache: c, Tokens: tok}
		if _, err := m.Forward(seqs, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a decode step made %v allocations", allocs)
	}
}
