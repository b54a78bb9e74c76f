package testshared

import (
	"encoding/json"
	"os"
	"testing"
)

// Fixture is one case of shared/fixtures/<case>/expected.json.
type Fixture struct {
	Case           string                     `json:"case"`
	Prompts        [][]int                    `json:"prompts"`
	GreedySteps    int                        `json:"greedy_steps"`
	AllPositions   [][]float32                `json:"base_all_positions_logits_prompt0"`
	Base           Expected                   `json:"base"`
	Adapters       map[string]AdapterExpected `json:"adapters"`
	Batch          []BatchEntry               `json:"batch"`
	SmallestMargin float64                    `json:"smallest_greedy_margin"`
}

// Expected holds the last-position logits and greedy ids for each prompt.
type Expected struct {
	LastLogits      [][]float32 `json:"last_logits"`
	Greedy          [][]int     `json:"greedy"`
	GreedyMinMargin []float64   `json:"greedy_min_margin"`
}

// AdapterExpected is Expected with an adapter applied.
type AdapterExpected struct {
	Expected
	Dir     string             `json:"dir"`
	DType   string             `json:"dtype"`
	Scaling map[string]float64 `json:"scaling_per_module"`
}

// BatchEntry is one entry of a mixed-adapter batch.
type BatchEntry struct {
	Prompt     []int     `json:"prompt"`
	Adapter    *string   `json:"adapter"`
	LastLogits []float32 `json:"last_logits"`
	Greedy     []int     `json:"greedy"`
}

// FixtureCases lists the inference fixture cases.
var FixtureCases = []string{"llama_tiny", "llama3_rope", "qwen2_tiny", "stories260K_hf"}

// LoadFixture reads shared/fixtures/<name>/expected.json.
func LoadFixture(t testing.TB, name string) *Fixture {
	t.Helper()
	data, err := os.ReadFile(Path(t, "fixtures", name, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f Fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s/expected.json: %v", name, err)
	}
	return &f
}

// MaxAbsDiff returns max |a[i]-b[i]|, or +Inf when the lengths differ.
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e300
	}
	var m float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		if d > m || d != d {
			m = max(m, d)
			if d != d {
				return 1e300
			}
		}
	}
	return m
}
