package train

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// loadStories loads the TinyStories 260K model (Hugging Face layout) and
// its tokenizer.
func loadStories(t *testing.T) (*model.Model, *tokenizer.Tokenizer, string) {
	t.Helper()
	dir := filepath.Join(fixtures(t), "stories260K_hf", "model")
	m, err := model.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := engine.LoadTokenizer(m, dir)
	if err != nil || tok == nil {
		t.Fatalf("tokenizer: %v", err)
	}
	return m, tok, dir
}

// TestTrainChangesGenerations trains the TinyStories 260K model on a tiny
// dataset whose completions all meet a dragon, and checks that the eval
// loss falls, that the adapter written by SavePEFT loads with lora.Load,
// and that greedy generation on held-out prompts now tells of a dragon,
// which the base model does not.
func TestTrainChangesGenerations(t *testing.T) {
	m, tok, dir := loadStories(t)
	trainSet, err := ReadExamples(filepath.Join("..", "examples", "data", "dragon_train.jsonl"), tok, 256, false)
	if err != nil {
		t.Fatal(err)
	}
	evalSet, err := ReadExamples(filepath.Join("..", "examples", "data", "dragon_eval.jsonl"), tok, 256, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Rank: 8, Alpha: 16, Targets: []string{"all-linear"}, LR: 1e-2, Epochs: 25, BatchSize: 4,
		Warmup: 10, Schedule: "cosine", ClipNorm: 1, Seed: 7, Shuffle: true, Dropout: 0.05}
	start := time.Now()
	var last Progress
	opts.Progress = func(p Progress) { last = p }
	ad, rep, err := Train(context.Background(), m, trainSet, evalSet, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps in %v (%.0f tokens/s): train loss %.3f -> %.3f, eval loss %.3f -> %.3f",
		rep.Steps, time.Since(start).Round(time.Millisecond), rep.TokensPerSec, rep.LossFirst, rep.LossLast, rep.EvalLossFirst, rep.EvalLossLast)
	if !(rep.EvalLossLast < 0.5*rep.EvalLossFirst) || last.Step != rep.Steps {
		t.Errorf("eval loss %.3f -> %.3f: did not halve (last progress %+v)", rep.EvalLossFirst, rep.EvalLossLast, last)
	}

	out := t.TempDir()
	if err := SavePEFT(out, ad, opts, dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := lora.Load(out, &m.Config)
	if err != nil {
		t.Fatal(err)
	}
	eng := &engine.Engine{Model: m, Tokenizer: tok}
	for _, ex := range evalSet[:3] {
		prompt := promptOf(ex)
		var reqs []engine.Request
		for _, a := range []*lora.Adapter{nil, loaded} {
			reqs = append(reqs, engine.Request{Prompt: prompt, Adapter: a, Params: engine.SamplingParams{MaxTokens: 40}})
		}
		res, err := eng.Generate(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("base:    %q", res[0].Text)
		t.Logf("adapter: %q", res[1].Text)
		if strings.Contains(res[0].Text, "dragon") {
			t.Errorf("the base model already mentions a dragon: %q", res[0].Text)
		}
		if !strings.Contains(res[1].Text, "saw a big green dragon") {
			t.Errorf("with the adapter, generation does not meet the dragon: %q", res[1].Text)
		}
	}
}

// promptOf returns the prompt tokens of an example (those before the first
// target).
func promptOf(ex Example) []int {
	for t, tg := range ex.Target {
		if tg {
			return ex.Tokens[:t]
		}
	}
	return ex.Tokens
}

// TestMergedMatchesUnmerged checks that a trained adapter gives the same
// logits at every position through the engine's unmerged delta as through
// weights merged with lora.Merge, and that the trainer's own forward pass
// agrees with the engine.
func TestMergedMatchesUnmerged(t *testing.T) {
	m, tok, dir := loadStories(t)
	exs, err := ReadExamples(filepath.Join("..", "examples", "data", "dragon_train.jsonl"), tok, 256, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Rank: 4, Alpha: 8, Targets: []string{"all-linear"}, LR: 1e-2, MaxSteps: 20, BatchSize: 4, Seed: 3, ClipNorm: 1}
	ad, _, err := Train(context.Background(), m, exs, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := SavePEFT(out, ad, opts, ""); err != nil {
		t.Fatal(err)
	}
	loaded, err := lora.Load(out, &m.Config)
	if err != nil {
		t.Fatal(err)
	}
	ids := exs[0].Tokens
	forward := func(mm *model.Model, a *lora.Adapter) []float32 {
		var delta model.Delta
		if a != nil {
			b := lora.NewBatch(mm.Pool())
			b.Add(a, len(ids))
			delta = b
		}
		logits, err := mm.Forward([]model.Seq{{Cache: mm.NewCache(len(ids)), Tokens: ids, AllLogits: true}}, delta)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), logits[0]...)
	}
	unmerged := forward(m, loaded)
	merged, err := model.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	if err := lora.Merge(merged, loaded); err != nil {
		t.Fatal(err)
	}
	mergedLogits := forward(merged, nil)
	var worst float64
	for i := range unmerged {
		worst = max(worst, math.Abs(float64(unmerged[i]-mergedLogits[i])))
	}
	t.Logf("max |unmerged - merged| logit difference over %d positions: %.3g", len(ids), worst)
	if worst > 1e-4 {
		t.Errorf("unmerged and merged logits differ by %g", worst)
	}
	// The trainer's forward pass gives the engine's loss.
	V := m.Config.Vocab
	var want float64
	count := 0
	for p := 1; p < len(ids); p++ {
		if !exs[0].Target[p] {
			continue
		}
		row := unmerged[(p-1)*V : p*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		want += mx + math.Log(s) - float64(row[ids[p]])
		count++
	}
	want /= float64(count)
	j, err := newJob(m, Options{Init: loaded, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if got := j.evalLoss(exs[:1]); math.Abs(got-want) > 1e-4 {
		t.Errorf("trainer loss %.6f, engine loss %.6f", got, want)
	}
}
