package lora

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// TestLoadFixtures loads every fixture adapter against its base model and
// checks which projections it holds, their scales against expected.json's
// scaling_per_module, the stored dtype, and that A and BT are exactly the
// file's lora_A and transposed lora_B.
func TestLoadFixtures(t *testing.T) {
	dtypes := map[string]bool{}
	for _, fixture := range fixtureCases {
		cfg := readConfig(t, fixture)
		for name, exp := range readExpected(t, fixture) {
			t.Run(fixture+"/"+name, func(t *testing.T) {
				dir := filepath.Join(fixturesDir(t), fixture, exp.Dir)
				a, err := Load(dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if a.Name != name || a.Config == nil || len(a.Layers) != cfg.Layers {
					t.Errorf("Name %q Config %v layers %d", a.Name, a.Config != nil, len(a.Layers))
				}
				refs := readRefPairs(t, dir, cfg, exp.Scaling)
				var bytes int64
				maxRank := 0
				targets := map[model.Module]bool{}
				for i := range cfg.Layers {
					for m := range model.NumModules {
						p := a.Pair(i, m)
						ref := refs[[2]int{i, int(m)}]
						mod := moduleName(i, m)
						if (p != nil) != (ref != nil) {
							t.Fatalf("%s: pair present %v, expected.json lists it %v", mod, p != nil, ref != nil)
						}
						if p == nil {
							continue
						}
						targets[m] = true
						if p.Scale != float32(ref.scale) {
							t.Errorf("%s: scale %v, want %v", mod, p.Scale, ref.scale)
						}
						if p.A.DType.String() != exp.DType || p.BT.DType.String() != exp.DType {
							t.Errorf("%s: dtypes %v/%v, want %s (stored, not widened)", mod, p.A.DType, p.BT.DType, exp.DType)
						}
						if p.Rank != len(ref.a) || p.A.Rows != p.Rank || p.BT.Rows != p.Rank ||
							p.A.Cols != cfg.InDim(m) || p.BT.Cols != cfg.OutDim(m) {
							t.Fatalf("%s: rank %d, A %dx%d, BT %dx%d", mod, p.Rank, p.A.Rows, p.A.Cols, p.BT.Rows, p.BT.Cols)
						}
						if !slices.EqualFunc(matrix64(p.A), ref.a, slices.Equal) {
							t.Errorf("%s: A differs from lora_A", mod)
						}
						if !slices.EqualFunc(matrix64(p.BT), transpose64(ref.b), slices.Equal) {
							t.Errorf("%s: BT differs from lora_B transposed", mod)
						}
						bytes += int64(len(p.A.Data) + len(p.BT.Data))
						maxRank = max(maxRank, p.Rank)
					}
				}
				if a.Bytes < bytes || a.MaxRank != maxRank {
					t.Errorf("Bytes %d (payload %d), MaxRank %d (want %d)", a.Bytes, bytes, a.MaxRank, maxRank)
				}
				var want []model.Module
				for m := range model.NumModules {
					if targets[m] {
						want = append(want, m)
					}
				}
				if got := a.Targets(); !slices.Equal(got, want) {
					t.Errorf("Targets() = %v, want %v", got, want)
				}
				if err := a.Validate(cfg); err != nil {
					t.Errorf("Validate: %v", err)
				}
				dtypes[exp.DType] = true
			})
		}
	}
	for _, dt := range []string{"F32", "F16", "BF16"} {
		if !dtypes[dt] {
			t.Errorf("no fixture adapter in %s was loaded", dt)
		}
	}
}

// TestLoadMismatchedBase loads adapters against the wrong base model.
func TestLoadMismatchedBase(t *testing.T) {
	fx := fixturesDir(t)
	tests := []struct {
		adapter, base string
		tensor        string   // named in the message
		shapes        []string // nil: not a shape error
	}{
		{"llama_tiny/adapters/r8_qv", "qwen2_tiny",
			"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", []string{"[8, 64]", "[8, 96]"}},
		{"qwen2_tiny/adapters/r8_all", "llama_tiny",
			"base_model.model.model.layers.2.mlp.down_proj.lora_A.weight", nil},
		{"llama_tiny/adapters/r4_all_rslora", "stories260K_hf",
			"base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight", []string{"[160, 4]", "[172, 4]"}},
	}
	for _, tt := range tests {
		_, err := Load(filepath.Join(fx, tt.adapter), readConfig(t, tt.base))
		if err == nil {
			t.Fatalf("%s on %s: loaded", tt.adapter, tt.base)
		}
		var se *ShapeError
		if !errors.Is(err, ErrMismatch) || (tt.shapes != nil) != errors.As(err, &se) {
			t.Errorf("%s on %s: %v is not a ShapeError wrapping ErrMismatch", tt.adapter, tt.base, err)
		}
		msg := err.Error()
		for _, s := range append([]string{tt.tensor, "adapter_model.safetensors"}, tt.shapes...) {
			if !strings.Contains(msg, s) {
				t.Errorf("%s on %s: %q does not mention %q", tt.adapter, tt.base, msg, s)
			}
		}
	}
	// Two layers of adapter, five of base: the config targets layers the
	// file lacks.
	_, err := Load(filepath.Join(fx, "llama_tiny/adapters/r8_qv"), func() *model.Config {
		c := *readConfig(t, "llama_tiny")
		c.Layers = 5
		return &c
	}())
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "model.layers.2.self_attn.q_proj") {
		t.Errorf("2-layer adapter on a 5-layer base: %v", err)
	}
}

