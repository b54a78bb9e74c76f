package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
)

// cli runs one command line in-process and returns its stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

func decodeOutputs(t *testing.T, s string) []generateOutput {
	t.Helper()
	var outs []generateOutput
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var o generateOutput
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("bad JSON output %q: %v", s, err)
		}
		outs = append(outs, o)
	}
	return outs
}

func idList(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// untilEOS cuts a greedy reference after its first end-of-sequence id: the
// command line stops there, as its contract says.
func untilEOS(ids []int, eos int) []int {
	if i := slices.Index(ids, eos); i >= 0 {
		return ids[:i+1]
	}
	return ids
}

func TestGoldenStory(t *testing.T) {
	data, err := os.ReadFile(testshared.Path(t, "models", "stories260K", "stories260K_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, "generate", "--model", testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"),
		"--prompt-ids", "1", "--max-tokens", "200", "--temperature", "0")
	if err != nil {
		t.Fatal(err)
	}
	if want := golden["<BOS only>"].Text + "\n"; out != want {
		t.Errorf("story:\n got %q\nwant %q", out, want)
	}
}

// TestFixturesThroughCLI checks every fixture case through the
// command-line contract: --format json --logits for the base model and
// each adapter, and the mixed batch through --batch.
func TestFixturesThroughCLI(t *testing.T) {
	for _, name := range testshared.FixtureCases {
		t.Run(name, func(t *testing.T) {
			fx := testshared.LoadFixture(t, name)
			dir := testshared.Path(t, "fixtures", name)
			var cfg struct {
				EOS int `json:"eos_token_id"`
			}
			data, _ := os.ReadFile(filepath.Join(dir, "model", "config.json"))
			json.Unmarshal(data, &cfg)
			check := func(label string, args []string, logits []float32, greedy []int) {
				// A float32 KV cache: the logits are compared with the
				// reference at 1e-4 (model's tests check f16 caches).
				out, err := cli(t, append([]string{"generate", "--model", filepath.Join(dir, "model"), "--temperature", "0",
					"--format", "json", "--logits", "--kv-cache-dtype", "f32"}, args...)...)
				if err != nil {
					t.Fatalf("%s: %v", label, err)
				}
				o := decodeOutputs(t, out)[0]
				if d := testshared.MaxAbsDiff(o.LastLogits, logits); d > 1e-4 {
					t.Errorf("%s: max |logit diff| %g", label, d)
				}
				if want := untilEOS(greedy, cfg.EOS); !slices.Equal(o.GeneratedIDs, want) {
					t.Errorf("%s: generated\n got %v\nwant %v", label, o.GeneratedIDs, want)
				}
			}
			for i, p := range fx.Prompts {
				steps := fmt.Sprint(len(fx.Base.Greedy[i]))
				check(fmt.Sprintf("base prompt %d", i), []string{"--prompt-ids", idList(p), "--max-tokens", steps},
					fx.Base.LastLogits[i], fx.Base.Greedy[i])
				for an, ae := range fx.Adapters {
					check(fmt.Sprintf("%s prompt %d", an, i), []string{"--prompt-ids", idList(p), "--max-tokens", steps,
						"--adapter", filepath.Join(dir, ae.Dir)}, ae.LastLogits[i], ae.Greedy[i])
					check(fmt.Sprintf("%s merged prompt %d", an, i), []string{"--prompt-ids", idList(p), "--max-tokens", steps,
						"--adapter", filepath.Join(dir, ae.Dir), "--merge"}, ae.LastLogits[i], ae.Greedy[i])
				}
			}

			var lines []string
			for _, b := range fx.Batch {
				line := map[string]any{"prompt_ids": b.Prompt, "adapter": nil, "max_tokens": len(b.Greedy)}
				if b.Adapter != nil {
					line["adapter"] = filepath.Join(dir, fx.Adapters[*b.Adapter].Dir)
				}
				js, _ := json.Marshal(line)
				lines = append(lines, string(js))
			}
			batch := filepath.Join(t.TempDir(), "batch.jsonl")
			os.WriteFile(batch, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
			out, err := cli(t, "generate", "--model", filepath.Join(dir, "model"), "--batch", batch, "--logits", "--ignore-eos", "--kv-cache-dtype", "f32")
			if err != nil {
				t.Fatal(err)
			}
			outs := decodeOutputs(t, out)
			if len(outs) != len(fx.Batch) {
				t.Fatalf("batch: %d output lines for %d inputs", len(outs), len(fx.Batch))
			}
			for i, b := range fx.Batch {
				if d := testshared.MaxAbsDiff(outs[i].LastLogits, b.LastLogits); d > 1e-4 {
					t.Errorf("batch %d: max |logit diff| %g", i, d)
				}
				if !slices.Equal(outs[i].GeneratedIDs, b.Greedy) {
					t.Errorf("batch %d: generated\n got %v\nwant %v", i, outs[i].GeneratedIDs, b.Greedy)
				}
			}
		})
	}
}

// TestBadInput checks that each kind of bad input gives a clear error.
func TestBadInput(t *testing.T) {
	tmp := t.TempDir()
	fx := testshared.Path(t, "fixtures")
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gguf, _ := os.ReadFile(testshared.Path(t, "models", "stories260K", "stories260K-f32.gguf"))
	st, _ := os.ReadFile(filepath.Join(fx, "llama_tiny", "model", "model.safetensors"))
	cfg, _ := os.ReadFile(filepath.Join(fx, "llama_tiny", "model", "config.json"))
	truncatedGGUF := write("trunc.gguf", gguf[:len(gguf)/2])
	corruptGGUF := write("corrupt.gguf", append([]byte("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), gguf[16:]...))
	write("truncst/config.json", cfg)
	write("truncst/model.safetensors", st[:len(st)-100])
	write("badjson/config.json", cfg[:len(cfg)/2])
	write("badjson/model.safetensors", st)
	write("arch/config.json", bytes.Replace(cfg, []byte("LlamaForCausalLM"), []byte("FalconForCausalLM"), 1))
	write("arch/model.safetensors", st)
	batch := write("bad.jsonl", []byte(`{"prompt_ids": [1, 2], "adapter": null, "max_tokens": 3}`+"\n"+`{"prompt_ids": "x"}`+"\n"))
	tiny := filepath.Join(fx, "llama_tiny", "model")
	long := strings.Repeat("1,", 300) + "1"

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing model", []string{"--model", filepath.Join(tmp, "nope")}, "no such file"},
		{"truncated gguf", []string{"--model", truncatedGGUF, "--prompt-ids", "1"}, "trunc.gguf"},
		{"corrupt gguf", []string{"--model", corruptGGUF, "--prompt-ids", "1"}, "corrupt.gguf"},
		{"truncated safetensors", []string{"--model", filepath.Join(tmp, "truncst"), "--prompt-ids", "1"}, "model.safetensors"},
		{"bad config json", []string{"--model", filepath.Join(tmp, "badjson"), "--prompt-ids", "1"}, "config.json"},
		{"unknown architecture", []string{"--model", filepath.Join(tmp, "arch"), "--prompt-ids", "1"}, "unsupported architecture"},
		{"adapter for another model", []string{"--model", filepath.Join(fx, "qwen2_tiny", "model"), "--prompt-ids", "1",
			"--adapter", filepath.Join(fx, "llama_tiny", "adapters", "r8_qv")}, "shape"},
		{"prompt longer than context", []string{"--model", tiny, "--prompt-ids", long}, "context"},
		{"id outside vocabulary", []string{"--model", tiny, "--prompt-ids", "1,256"}, "vocabulary"},
		{"negative id", []string{"--model", tiny, "--prompt-ids", "-3"}, "vocabulary"},
		{"not an id", []string{"--model", tiny, "--prompt-ids", "1,x"}, "not a token id"},
		{"bad batch line", []string{"--model", tiny, "--batch", batch}, "bad.jsonl:2"},
		{"bad format", []string{"--model", tiny, "--prompt-ids", "1", "--format", "xml"}, "--format"},
		{"negative temperature", []string{"--model", tiny, "--prompt-ids", "1", "--temperature", "-1"}, "temperature"},
		{"bad kv cache dtype", []string{"--model", tiny, "--prompt-ids", "1", "--kv-cache-dtype", "q8"}, "kv-cache-dtype"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, append([]string{"generate"}, tc.args...)...)
			if err == nil {
				t.Fatalf("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
}

// TestExitStatus runs the real binary on bad input: a non-zero exit and
// one line on stderr, no panic trace.
func TestExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "switchyard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "generate", "--model", testshared.Path(t, "fixtures", "llama_tiny", "model"), "--prompt-ids", "1,999")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	if s := strings.TrimSpace(stderr.String()); strings.Count(s, "\n") != 0 || !strings.HasPrefix(s, "switchyard: ") {
		t.Errorf("stderr %q: want one line starting with \"switchyard: \"", s)
	}
}
