package peft

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every method of a parsed
// Config is safe on any module name, and that Marshal round-trips.
func FuzzParse(f *testing.F) {
	matches, _ := filepath.Glob(filepath.Join(sharedDir(f), "fixtures", "*", "adapters", "*", ConfigFile))
	for _, m := range matches {
		if data, err := os.ReadFile(m); err == nil {
			f.Add(data, "model.layers.1.self_attn.v_proj")
		}
	}
	for _, tt := range targetTests {
		f.Add([]byte(configJSON(tt.config)), "model.layers.11.mlp.down_proj")
	}
	for _, tt := range patternTests {
		f.Add([]byte(configJSON(tt.config)), tt.module)
	}
	f.Fuzz(func(t *testing.T, data []byte, module string) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		c.Targets(module)
		c.Rank(module)
		c.Alpha(module)
		c.Scaling(module)
		if c.R <= 0 {
			t.Fatalf("parsed rank %d", c.R)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v\ninput %q", err, data)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal): %v\n%s", err, out)
		}
		if !sameConfig(c, c2) {
			t.Fatalf("round trip changed the config:\n in  %+v\n out %+v", c, c2)
		}
		for _, m := range []string{module, "model.layers.0.self_attn.q_proj"} {
			if c.Targets(m) != c2.Targets(m) || c.Scaling(m) != c2.Scaling(m) {
				t.Fatalf("round trip changed the semantics for %q", m)
			}
		}
	})
}