// testAdapter describes a synthetic PEFT adapter for the error tests,
// built for llama_tiny (hidden 64, q 64, k/v 32, ffn 160, 2 layers).
type testAdapter struct {
	config  string               // adapter_config.json
	tensors []safetensors.Tensor // adapter_model.safetensors
}

const qvConfig = `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}`

func peftTensor(name string, rows, cols int) safetensors.Tensor {
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(i%7) * 0.01
	}
	return safetensors.Tensor{Name: name, DType: kernels.F32, Shape: []int{rows, cols}, Data: kernels.EncodeRow(nil, kernels.F32, v)}
}

// qvTensors returns a valid r4 q/v adapter's tensors for llama_tiny.
func qvTensors() []safetensors.Tensor {
	var ts []safetensors.Tensor
	for i := range 2 {
		for _, m := range []string{"q_proj", "v_proj"} {
			out := 64
			if m == "v_proj" {
				out = 32
			}
			p := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.%s.", i, m)
			ts = append(ts, peftTensor(p+"lora_A.weight", 4, 64), peftTensor(p+"lora_B.weight", out, 4))
		}
	}
	return ts
}

func writeAdapter(t *testing.T, ta testAdapter) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(ta.config), 0o644); err != nil {
		t.Fatal(err)
	}
	if ta.tensors != nil {
		if err := safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), ta.tensors, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func replaceTensor(ts []safetensors.Tensor, name string, with *safetensors.Tensor) []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, t := range ts {
		if t.Name != name {
			out = append(out, t)
		} else if with != nil {
			out = append(out, *with)
		}
	}
	return out
}

