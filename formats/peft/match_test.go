package peft

import (
	"strings"
	"testing"
)

// mustParse parses a config given as JSON members without the braces,
// adding peft_type when absent.
func mustParse(t *testing.T, members string) *Config {
	t.Helper()
	c, err := Parse([]byte(configJSON(members)))
	if err != nil {
		t.Fatalf("Parse(%s): %v", members, err)
	}
	return c
}

func configJSON(members string) string {
	if !strings.Contains(members, `"peft_type"`) {
		members = `"peft_type": "LORA", ` + members
	}
	return "{" + members + "}"
}

const (
	q0    = "model.layers.0.self_attn.q_proj"
	k0    = "model.layers.0.self_attn.k_proj"
	v0    = "model.layers.0.self_attn.v_proj"
	o0    = "model.layers.0.self_attn.o_proj"
	up0   = "model.layers.0.mlp.up_proj"
	down0 = "model.layers.0.mlp.down_proj"
	q1    = "model.layers.1.self_attn.q_proj"
	v1    = "model.layers.1.self_attn.v_proj"
	q2    = "model.layers.2.self_attn.q_proj"
	v11   = "model.layers.11.self_attn.v_proj"
	embed = "model.embed_tokens"
	head  = "lm_head"
	norm  = "model.layers.0.input_layernorm"
)

var targetTests = []struct {
	name    string
	config  string
	targets []string // modules that must be targeted
	skips   []string // modules that must not
}{
	{"list suffix", `"target_modules": ["q_proj", "v_proj"]`,
		[]string{q0, v0, q1, v11}, []string{k0, o0, up0, embed, head, norm}},
	{"list needs a dot boundary", `"target_modules": ["_proj", "proj"]`,
		nil, []string{q0, v0, up0}},
	{"list dotted suffix", `"target_modules": ["self_attn.q_proj", "mlp.up_proj"]`,
		[]string{q0, q1, up0}, []string{v0, down0}},
	{"list longer suffix", `"target_modules": ["layers.1.self_attn.q_proj"]`,
		[]string{q1}, []string{q0, q2}},
	{"list full name", `"target_modules": ["model.layers.0.self_attn.q_proj"]`,
		[]string{q0}, []string{q1}},
	{"list partial component", `"target_modules": ["attn.q_proj"]`,
		nil, []string{q0}},
	{"regex full match", `"target_modules": ".*\\.(q|v)_proj"`,
		[]string{q0, v0, q1, v11}, []string{k0, up0, embed}},
	{"regex must match whole name", `"target_modules": "q_proj"`,
		nil, []string{q0, q1}},
	{"regex layers", `"target_modules": "model\\.layers\\.(0|2)\\.self_attn\\.q_proj"`,
		[]string{q0, q2}, []string{q1, v0}},
	{"regex alternation is whole", `"target_modules": "model.layers.0.self_attn.q_proj|v_proj"`,
		[]string{q0}, []string{v0, v1}},
	{"all-linear", `"target_modules": "all-linear"`,
		[]string{q0, k0, v0, o0, up0, down0, v11}, []string{embed, head, norm}},
	{"all-linear any case", `"target_modules": "ALL-LINEAR"`,
		[]string{q0, down0}, []string{head}},
	{"layers_to_transform list", `"target_modules": ["q_proj", "v_proj"], "layers_to_transform": [0, 2]`,
		[]string{q0, v0, q2}, []string{q1, v1, v11}},
	{"layers_to_transform int", `"target_modules": ["v_proj"], "layers_to_transform": 11`,
		[]string{v11}, []string{v0, v1}},
	{"layers_to_transform empty list means all", `"target_modules": ["v_proj"], "layers_to_transform": []`,
		[]string{v0, v1, v11}, nil},
	{"layers_pattern", `"target_modules": ["q_proj"], "layers_to_transform": [1], "layers_pattern": "layers"`,
		[]string{q1}, []string{q0, q2}},
	{"layers_pattern list", `"target_modules": ["q_proj"], "layers_to_transform": [1], "layers_pattern": ["h", "layers"]`,
		[]string{q1}, []string{q0}},
	{"layers_pattern that is absent", `"target_modules": ["q_proj"], "layers_to_transform": [0, 1], "layers_pattern": "blocks"`,
		nil, []string{q0, q1}},
	{"layers_pattern empty string is default", `"target_modules": ["q_proj"], "layers_to_transform": [2], "layers_pattern": ""`,
		[]string{q2}, []string{q1}},
	{"exact name skips layers_to_transform", `"target_modules": ["model.layers.1.self_attn.q_proj", "v_proj"], "layers_to_transform": [0]`,
		[]string{q1, v0}, []string{v1}},
	{"exclude list", `"target_modules": ["q_proj", "v_proj"], "exclude_modules": ["layers.1.self_attn.q_proj", "model.layers.0.self_attn.v_proj"]`,
		[]string{q0, v1, q2}, []string{q1, v0}},
	{"exclude regex", `"target_modules": "all-linear", "exclude_modules": ".*mlp.*"`,
		[]string{q0, o0}, []string{up0, down0}},
	{"layers_to_transform keeps embed out", `"target_modules": ["embed_tokens", "q_proj"], "layers_to_transform": [0]`,
		[]string{q0}, []string{embed, q1}},
}

