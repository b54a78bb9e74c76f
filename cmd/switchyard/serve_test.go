package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/internal/testshared"
)

// TestServeGracefulShutdown starts the server as serve does, checks that
// it is ready and serves an adapter, and that shutting down lets a
// running stream finish.
func TestServeGracefulShutdown(t *testing.T) {
	dir := testshared.Path(t, "fixtures", "stories260K_hf")
	rs, err := startServer(context.Background(), serveOptions{
		modelPath: dir + "/model", addr: "127.0.0.1:0", adapters: []string{"r8=" + dir + "/adapters/r8_qv"},
		tier0: 1 << 30, log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Name != "stories260K_hf" {
		t.Errorf("derived name %q", rs.Name)
	}
	resp, err := http.Get(rs.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	body := `{"model":"r8","prompt":[1,403,407],"max_tokens":200,"ignore_eos":true,"temperature":0,"stream":true}`
	resp, err = http.Post(rs.URL+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // the stream has started
	done := make(chan error, 1)
	go func() { done <- rs.shutdown(30 * time.Second) }()
	tokens, sawDone := 0, false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			sawDone = true
			break
		}
		var chunk struct {
			Choices []struct {
				TokenIDs []int `json:"token_ids"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatal(err)
		}
		for _, c := range chunk.Choices {
			tokens += len(c.TokenIDs)
		}
	}
	if !sawDone || tokens < 190 {
		t.Errorf("the stream was cut by the shutdown: %d tokens, [DONE] %v", tokens, sawDone)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := http.Get(rs.URL + "/readyz"); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}
