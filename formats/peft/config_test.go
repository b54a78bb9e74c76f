package peft

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var parseErrorTests = []struct {
	name   string
	config string // members; peft_type LORA is added when absent
	err    error  // ErrInvalid or ErrUnsupported
	msg    string // substring of the message
}{
	{"not JSON", `"r": `, ErrInvalid, "bad JSON"},
	{"trailing data", `"target_modules": ["q_proj"]} {`, ErrInvalid, "bad JSON"},
	{"not LoRA", `"peft_type": "IA3", "target_modules": ["q_proj"]`, ErrUnsupported, `"IA3"`},
	{"no peft_type", `"peft_type": null, "target_modules": ["q_proj"]`, ErrInvalid, "peft_type"},
	{"DoRA", `"target_modules": ["q_proj"], "use_dora": true`, ErrUnsupported, "DoRA"},
	{"modules_to_save", `"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]`, ErrUnsupported, "modules_to_save"},
	{"bias all", `"target_modules": ["q_proj"], "bias": "all"`, ErrUnsupported, "bias"},
	{"bias lora_only", `"target_modules": ["q_proj"], "bias": "lora_only"`, ErrUnsupported, "bias"},
	{"lora_bias", `"target_modules": ["q_proj"], "lora_bias": true`, ErrUnsupported, "lora_bias"},
	{"embed_tokens", `"target_modules": ["q_proj", "embed_tokens"]`, ErrUnsupported, "model.embed_tokens"},
	{"lm_head", `"target_modules": ["q_proj", "lm_head"]`, ErrUnsupported, "lm_head"},
	{"embedding by regex", `"target_modules": ".*"`, ErrUnsupported, "model.embed_tokens"},
	{"target_parameters", `"target_modules": ["q_proj"], "target_parameters": ["experts.gate_up_proj"]`, ErrUnsupported, "target_parameters"},
	{"layer_replication", `"target_modules": ["q_proj"], "layer_replication": [[0, 2], [1, 2]]`, ErrUnsupported, "layer_replication"},
	{"trainable tokens", `"target_modules": ["q_proj"], "trainable_token_indices": [1, 2]`, ErrUnsupported, "trainable_token_indices"},
	{"aLoRA", `"target_modules": ["q_proj"], "alora_invocation_tokens": [5, 6]`, ErrUnsupported, "alora"},
	{"no targets", `"r": 8`, ErrInvalid, "target_modules"},
	{"null targets", `"target_modules": null`, ErrInvalid, "target_modules"},
	{"empty targets", `"target_modules": []`, ErrInvalid, "target_modules"},
	{"targets of wrong type", `"target_modules": 3`, ErrInvalid, "target_modules"},
	{"zero rank", `"target_modules": ["q_proj"], "r": 0`, ErrInvalid, "r: "},
	{"fractional rank", `"target_modules": ["q_proj"], "r": 7.5`, ErrInvalid, "integer"},
	{"rank as string", `"target_modules": ["q_proj"], "r": "8"`, ErrInvalid, "number"},
	{"bad rank_pattern value", `"target_modules": ["q_proj"], "rank_pattern": {"q_proj": 0}`, ErrInvalid, "rank_pattern"},
	{"rank_pattern not an object", `"target_modules": ["q_proj"], "rank_pattern": ["q_proj"]`, ErrInvalid, "rank_pattern"},
	{"lookahead", `"target_modules": ["q_proj"], "rank_pattern": {"(?!k)q_proj": 4}`, ErrInvalid, "RE2"},
	{"bad target regex", `"target_modules": "q_proj(["`, ErrInvalid, "RE2"},
	{"backreference in alpha_pattern", `"target_modules": ["q_proj"], "alpha_pattern": {"(a)\\1": 4}`, ErrInvalid, "alpha_pattern"},
	{"regex with layers_to_transform", `"target_modules": ".*q_proj", "layers_to_transform": [0]`, ErrInvalid, "layers_to_transform"},
	{"all-linear with layers_to_transform", `"target_modules": "all-linear", "layers_to_transform": [0]`, ErrInvalid, "layers_to_transform"},
	{"layers_pattern alone", `"target_modules": ["q_proj"], "layers_pattern": "layers"`, ErrInvalid, "layers_pattern"},
	{"bad layers_to_transform", `"target_modules": ["q_proj"], "layers_to_transform": ["0"]`, ErrInvalid, "layers_to_transform"},
	{"infinite alpha", `"target_modules": ["q_proj"], "lora_alpha": 1e999`, ErrInvalid, "lora_alpha"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(configJSON(tt.config)))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q does not wrap %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if tt.err == ErrUnsupported && !strings.HasSuffix(err.Error(), "not supported yet") {
				t.Errorf("error %q does not say it is not supported yet", err)
			}
		})
	}
}

