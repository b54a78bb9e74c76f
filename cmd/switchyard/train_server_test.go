package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/internal/testshared"
)

// TestTrainCommandServer sends a job to a running server with --server,
// and checks that the fine-tuned model it prints is served at once.
func TestTrainCommandServer(t *testing.T) {
	dir := testshared.Path(t, "fixtures", "stories260K_hf")
	rs, err := startServer(context.Background(), serveOptions{modelPath: dir + "/model", addr: "127.0.0.1:0",
		tier0: 1 << 30, jobsDir: t.TempDir(), log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.shutdown(time.Second)
	data := filepath.Join("..", "..", "examples", "data", "dragon_train.jsonl")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"train", "--server", rs.URL, "--data", data, "--suffix", "dragon",
		"--max-steps", "4", "--batch-size", "4", "--lr", "1e-2", "--r", "4"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	name := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(name, "ft-stories260K_hf-dragon-ftjob-") {
		t.Fatalf("printed %q", name)
	}
	if !strings.Contains(stderr.String(), "step 4/4") {
		t.Errorf("no progress lines in %q", stderr.String())
	}
	body := `{"model": "` + name + `", "prompt": "Once upon a time", "max_tokens": 4}`
	resp, err := http.Post(rs.URL+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("completion on %s: %v %v", name, resp, err)
	}
	resp.Body.Close()

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"prompt\":\"a\"}\n"), 0o644)
	if _, err := cli(t, "train", "--server", rs.URL, "--data", bad); err == nil || !strings.Contains(err.Error(), "bad.jsonl:1:") {
		t.Errorf("bad data: %v", err)
	}
	if _, err := cli(t, "train", "--server", rs.URL, "--data", data, "--warmup", "3"); err == nil || !strings.Contains(err.Error(), "--warmup") {
		t.Errorf("--warmup with --server: %v", err)
	}
}
