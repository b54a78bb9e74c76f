package main

import (
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
)

// TestDemo runs the README's main job with fewer training steps: three
// adapters trained, served beside the base model, and each one's stories
// changed as its dataset teaches (runDemo fails otherwise).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three adapters")
	}
	out, err := cli(t, "demo", "--model", testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"), "--steps", "40")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"1. Finetune", "2. Serve", "3. The same prompts", "dragon", "moral", "moon", "µs"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