// TestParseAccepts covers inputs that PEFT loads and Switchyard serves.
func TestParseAccepts(t *testing.T) {
	for _, members := range []string{
		`"target_modules": ["q_proj"], "use_dora": null, "modules_to_save": null, "lora_bias": false`,
		`"target_modules": ["q_proj"], "modules_to_save": [], "target_parameters": [], "layer_replication": null`,
		`"target_modules": ["q_proj"], "fan_in_fan_out": true, "init_lora_weights": "gaussian", "loftq_config": {}`,
		`"target_modules": ["q_proj"], "some_future_key": {"x": [1, 2]}`,
		`"target_modules": ["q_proj"], "r": 4, "r": 16`, // duplicate key: the last value wins
	} {
		if _, err := Parse([]byte(configJSON(members))); err != nil {
			t.Errorf("Parse(%s): %v", members, err)
		}
	}
	c := mustParse(t, `"target_modules": ["q_proj"], "r": 4, "r": 16`)
	if c.R != 16 {
		t.Errorf("duplicate r: got %d, want the last value 16", c.R)
	}
}

func TestReadFileNamesFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(configJSON(`"target_modules": ["q_proj"], "use_dora": true`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ConfigFile)) || !errors.Is(err, ErrUnsupported) {
		t.Errorf("ReadFile: error %v, want one naming the file and wrapping ErrUnsupported", err)
	}
	if _, err := ReadFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), ConfigFile) {
		t.Errorf("ReadFile of an empty dir: %v", err)
	}
}

// TestMarshalRoundTrip checks Parse(Marshal(c)) == c for the fixture
// configs and the table configs, and that pattern order survives.
// sameConfig compares the exported fields of two configs.
func sameConfig(a, b *Config) bool {
	x, y := *a, *b
	x.re, y.re = nil, nil
	return reflect.DeepEqual(x, y)
}

func TestMarshalRoundTrip(t *testing.T) {
	var inputs []string
	for _, tt := range targetTests {
		inputs = append(inputs, configJSON(tt.config))
	}
	for _, tt := range patternTests {
		inputs = append(inputs, configJSON(tt.config))
	}
	matches, _ := filepath.Glob(filepath.Join(sharedDir(t), "fixtures", "*", "adapters", "*", ConfigFile))
	if len(matches) == 0 {
		t.Fatal("no fixture adapter configs")
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data))
	}
	for _, in := range inputs {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of %s: %v", in, err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%s)) = %v\n%s", in, err, out)
		}
		if !sameConfig(c, c2) {
			t.Errorf("round trip changed the config:\n in  %+v\n out %+v\n%s", c, c2, out)
		}
	}

	// A hand-built config, as the trainer writes one.
	c := &Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: "llama_tiny/model",
		R: 8, LoraAlpha: 16, TargetModules: []string{"q_proj", "v_proj"},
		RankPattern: []Pattern{{"v_proj", 4}, {"layers.1.self_attn.v_proj", 2}},
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c2.RankPattern, c.RankPattern) || c2.Rank(v1) != 4 || c2.Bias != "none" {
		t.Errorf("hand-built round trip: %+v\n%s", c2, out)
	}
	if !strings.Contains(string(out), `"peft_type": "LORA"`) || !strings.Contains(string(out), `"bias": "none"`) {
		t.Errorf("Marshal output lacks PEFT keys:\n%s", out)
	}

	// Marshal refuses what Parse refuses.
	bad := *c
	bad.UseDora = true
	if _, err := bad.Marshal(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Marshal with use_dora: %v, want ErrUnsupported", err)
	}
}
