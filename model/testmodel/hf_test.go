package testmodel

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// shapes are the architectures every format test covers.
var shapes = []struct {
	name  string
	shape Shape
}{
	{"llama", Tiny},
	{"qwen2", TinyQwen2},
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Shape)
		ok   bool
	}{
		{"tiny", func(*Shape) {}, true},
		{"qwen2", func(s *Shape) { s.Arch = "qwen2" }, true},
		{"unknown arch", func(s *Shape) { s.Arch = "gpt2" }, false},
		{"zero layers", func(s *Shape) { s.Layers = 0 }, false},
		{"heads not a multiple of kv heads", func(s *Shape) { s.KVHeads = 3 }, false},
		{"odd head dim", func(s *Shape) { s.HeadDim = 15 }, false},
		{"vocab without eos", func(s *Shape) { s.Vocab = 2 }, false},
		{"zero rope theta", func(s *Shape) { s.RopeTheta = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Tiny
			tt.edit(&s)
			if err := s.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	for _, s := range []Shape{SmolLM2_135M, Tiny, TinyQwen2} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

func TestParams(t *testing.T) {
	// SmolLM2-135M: 134,515,008 parameters (tied embeddings).
	if got, want := SmolLM2_135M.Params(), 134515008; got != want {
		t.Errorf("SmolLM2_135M.Params() = %d, want %d", got, want)
	}
}

func TestValuesDeterministic(t *testing.T) {
	name := "model.layers.1.self_attn.q_proj.weight"
	a, ok := Tiny.Values(name, 1)
	if !ok {
		t.Fatalf("Values(%q) not found", name)
	}
	b, _ := Tiny.Values(name, 1)
	c, _ := Tiny.Values(name, 2)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different values")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 1 and 2 gave the same values")
	}
	k, _ := Tiny.Values("model.layers.1.self_attn.k_proj.weight", 1)
	if slices.Equal(a[:len(k)], k) {
		t.Error("q and k projections hold the same values")
	}
	// A tensor's values do not depend on the shape of the others.
	big := Tiny
	big.Layers = 5
	if d, _ := big.Values(name, 1); !slices.Equal(a, d) {
		t.Error("values depend on the number of layers")
	}
	if _, ok := Tiny.Values("lm_head.weight", 1); !ok {
		t.Error("untied Tiny has no lm_head.weight")
	}
	if _, ok := TinyQwen2.Values("lm_head.weight", 1); ok {
		t.Error("tied TinyQwen2 has an lm_head.weight")
	}

	norm, _ := Tiny.Values("model.norm.weight", 1)
	var mean float64
	for _, v := range norm {
		mean += float64(v) / float64(len(norm))
	}
	if mean < 0.9 || mean > 1.1 {
		t.Errorf("norm weights average %v, want about 1", mean)
	}
}

// wantConfig is the model.Config that config.json of s should parse to.
func wantConfig(s Shape) *model.Config {
	return &model.Config{
		Arch: s.Arch, Hidden: s.Hidden, Intermediate: s.Intermediate, Layers: s.Layers,
		Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Vocab: s.Vocab,
		MaxPositions: s.MaxPositions, RMSNormEps: float32(s.RMSNormEps), RopeTheta: s.RopeTheta,
		TiedEmbed: s.Tied, AttnBias: s.Arch == "qwen2", BOS: BOSID, EOS: []int{EOSID},
	}
}

func TestConfigJSON(t *testing.T) {
	for _, sh := range append(shapes, struct {
		name  string
		shape Shape
	}{"smollm2", SmolLM2_135M}) {
		t.Run(sh.name, func(t *testing.T) {
			data, err := sh.shape.ConfigJSON(kernels.BF16)
			if err != nil {
				t.Fatal(err)
			}
			got, err := model.ParseHFConfig(data)
			if err != nil {
				t.Fatalf("ParseHFConfig: %v\n%s", err, data)
			}
			if want := wantConfig(sh.shape); !reflect.DeepEqual(got, want) {
				t.Errorf("ParseHFConfig =\n%+v\nwant\n%+v", got, want)
			}
			var fields map[string]any
			if err := json.Unmarshal(data, &fields); err != nil {
				t.Fatal(err)
			}
			if fields["torch_dtype"] != "bfloat16" {
				t.Errorf("torch_dtype = %v, want bfloat16", fields["torch_dtype"])
			}
			if fields["model_type"] != sh.shape.Arch {
				t.Errorf("model_type = %v, want %s", fields["model_type"], sh.shape.Arch)
			}
		})
	}
	if _, err := Tiny.ConfigJSON(kernels.Q8_0); err == nil {
		t.Error("ConfigJSON(Q8_0) succeeded, want an error")
	}
}

func TestWriteHF(t *testing.T) {
	const seed = 7
	for _, sh := range shapes {
		for _, dt := range []kernels.DType{kernels.F32, kernels.BF16, kernels.F16} {
			t.Run(sh.name+"/"+dt.String(), func(t *testing.T) {
				s := sh.shape
				dir := t.TempDir()
				if err := WriteHF(dir, s, dt, seed); err != nil {
					t.Fatal(err)
				}
				cfg, err := model.ReadHFConfig(dir)
				if err != nil {
					t.Fatal(err)
				}
				if want := wantConfig(s); !reflect.DeepEqual(cfg, want) {
					t.Errorf("ReadHFConfig =\n%+v\nwant\n%+v", cfg, want)
				}

				f, err := safetensors.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				want := wantHFNames(s)
				if got := f.Names(); !slices.Equal(got, want) {
					t.Fatalf("tensors\n%v\nwant\n%v", got, want)
				}
				if md := f.Metadata(); md["format"] != "pt" {
					t.Errorf("metadata %v, want format pt", md)
				}
				for _, spec := range s.tensors() {
					ten, err := f.Tensor(spec.hf)
					if err != nil {
						t.Fatal(err)
					}
					if ten.DType != dt || !slices.Equal(ten.Shape, spec.shape) {
						t.Errorf("%s: %v %v, want %v %v", spec.hf, ten.DType, ten.Shape, dt, spec.shape)
						continue
					}
					v, _ := s.Values(spec.hf, seed)
					if !bytes.Equal(ten.Data, encode(v, dt)) {
						t.Errorf("%s: data differs from Values rounded to %v", spec.hf, dt)
					}
				}
			})
		}
	}
	if err := WriteHF(t.TempDir(), Tiny, kernels.Q8_0, 1); err == nil {
		t.Error("WriteHF with Q8_0 succeeded, want an error")
	}
}

// wantHFNames lists the Hugging Face tensor names of s, sorted, spelled
// out independently of tensors().
func wantHFNames(s Shape) []string {
	names := []string{"model.embed_tokens.weight", "model.norm.weight"}
	if !s.Tied {
		names = append(names, "lm_head.weight")
	}
	for i := range s.Layers {
		p := "model.layers." + strconv.Itoa(i) + "."
		for _, n := range []string{"input_layernorm.weight", "post_attention_layernorm.weight",
			"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
			"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"} {
			names = append(names, p+n)
		}
		if s.Arch == "qwen2" {
			for _, n := range []string{"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"} {
				names = append(names, p+n)
			}
		}
	}
	slices.Sort(names)
	return names
}

func TestWriteHFGenerationConfig(t *testing.T) {
	dir := t.TempDir()
	if err := WriteHF(dir, Tiny, kernels.BF16, 1); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		BOS int `json:"bos_token_id"`
		EOS int `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &g); err != nil || g.BOS != BOSID || g.EOS != EOSID {
		t.Errorf("generation_config.json %s: bos %d eos %d (%v), want 1 and 2", data, g.BOS, g.EOS, err)
	}
	if !strings.HasSuffix(string(data), "}\n") {
		t.Error("generation_config.json does not end in a newline")
	}
}
