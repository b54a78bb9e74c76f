package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// TestTrainCommand runs a short training on the stories260K model (GGUF,
// with its embedded tokenizer) and checks the summary and that the
// adapter it writes loads and generates.
func TestTrainCommand(t *testing.T) {
	modelPath := testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf")
	data := filepath.Join("..", "..", "examples", "data", "dragon_train.jsonl")
	eval := filepath.Join("..", "..", "examples", "data", "dragon_eval.jsonl")
	out := t.TempDir()
	ggufPath := filepath.Join(t.TempDir(), "dragon.gguf")
	stdout, err := cli(t, "train", "--model", modelPath, "--data", data, "--eval", eval, "--out", out, "--gguf", ggufPath,
		"--max-steps", "4", "--batch-size", "4", "--lr", "1e-2", "--target-modules", "all-linear", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trained 4 steps", "train loss", "eval loss", "adapter written to"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary %q lacks %q", stdout, want)
		}
	}
	m, err := model.Load(modelPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := lora.Load(out, &m.Config); err != nil {
		t.Fatal(err)
	}
	if _, err := lora.Load(ggufPath, &m.Config); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "generate", "--model", modelPath, "--adapter", out, "--prompt", "Once upon a time", "--max-tokens", "8"); err != nil {
		t.Fatal(err)
	}
}

// TestTrainCommandErrors checks that bad flags and bad data fail before
// any training, with the line numbers of bad examples.
func TestTrainCommandErrors(t *testing.T) {
	modelPath := testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf")
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\":\"a\"}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--data", bad}, []string{"--data and --out are required"}},
		{[]string{"--data", bad, "--out", t.TempDir(), "--lr", "-1", "--schedule", "step"}, []string{"learning rate", "schedule"}},
		{[]string{"--data", bad, "--out", t.TempDir(), "--model", modelPath}, []string{"bad.jsonl:2: missing \"completion\"", "bad.jsonl:3: bad JSON"}},
	} {
		_, err := cli(t, append([]string{"train"}, tc.args...)...)
		if err == nil {
			t.Fatalf("%v: no error", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.args, err, w)
			}
		}
	}
}
