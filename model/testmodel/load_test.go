package testmodel

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// TestLoadHFAndGGUFAgree loads the F32 Hugging Face and GGUF files of
// each shape with model.Load and checks that they give the same logits:
// the GGUF writer's names, permutation and hyperparameters agree with the
// Hugging Face ones as the loader reads them.
func TestLoadHFAndGGUFAgree(t *testing.T) {
	prompt := []int{BOSID, 72, 101, 108, 108, 111, 300, 5}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			hfDir, ggufPath := filepath.Join(dir, "hf"), filepath.Join(dir, "model.gguf")
			if err := WriteHF(hfDir, sh.shape, kernels.F32, 5); err != nil {
				t.Fatal(err)
			}
			if err := WriteGGUF(ggufPath, sh.shape, kernels.F32, 5); err != nil {
				t.Fatal(err)
			}
			var logits [2][]float32
			for i, path := range []string{hfDir, ggufPath} {
				m, err := model.Load(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				out, err := m.Forward([]model.Seq{{Cache: m.NewCache(len(prompt)), Tokens: prompt}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				logits[i] = append([]float32(nil), out[0]...)
			}
			if len(logits[0]) != sh.shape.Vocab || len(logits[1]) != sh.shape.Vocab {
				t.Fatalf("got %d and %d logits, want %d", len(logits[0]), len(logits[1]), sh.shape.Vocab)
			}
			var spread float64
			for i := range logits[0] {
				d := math.Abs(float64(logits[0][i] - logits[1][i]))
				if d > 1e-4 {
					t.Fatalf("logit %d: HF %v, GGUF %v", i, logits[0][i], logits[1][i])
				}
				spread = max(spread, math.Abs(float64(logits[0][i]-logits[0][0])))
			}
			if spread == 0 {
				t.Error("all logits are equal: the weights are degenerate")
			}
		})
	}
}