func TestLoadPEFTErrors(t *testing.T) {
	cfg := readConfig(t, "llama_tiny")
	const q0 = "base_model.model.model.layers.0.self_attn.q_proj."
	extra := func(ts ...safetensors.Tensor) []safetensors.Tensor { return append(qvTensors(), ts...) }
	tensor := func(tt safetensors.Tensor) *safetensors.Tensor { return &tt }
	tests := []struct {
		name string
		ta   testAdapter
		err  error
		msg  []string
	}{
		{"valid", testAdapter{qvConfig, qvTensors()}, nil, nil},
		{"fan_in_fan_out changes nothing", testAdapter{strings.Replace(qvConfig, `"r": 4`, `"r": 4, "fan_in_fan_out": true`, 1), qvTensors()}, nil, nil},
		{"old .default keys", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_A.weight", tensor(peftTensor(q0+"lora_A.default.weight", 4, 64)))}, nil, nil},
		{"duplicate with .default", testAdapter{qvConfig, extra(peftTensor(q0+"lora_A.default.weight", 4, 64))}, ErrFormat, []string{"duplicates"}},
		{"missing lora_B", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_B.weight", nil)}, ErrFormat, []string{q0 + "lora_A.weight", "without its lora_B"}},
		{"missing lora_A", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_A.weight", nil)}, ErrFormat, []string{q0 + "lora_B.weight", "without its lora_A"}},
		{"lm_head", testAdapter{qvConfig, extra(peftTensor("base_model.model.lm_head.lora_A.weight", 4, 64), peftTensor("base_model.model.lm_head.lora_B.weight", 256, 4))},
			ErrUnsupported, []string{"base_model.model.lm_head.lora_A.weight", "not supported yet"}},
		{"embed_tokens", testAdapter{qvConfig, extra(peftTensor("base_model.model.model.embed_tokens.lora_embedding_A", 4, 256))},
			ErrUnsupported, []string{"embed_tokens", "embedding"}},
		{"DoRA magnitude", testAdapter{qvConfig, extra(peftTensor(q0+"lora_magnitude_vector", 1, 64))}, ErrUnsupported, []string{"DoRA"}},
		{"unknown module", testAdapter{qvConfig, extra(peftTensor("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", 4, 64))},
			ErrMismatch, []string{"qkv_proj", "has no module"}},
		{"module under the wrong block", testAdapter{qvConfig, extra(peftTensor("base_model.model.model.layers.0.mlp.q_proj.lora_A.weight", 4, 64))},
			ErrMismatch, []string{"mlp.q_proj"}},
		{"layer beyond the model", testAdapter{qvConfig, extra(peftTensor("base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight", 4, 64))},
			ErrMismatch, []string{"layers.2", "2 layers"}},
		{"not a PEFT key", testAdapter{qvConfig, extra(peftTensor("model.layers.0.self_attn.q_proj.lora_A.weight", 4, 64))}, ErrFormat, []string{"not a PEFT LoRA key"}},
		{"not a LoRA weight", testAdapter{qvConfig, extra(peftTensor("base_model.model.model.layers.0.self_attn.q_proj.weight", 64, 64))}, ErrFormat, []string{"not a LoRA weight"}},
		{"rank differs from config", testAdapter{strings.Replace(qvConfig, `"r": 4`, `"r": 8`, 1), qvTensors()},
			ErrMismatch, []string{"lora_A.weight", "[4, 64]", "[8, 64]"}},
		{"rank_pattern differs", testAdapter{strings.Replace(qvConfig, `"r": 4`, `"r": 4, "rank_pattern": {"v_proj": 2}`, 1), qvTensors()},
			ErrMismatch, []string{"v_proj.lora_A.weight", "[4, 64]", "[2, 64]"}},
		{"lora_B of the wrong width", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_B.weight", tensor(peftTensor(q0+"lora_B.weight", 32, 4)))},
			ErrMismatch, []string{q0 + "lora_B.weight", "[32, 4]", "[64, 4]"}},
		{"lora_B with the wrong rank", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_B.weight", tensor(peftTensor(q0+"lora_B.weight", 64, 2)))},
			ErrMismatch, []string{q0 + "lora_B.weight", "[64, 2]", "[64, 4]"}},
		{"transposed lora_A", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_A.weight", tensor(peftTensor(q0+"lora_A.weight", 64, 4)))},
			ErrMismatch, []string{q0 + "lora_A.weight", "[64, 4]", "[4, 64]"}},
		{"3-D tensor", testAdapter{qvConfig, replaceTensor(qvTensors(), q0+"lora_A.weight", &safetensors.Tensor{Name: q0 + "lora_A.weight", DType: kernels.F32, Shape: []int{4, 8, 8}, Data: make([]byte, 4*4*64)})},
			ErrMismatch, []string{"3 dimensions"}},
		{"config targets more", testAdapter{strings.Replace(qvConfig, `"v_proj"]`, `"v_proj", "k_proj"]`, 1), qvTensors()},
			ErrMismatch, []string{"targets model.layers.0.self_attn.k_proj"}},
		{"config targets less", testAdapter{strings.Replace(qvConfig, `"q_proj", `, ``, 1), qvTensors()},
			ErrMismatch, []string{q0 + "lora_A.weight", "does not target"}},
		{"layers_to_transform", testAdapter{strings.Replace(qvConfig, `"r": 4`, `"r": 4, "layers_to_transform": [1]`, 1), qvTensors()},
			ErrMismatch, []string{"layers.0.self_attn.q_proj", "does not target"}},
		{"no tensors", testAdapter{qvConfig, []safetensors.Tensor{}}, ErrMismatch, []string{"targets"}},
		{"DoRA config", testAdapter{strings.Replace(qvConfig, `"r": 4`, `"r": 4, "use_dora": true`, 1), qvTensors()}, ErrUnsupported, []string{"DoRA", "adapter_config.json"}},
		{"bad config", testAdapter{`{"peft_type": "LORA", "r": `, qvTensors()}, ErrFormat, []string{"adapter_config.json", "bad JSON"}},
		{"no weights", testAdapter{qvConfig, nil}, os.ErrNotExist, []string{"adapter_model.safetensors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeAdapter(t, tt.ta)
			a, err := LoadPEFT(dir, cfg)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if a.Pair(0, model.ModQ) == nil || a.Pair(1, model.ModV) == nil || a.Pair(0, model.ModK) != nil || a.Pair(0, model.ModQ).Scale != 2 {
					t.Errorf("loaded adapter has the wrong pairs")
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
			for _, s := range tt.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not mention %q", err, s)
				}
			}
		})
	}

	// A pickle-only adapter gets a clear answer.
	dir := writeAdapter(t, testAdapter{qvConfig, nil})
	os.WriteFile(filepath.Join(dir, "adapter_model.bin"), []byte("PK"), 0o644)
	if _, err := LoadPEFT(dir, cfg); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "adapter_model.bin") {
		t.Errorf("pickle adapter: %v", err)
	}
}

// TestLoadCorrupt truncates and scribbles over a fixture adapter's
// safetensors file: every load must fail cleanly or succeed, never panic.
func TestLoadCorrupt(t *testing.T) {
	cfg := readConfig(t, "llama_tiny")
	src := filepath.Join(fixturesDir(t), "llama_tiny", "adapters", "r16_qkvo_patterns")
	config, err := os.ReadFile(filepath.Join(src, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(src, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "adapter_config.json"), config, 0o644)
	try := func(b []byte) error {
		if err := os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, cfg)
		return err
	}
	for _, n := range []int{0, 4, 8, 9, 100, len(data) / 2, len(data) - 1} {
		if err := try(data[:n]); err == nil {
			t.Errorf("truncated to %d bytes: loaded", n)
		}
	}
	hdr := 8 + int(binary.LittleEndian.Uint64(data))
	for i := 0; i < hdr; i += 7 {
		b := bytes.Clone(data)
		b[i] ^= 0x5a
		try(b) // must not panic; some flips (inside a float) still load
	}
	if err := try(data); err != nil {
		t.Errorf("restored file: %v", err)
	}
}
