package peft

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// modulePaths are the projections of a decoder layer as PEFT names them.
// (The test reads config.json itself to stay independent of package model.)
var modulePaths = []string{
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
}

// sharedDir returns the shared test data directory: $SWITCHYARD_SHARED or
// ../../../shared from this package.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures")); err != nil {
		t.Fatalf("shared fixtures missing (set SWITCHYARD_SHARED): %v", err)
	}
	return dir
}

// fixtureCases are the inference fixtures with adapters.
var fixtureCases = []string{"llama_tiny", "llama3_rope", "qwen2_tiny", "stories260K_hf"}

type expectedAdapters struct {
	Adapters map[string]struct {
		Dir     string             `json:"dir"`
		DType   string             `json:"dtype"`
		Scaling map[string]float64 `json:"scaling_per_module"`
	} `json:"adapters"`
}

// TestFixtureScaling checks Targets, Rank and Scaling of every fixture
// adapter against expected.json: every listed module is targeted with
// exactly the listed scaling, and no other projection of the model is.
func TestFixtureScaling(t *testing.T) {
	fixtures := filepath.Join(sharedDir(t), "fixtures")
	for _, name := range fixtureCases {
		dir := filepath.Join(fixtures, name)
		data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		var exp expectedAdapters
		if err := json.Unmarshal(data, &exp); err != nil {
			t.Fatal(err)
		}
		var mc struct {
			Layers int `json:"num_hidden_layers"`
		}
		if data, err := os.ReadFile(filepath.Join(dir, "model", "config.json")); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(data, &mc); err != nil || mc.Layers <= 0 {
			t.Fatalf("%s: config.json: %v (layers %d)", name, err, mc.Layers)
		}
		if len(exp.Adapters) == 0 {
			t.Fatalf("%s: expected.json lists no adapters", name)
		}
		for aname, a := range exp.Adapters {
			t.Run(name+"/"+aname, func(t *testing.T) {
				c, err := ReadFile(filepath.Join(dir, a.Dir))
				if err != nil {
					t.Fatal(err)
				}
				for layer := range mc.Layers {
					for _, path := range modulePaths {
						mod := fmt.Sprintf("model.layers.%d.%s", layer, path)
						want, listed := a.Scaling[mod]
						if got := c.Targets(mod); got != listed {
							t.Errorf("Targets(%q) = %v, want %v", mod, got, listed)
						}
						if !listed {
							continue
						}
						if got := c.Scaling(mod); got != want {
							t.Errorf("Scaling(%q) = %v, want %v", mod, got, want)
						}
					}
				}
				for mod := range a.Scaling {
					if !c.Targets(mod) {
						t.Errorf("expected.json lists %q, not targeted", mod)
					}
				}
			})
		}
	}
}

// TestFixturePatterns pins the rank and alpha of the r16_qkvo_patterns
// adapter: rank_pattern {"o_proj": 4} changes the rank only, alpha_pattern
// {"layers.1.self_attn.v_proj": 8} the alpha of one module only.
func TestFixturePatterns(t *testing.T) {
	c, err := ReadFile(filepath.Join(sharedDir(t), "fixtures", "llama_tiny", "adapters", "r16_qkvo_patterns"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		module string
		rank   int
		alpha  float64
	}{
		{"model.layers.0.self_attn.q_proj", 16, 32},
		{"model.layers.0.self_attn.o_proj", 4, 32},
		{"model.layers.1.self_attn.o_proj", 4, 32},
		{"model.layers.0.self_attn.v_proj", 16, 32},
		{"model.layers.1.self_attn.v_proj", 16, 8},
	}
	for _, tt := range tests {
		if r, a := c.Rank(tt.module), c.Alpha(tt.module); r != tt.rank || a != tt.alpha {
			t.Errorf("%s: rank %d alpha %v, want %d and %v", tt.module, r, a, tt.rank, tt.alpha)
		}
	}
}

// TestFixtureLoraGrad parses the trainer fixture's adapter config.
func TestFixtureLoraGrad(t *testing.T) {
	c, err := ReadFile(filepath.Join(sharedDir(t), "fixtures", "lora_grad", "adapter"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"} {
		mod := "model.layers.1." + map[bool]string{true: "self_attn.", false: "mlp."}[m[0] == 'q' || m[0] == 'v'] + m
		if !c.Targets(mod) || c.Scaling(mod) != 2 {
			t.Errorf("%s: Targets %v Scaling %v, want true and 2", mod, c.Targets(mod), c.Scaling(mod))
		}
	}
	if c.Targets("model.layers.0.self_attn.k_proj") {
		t.Error("k_proj targeted")
	}
}
