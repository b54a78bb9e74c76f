package server

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/switchyard-ai/switchyard/engine"
)

// TestBadRequests checks that bad requests get the right status and an
// error in OpenAI's shape, and that the server keeps serving.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{maxBytes: 4096})
	const js = "application/json"
	big := `{"model":"stories","prompt":"` + strings.Repeat("a", 5000) + `"}`
	tests := []struct {
		name, path, body string
		status           int
		param, code      string
	}{
		{"unknown model", "/v1/completions", `{"model":"nope","prompt":"hi"}`, 404, "model", "model_not_found"},
		{"unknown adapter version", "/v1/completions", `{"model":"r8@9","prompt":"hi"}`, 404, "model", "model_not_found"},
		{"malformed JSON", "/v1/completions", `{"model":"stories","prompt":`, 400, "", ""},
		{"not an object", "/v1/completions", `[1,2]`, 400, "", ""},
		{"empty body", "/v1/completions", ``, 400, "", ""},
		{"wrong type", "/v1/completions", `{"model":"stories","prompt":"hi","max_tokens":"ten"}`, 400, "max_tokens", ""},
		{"wrong prompt type", "/v1/completions", `{"model":"stories","prompt":{"a":1}}`, 400, "prompt", ""},
		{"missing prompt", "/v1/completions", `{"model":"stories"}`, 400, "prompt", ""},
		{"missing model", "/v1/completions", `{"prompt":"hi"}`, 400, "model", ""},
		{"too many tokens", "/v1/completions", `{"model":"stories","prompt":"hi","max_tokens":100000}`, 400, "prompt", "context_length_exceeded"},
		{"token outside vocabulary", "/v1/completions", `{"model":"stories","prompt":[1,99999]}`, 400, "prompt", ""},
		{"bad temperature", "/v1/completions", `{"model":"stories","prompt":"hi","temperature":-1}`, 400, "temperature", ""},
		{"bad top_p", "/v1/completions", `{"model":"stories","prompt":"hi","top_p":1.5}`, 400, "top_p", ""},
		{"bad n", "/v1/completions", `{"model":"stories","prompt":"hi","n":0}`, 400, "n", ""},
		{"bad logprobs", "/v1/completions", `{"model":"stories","prompt":"hi","logprobs":99}`, 400, "logprobs", ""},
		{"unsafe URI", "/v1/completions", `{"model":"file:///etc","prompt":"hi"}`, 403, "model", "on_demand_disabled"},
		{"path traversal", "/v1/completions", `{"model":"../../etc/passwd","prompt":"hi"}`, 403, "model", "on_demand_disabled"},
		{"too large", "/v1/completions", big, 413, "", "request_too_large"},
		{"no messages", "/v1/chat/completions", `{"model":"stories","messages":[]}`, 400, "messages", ""},
		{"bad role", "/v1/chat/completions", `{"model":"stories","messages":[{"role":"wizard","content":"hi"}]}`, 400, "messages[0].role", ""},
		{"bad content", "/v1/chat/completions", `{"model":"stories","messages":[{"role":"user","content":5}]}`, 400, "messages[0].content", ""},
		{"top_logprobs without logprobs", "/v1/chat/completions", `{"model":"stories","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}`, 400, "top_logprobs", ""},
		{"unknown route", "/v1/nothing", `{}`, 404, "", "not_found"},
		{"unknown adapter", "/v1/adapters/nope/pin", ``, 404, "ref", "adapter_not_found"},
		{"bad chain", "/v1/chains", `{"steps":[{"model":"r8","prompt":"{{ input }}","depends_on":["later"]}]}`, 400, "steps[0].depends_on", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do("POST", tc.path, js, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			eo, ok := body["error"].(map[string]any)
			if !ok {
				t.Fatalf("no error object: %v", body)
			}
			if msg, _ := eo["message"].(string); msg == "" || eo["type"] == nil {
				t.Errorf("error without message or type: %v", eo)
			}
			if tc.param != "" && eo["param"] != tc.param {
				t.Errorf("param %v, want %s (%v)", eo["param"], tc.param, eo["message"])
			}
			if tc.code != "" && eo["code"] != tc.code {
				t.Errorf("code %v, want %s (%v)", eo["code"], tc.code, eo["message"])
			}
		})
	}

	// The OpenAI client sees the status and message.
	_, err := e.client.Completions.New(context.Background(), openai.CompletionNewParams{Model: "missing",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "does not exist") {
		t.Errorf("client error: %v", err)
	}

	// Still serving.
	if status, _, body := e.do("POST", "/v1/completions", js, `{"model":"stories","prompt":[1],"max_tokens":3}`); status != 200 {
		t.Errorf("after bad requests: %d %v", status, body)
	}
}

