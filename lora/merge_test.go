package lora_test

import (
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// TestMergeMatchesUnmerged folds each fixture adapter into a fresh copy of
// its base model and checks that the merged model alone gives the
// adapter's reference logits.
func TestMergeMatchesUnmerged(t *testing.T) {
	for _, name := range []string{"llama_tiny", "llama3_rope", "qwen2_tiny"} {
		fx := testshared.LoadFixture(t, name)
		dir := testshared.Path(t, "fixtures", name)
		for an, ae := range fx.Adapters {
			m, err := model.Load(filepath.Join(dir, "model"), nil)
			if err != nil {
				t.Fatal(err)
			}
			m.KVDType = kernels.F32 // compared with the reference at logitTol
			a, err := lora.Load(filepath.Join(dir, ae.Dir), &m.Config)
			if err != nil {
				t.Fatal(err)
			}
			if err := lora.Merge(m, a); err != nil {
				t.Fatal(err)
			}
			for i, p := range fx.Prompts {
				logits, err := m.Forward([]model.Seq{{Cache: m.NewCache(len(p)), Tokens: p}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d := testshared.MaxAbsDiff(logits[0], ae.LastLogits[i]); d > 1e-4 {
					t.Errorf("%s/%s merged, prompt %d: max |logit diff| %g", name, an, i, d)
				}
			}
			m.Close()
		}
	}
}