func TestTargets(t *testing.T) {
	for _, tt := range targetTests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.config)
			for _, m := range tt.targets {
				if !c.Targets(m) {
					t.Errorf("Targets(%q) = false, want true", m)
				}
			}
			for _, m := range tt.skips {
				if c.Targets(m) {
					t.Errorf("Targets(%q) = true, want false", m)
				}
			}
		})
	}
}

var patternTests = []struct {
	name   string
	config string
	module string
	rank   int
	alpha  float64
	scale  float64
}{
	{"defaults", `"target_modules": ["q_proj"], "r": 8, "lora_alpha": 16`, q0, 8, 16, 2},
	{"PEFT defaults r=8 alpha=8", `"target_modules": ["q_proj"]`, q0, 8, 8, 1},
	{"rslora", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 8, "use_rslora": true`, q0, 16, 8, 2},
	{"rank_pattern suffix", `"target_modules": ["q_proj", "o_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"o_proj": 4}`, o0, 4, 32, 8},
	{"rank_pattern leaves others", `"target_modules": ["q_proj", "o_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"o_proj": 4}`, q0, 16, 32, 2},
	{"rank_pattern needs a dot boundary", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"_proj": 4}`, q0, 16, 32, 2},
	{"rank_pattern partial component", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"attn.q_proj": 4}`, q0, 16, 32, 2},
	{"rank_pattern regex", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {".*_proj": 4}`, q0, 4, 32, 8},
	{"rank_pattern whole name", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"model.layers.0.self_attn.q_proj": 2}`, q0, 2, 32, 16},
	{"rank_pattern anchored at end", `"target_modules": ["q_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"self_attn": 2}`, q0, 16, 32, 2},
	{"first key in file order wins", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"v_proj": 4, "layers.11.self_attn.v_proj": 8}`, v11, 4, 32, 8},
	{"first key in file order wins, reversed", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"layers.11.self_attn.v_proj": 8, "v_proj": 4}`, v11, 8, 32, 4},
	{"layer digits are whole", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"1.self_attn.v_proj": 8}`, v11, 16, 32, 2},
	{"layer digits, dotted", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "rank_pattern": {"1.self_attn.v_proj": 8}`, v1, 8, 32, 4},
	{"alpha_pattern", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "alpha_pattern": {"layers.1.self_attn.v_proj": 8}`, v1, 16, 8, 0.5},
	{"alpha_pattern other layer", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "alpha_pattern": {"layers.1.self_attn.v_proj": 8}`, v11, 16, 32, 2},
	{"both patterns with rslora", `"target_modules": ["v_proj"], "r": 16, "lora_alpha": 32, "use_rslora": true, "rank_pattern": {"v_proj": 4}, "alpha_pattern": {"v_proj": 6}`, v1, 4, 6, 3},
	{"float values", `"target_modules": ["q_proj"], "r": 8.0, "lora_alpha": 12.5`, q0, 8, 12.5, 1.5625},
}

func TestPatterns(t *testing.T) {
	for _, tt := range patternTests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.config)
			if got := c.Rank(tt.module); got != tt.rank {
				t.Errorf("Rank(%q) = %d, want %d", tt.module, got, tt.rank)
			}
			if got := c.Alpha(tt.module); got != tt.alpha {
				t.Errorf("Alpha(%q) = %v, want %v", tt.module, got, tt.alpha)
			}
			if got := c.Scaling(tt.module); got != tt.scale {
				t.Errorf("Scaling(%q) = %v, want %v", tt.module, got, tt.scale)
			}
		})
	}
}

// TestHandBuilt checks that a Config built without Parse answers the same.
func TestHandBuilt(t *testing.T) {
	c := &Config{
		PeftType: "LORA", R: 16, LoraAlpha: 32, TargetModules: []string{"q_proj", "v_proj"},
		RankPattern:       []Pattern{{"v_proj", 4}},
		LayersToTransform: []int{1},
	}
	if !c.Targets(q1) || c.Targets(q0) || c.Rank(v1) != 4 || c.Scaling(q1) != 2 {
		t.Errorf("hand-built config: Targets(q1)=%v Targets(q0)=%v Rank(v1)=%d Scaling(q1)=%v",
			c.Targets(q1), c.Targets(q0), c.Rank(v1), c.Scaling(q1))
	}
}