// TestRecover checks that a panicking handler answers 500 and the
// server goes on.
func TestRecover(t *testing.T) {
	e := newEnv(t, envOptions{})
	h := e.srv.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"internal_error"`) {
		t.Errorf("panic answered %d %s", rec.Code, rec.Body)
	}
}

// TestQueueFull checks that requests beyond the scheduler's queue get 429
// with Retry-After.
func TestQueueFull(t *testing.T) {
	e := newEnv(t, envOptions{sched: engine.SchedulerOptions{MaxSeqs: 1, MaxQueue: 1}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retry := ""
	for range 12 {
		wg.Go(func() {
			status, h, _ := e.do("POST", "/v1/completions", "application/json",
				`{"model":"stories","prompt":[1],"max_tokens":400,"ignore_eos":true,"temperature":0}`)
			mu.Lock()
			codes[status]++
			if status == 429 {
				retry = h.Get("Retry-After")
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[429] == 0 || codes[200] == 0 || codes[200]+codes[429] != 12 {
		t.Errorf("status counts %v: want some 200 and some 429", codes)
	}
	if codes[429] > 0 && retry == "" {
		t.Error("429 without Retry-After")
	}
}

// TestOnDemand checks that an adapter URI is loaded on demand when
// allowed.
func TestOnDemand(t *testing.T) {
	e := newEnv(t, envOptions{allowOnDemand: true})
	uri := "file://" + e.adapters["r8"]
	ref := e.generate("r8", e.fixture.Prompts[1], 10, true)
	for range 2 {
		resp, err := e.client.Completions.New(context.Background(), openai.CompletionNewParams{
			Model:     openai.CompletionNewParamsModel(uri),
			Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(e.fixture.Prompts[1])},
			MaxTokens: openai.Int(10), Temperature: openai.Float(0),
		}, option.WithJSONSet("ignore_eos", true))
		if err != nil {
			t.Fatal(err)
		}
		if got := tokenIDs(t, resp.Choices[0].JSON.ExtraFields); !equalInts(got, ref.Generated) {
			t.Errorf("on demand: %v, want %v", got, ref.Generated)
		}
	}
	if status, _, body := e.do("POST", "/v1/completions", "application/json", `{"model":"file:///no/such/dir","prompt":"hi"}`); status != 400 && status != 404 {
		t.Errorf("missing URI: %d %v", status, body)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestModelsAndAdapters checks /v1/models and the adapter administration
// endpoints.
func TestModelsAndAdapters(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	page, err := e.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "stories,r8" {
		t.Errorf("models %v", ids)
	}
	if res := page.Data[1].JSON.ExtraFields["residency"].Raw(); res != `"tier3"` && res != `"tier1"` {
		t.Errorf("r8 residency before use: %s", res)
	}

	const js = "application/json"
	if status, _, body := e.do("POST", "/v1/adapters", js, `{"name":"copy","uri":"`+e.adapters["r8"]+`"}`); status != 201 || body["version"] != 1.0 {
		t.Fatalf("register: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters", js, `{"name":"copy","uri":"`+e.adapters["r8"]+`"}`); status != 201 || body["version"] != 2.0 {
		t.Fatalf("register again: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters", js, `{"name":"bad/name","uri":"/tmp"}`); status != 400 {
		t.Errorf("bad name: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters/copy@1/pin", "", ""); status != 200 || body["residency"] != "tier0" || body["pinned"] != true {
		t.Errorf("pin: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters/copy@1/unpin", "", ""); status != 200 {
		t.Errorf("unpin: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters/copy@1/unpin", "", ""); status != 409 {
		t.Errorf("unpin twice: %d %v", status, body)
	}
	if status, _, body := e.do("POST", "/v1/adapters/r8/prefetch", "", ""); status != 200 || body["residency"] != "tier0" {
		t.Errorf("prefetch: %d %v", status, body)
	}
	if status, _, body := e.do("GET", "/v1/adapters/copy", "", ""); status != 200 || body["version"] != 2.0 {
		t.Errorf("get: %d %v", status, body)
	}
	if status, _, body := e.do("GET", "/v1/adapters", "", ""); status != 200 || len(body["data"].([]any)) != 3 {
		t.Errorf("list: %d %v", status, body)
	}
	if status, _, body := e.do("DELETE", "/v1/adapters/copy", "", ""); status != 200 {
		t.Errorf("delete: %d %v", status, body)
	}
	if status, _, _ := e.do("GET", "/v1/adapters/copy", "", ""); status != 404 {
		t.Errorf("get after delete: %d", status)
	}

	// Upload the files of an adapter.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("name", "uploaded")
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(e.adapters["r8"], f))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile("file", f)
		w.Write(data)
	}
	mw.Close()
	if status, _, body := e.do("POST", "/v1/adapters", mw.FormDataContentType(), buf.String()); status != 201 || body["name"] != "uploaded" {
		t.Fatalf("upload: %d %v", status, body)
	}
	ref := e.generate("r8", e.fixture.Prompts[1], 8, true)
	resp, err := e.client.Completions.New(ctx, openai.CompletionNewParams{Model: "uploaded@1",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(e.fixture.Prompts[1])},
		MaxTokens: openai.Int(8), Temperature: openai.Float(0)}, option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenIDs(t, resp.Choices[0].JSON.ExtraFields); !equalInts(got, ref.Generated) {
		t.Errorf("uploaded adapter: %v, want %v", got, ref.Generated)
	}

	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _, _ := e.do("GET", p, "", ""); status != 200 {
			t.Errorf("%s: %d", p, status)
		}
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/metrics", nil)
	mr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	mb.ReadFrom(mr.Body)
	mr.Body.Close()
	for _, m := range []string{"switchyard_http_requests_total", "switchyard_tokens_total", "switchyard_time_to_first_token_seconds",
		"switchyard_queue_depth", "switchyard_batch_size", `switchyard_adapter_requests_total{model="uploaded"}`} {
		if !strings.Contains(mb.String(), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	e.srv.Drain()
	if status, _, _ := e.do("GET", "/readyz", "", ""); status != 503 {
		t.Errorf("/readyz while draining: %d", status)
	}
	if status, h, _ := e.do("POST", "/v1/completions", js, `{"model":"stories","prompt":[1]}`); status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("completion while draining: %d", status)
	}
}
