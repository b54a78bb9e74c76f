package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/lora"
)

// FuzzParseBatch feeds arbitrary bytes to the --batch JSONL parser: it
// must return requests with non-empty prompts and valid parameters, or an
// error naming the file and line, and never panic.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`{"prompt_ids": [1, 2, 3], "adapter": null, "max_tokens": 4}` + "\n"))
	f.Add([]byte(`{"prompt_ids": [1], "adapter": "a", "max_tokens": 2}` + "\n" + `{"prompt": "hi", "temperature": 0.5, "seed": 3}`))
	f.Add([]byte("\n\n{\"prompt_ids\": []}\n"))
	f.Add([]byte(`{"prompt_ids": [1], "max_tokens": -1, "extra": 1}`))
	noAdapter := errors.New("no adapters here")
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := parseBatch(bytes.NewReader(data), "fuzz.jsonl", engine.SamplingParams{MaxTokens: 8}, false,
			func(string) (*lora.Adapter, error) { return nil, noAdapter },
			func(s string) ([]int, error) { return []int{len(s)}, nil })
		if err != nil {
			if !bytes.Contains([]byte(err.Error()), []byte("fuzz.jsonl")) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for i, r := range reqs {
			if len(r.Prompt) == 0 {
				t.Fatalf("request %d has an empty prompt", i)
			}
			if err := r.Params.Validate(); err != nil {
				t.Fatalf("request %d has invalid params: %v", i, err)
			}
		}
	})
}
