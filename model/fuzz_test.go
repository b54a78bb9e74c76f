package model

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseHFConfig feeds arbitrary bytes to the config.json parser: it
// must return a config that passes Validate or an error, never panic.
func FuzzParseHFConfig(f *testing.F) {
	for _, c := range []string{"llama_tiny", "llama3_rope", "qwen2_tiny", "stories260K_hf"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "fixtures", c, "model", "config.json")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseHFConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseHFConfig accepted an invalid config: %v", err)
		}
		_ = c.InvFreq()
	})
}
