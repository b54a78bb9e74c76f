package model

import (
	"math"
	"strings"
	"testing"
)

func TestParseHFConfig(t *testing.T) {
	v4 := `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":160,"num_hidden_layers":2,
		"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"vocab_size":256,"max_position_embeddings":256,
		"rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"factor":8.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
		"original_max_position_embeddings":64,"rope_type":"llama3"},"tie_word_embeddings":true,"torch_dtype":"bfloat16",
		"bos_token_id":1,"eos_token_id":[2,3]}`
	// transformers 5 moves rope_theta into rope_parameters and renames torch_dtype.
	v5 := `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":160,"num_hidden_layers":2,
		"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"vocab_size":256,"max_position_embeddings":256,
		"rms_norm_eps":1e-5,"rope_parameters":{"rope_theta":500000.0,"factor":8.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
		"original_max_position_embeddings":64,"rope_type":"llama3"},"tie_word_embeddings":true,"dtype":"bfloat16",
		"bos_token_id":1,"eos_token_id":[2,3]}`
	for name, js := range map[string]string{"transformers4": v4, "transformers5": v5} {
		c, err := ParseHFConfig([]byte(js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Arch != "llama" || c.Hidden != 64 || c.KVHeads != 2 || c.HeadDim != 16 || c.RopeTheta != 500000 ||
			c.RopeScaling == nil || c.RopeScaling.Factor != 8 || !c.TiedEmbed || c.BOS != 1 || len(c.EOS) != 2 {
			t.Errorf("%s: parsed %+v", name, c)
		}
	}
}

func TestParseHFConfigQwen2Defaults(t *testing.T) {
	c, err := ParseHFConfig([]byte(`{"architectures":["Qwen2ForCausalLM"],"hidden_size":96,"intermediate_size":224,
		"num_hidden_layers":3,"num_attention_heads":6,"num_key_value_heads":2,"vocab_size":300,"rms_norm_eps":1e-6,
		"rope_theta":1000000.0,"rope_scaling":null,"tie_word_embeddings":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 16 || !c.AttnBias || c.BOS != -1 {
		t.Errorf("qwen2 defaults: %+v", c)
	}
}

func TestParseHFConfigErrors(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":160,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256`
	for _, tc := range []struct{ json, want string }{
		{`{`, "bad JSON"},
		{`{"architectures":["GPT2LMHeadModel"],` + base + `}`, "unsupported architecture"},
		{`{"architectures":["LlamaForCausalLM"],"hidden_size":64}`, "positive"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"num_key_value_heads":3}`, "multiple"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"yarn","factor":4}}`, "unsupported rope"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"hidden_act":"gelu"}`, "hidden_act"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"eos_token_id":"x"}`, "eos_token_id"},
	} {
		_, err := ParseHFConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
}

// TestInvFreqLlama3 checks the three bands of llama3 scaling.
func TestInvFreqLlama3(t *testing.T) {
	c := Config{HeadDim: 16, RopeTheta: 10000, RopeScaling: &RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 64}}
	got := c.InvFreq()
	plain := (&Config{HeadDim: 16, RopeTheta: 10000}).InvFreq()
	for i, f := range plain {
		wavelen := 2 * math.Pi / f
		var want float64
		switch {
		case wavelen < 16:
			want = f
		case wavelen > 64:
			want = f / 8
		default:
			s := (64/wavelen - 1) / 3
			want = (1-s)*f/8 + s*f
		}
		if math.Abs(got[i]-want) > 1e-15 {
			t.Errorf("inv_freq[%d] = %g, want %g", i, got[i], want)
		}
	}
}

func TestUnpermuteRows(t *testing.T) {
	// 2 heads of dim 4, one byte per row: GGUF row h*4+2j+i holds HF row h*4+i*2+j.
	hf := []byte{0, 1, 2, 3, 4, 5, 6, 7}
	gguf := make([]byte, 8)
	for h := range 2 {
		for i := range 2 {
			for j := range 2 {
				gguf[h*4+2*j+i] = hf[h*4+i*2+j]
			}
		}
	}
	got := UnpermuteRows(gguf, 2, 4, 1)
	if string(got) != string(hf) {
		t.Errorf("UnpermuteRows = %v, want %v", got, hf)
	}
	if back := PermuteRows(hf, 2, 4, 1); string(back) != string(gguf) {
		t.Errorf("PermuteRows = %v, want %v", back, gguf)
	}
}
