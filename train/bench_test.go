package train

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/model/testmodel"
)

// Bench shapes, shared with bench/lora_train_torch.py: every optimizer
// step is benchBatch sequences of benchSeq tokens, the first benchPrompt
// of each masked out of the loss.
const (
	benchBatch  = 4
	benchSeq    = 128
	benchPrompt = 32
)

// BenchmarkTrainSmolLM2 measures training tokens/s (prompt and completion
// tokens, forward, backward and AdamW) on the SmolLM2-135M-shaped model
// (BF16 weights, random values), LoRA r8 on q,v and on all linear layers.
// bench/run.sh runs it next to the PyTorch script doing the same steps.
func BenchmarkTrainSmolLM2(b *testing.B) {
	dir := os.Getenv("SWITCHYARD_TESTMODEL_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "switchyard-testmodel")
	}
	hf, _, _, err := testmodel.WriteSmolLM2Files(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(hf, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	batch := make([]Example, benchBatch)
	for i := range batch {
		ex := Example{Tokens: make([]int, benchSeq), Target: make([]bool, benchSeq)}
		for t := range benchSeq {
			ex.Tokens[t] = (i*7919 + t*104729) % m.Config.Vocab
			ex.Target[t] = t >= benchPrompt
		}
		batch[i] = ex
	}
	for _, tc := range []struct {
		name    string
		targets []string
	}{{"qv", []string{"q_proj", "v_proj"}}, {"all-linear", []string{"all-linear"}}} {
		b.Run(tc.name, func(b *testing.B) {
			j, err := newJob(m, Options{Rank: 8, Alpha: 16, Targets: tc.targets, LR: 1e-4, BatchSize: benchBatch, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer j.close()
			j.accumulate(batch, 0) // warm-up: grows the buffers
			b.ResetTimer()
			start := time.Now()
			for step := range b.N {
				j.accumulate(batch, step)
				j.ps.adamW(&j.opts, 1e-4, step+1)
			}
			b.ReportMetric(float64(b.N*benchBatch*benchSeq)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}
