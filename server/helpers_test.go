package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/respjson"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// baseName is the base model's name in the tests.
const baseName = "stories"

// env is a running test server over the stories260K_hf fixture.
type env struct {
	t        testing.TB
	m        *model.Model
	tok      *tokenizer.Tokenizer
	srv      *Server
	ts       *httptest.Server
	client   openai.Client
	adapters map[string]string // registered name -> source directory
	fixture  *testshared.Fixture
}

// envOptions adjust newEnv.
type envOptions struct {
	sched         engine.SchedulerOptions
	allowOnDemand bool
	maxBytes      int64
	randomAdapter int    // random adapters to register as rand1, rand2, ...
	chatTemplate  string // replaces the tokenizer's (absent) chat template
}

// newEnv starts a server on the stories260K_hf model with its r8_qv
// adapter registered as "r8" and opts.randomAdapter random ones.
func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	dir := testshared.Path(t, "fixtures", "stories260K_hf", "model")
	m, err := model.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := engine.LoadTokenizer(m, dir)
	if err != nil || tok == nil {
		t.Fatalf("tokenizer: %v", err)
	}
	if opts.chatTemplate != "" {
		tok.SetChatTemplate(opts.chatTemplate)
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	reg, err := adapters.Open(ctx, t.TempDir(), &m.Config, baseName, &adapters.RegistryOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	cache, err := adapters.NewCache(reg, adapters.Budgets{Tier0: 1 << 30, Tier1: 1 << 28}, &adapters.CacheOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	e := &env{t: t, m: m, tok: tok, adapters: map[string]string{}, fixture: testshared.LoadFixture(t, "stories260K_hf")}
	e.register(reg, "r8", testshared.Path(t, "fixtures", "stories260K_hf", "adapters", "r8_qv"))
	for i := range opts.randomAdapter {
		name := fmt.Sprintf("rand%d", i+1)
		e.register(reg, name, writeRandomAdapter(t, &m.Config, uint64(i+1)))
	}
	opts.sched.Logger = quiet
	sched := engine.NewScheduler(m, tok, opts.sched)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sched.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.srv, err = New(Config{Model: m, Tokenizer: tok, BaseName: baseName, Registry: reg, Cache: cache, Scheduler: sched,
		AllowOnDemand: opts.allowOnDemand, MaxRequestBytes: opts.maxBytes, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	e.client = openai.NewClient(option.WithBaseURL(e.ts.URL+"/v1"), option.WithAPIKey("test"), option.WithMaxRetries(0))
	return e
}

func (e *env) register(reg *adapters.Registry, name, dir string) {
	e.t.Helper()
	if _, err := reg.Register(context.Background(), name, dir); err != nil {
		e.t.Fatal(err)
	}
	e.adapters[name] = dir
}

// writeRandomAdapter writes a PEFT adapter with random rank-4 q_proj and
// v_proj weights large enough to change the model's greedy output.
func writeRandomAdapter(t testing.TB, cfg *model.Config, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	const r = 4
	conf := &peft.Config{PeftType: "LORA", TaskType: "CAUSAL_LM", R: r, LoraAlpha: 2 * r, TargetModules: []string{"q_proj", "v_proj"}, Bias: "none"}
	js, err := conf.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, peft.ConfigFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	mat := func(rows, cols int) []byte {
		b := make([]byte, 4*rows*cols)
		for i := 0; i < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(rng.NormFloat64()*0.3)))
		}
		return b
	}
	var ts []safetensors.Tensor
	for l := range cfg.Layers {
		for _, m := range []model.Module{model.ModQ, model.ModV} {
			base := fmt.Sprintf("base_model.model.model.layers.%d.%s", l, m.Path())
			ts = append(ts,
				safetensors.Tensor{Name: base + ".lora_A.weight", DType: kernels.F32, Shape: []int{r, cfg.InDim(m)}, Data: mat(r, cfg.InDim(m))},
				safetensors.Tensor{Name: base + ".lora_B.weight", DType: kernels.F32, Shape: []int{cfg.OutDim(m), r}, Data: mat(cfg.OutDim(m), r)})
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// generate runs one request alone with engine.Generate, as `switchyard
// generate` does: the reference the server must match.
func (e *env) generate(adapter string, prompt []int, maxTokens int, ignoreEOS bool) engine.Result {
	e.t.Helper()
	var a *lora.Adapter
	if adapter != "" && adapter != baseName {
		var err error
		if a, err = lora.Load(e.adapters[adapter], &e.m.Config); err != nil {
			e.t.Fatal(err)
		}
	}
	eng := &engine.Engine{Model: e.m, Tokenizer: e.tok}
	res, err := eng.Generate(context.Background(), []engine.Request{{Prompt: prompt, Adapter: a, IgnoreEOS: ignoreEOS,
		Params: engine.SamplingParams{MaxTokens: maxTokens}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0]
}

// tokenIDs reads Switchyard's token_ids extension from a choice.
func tokenIDs(t testing.TB, extra map[string]respjson.Field) []int {
	t.Helper()
	f, ok := extra["token_ids"]
	if !ok {
		return nil
	}
	var ids []int
	if err := json.Unmarshal([]byte(f.Raw()), &ids); err != nil {
		t.Fatalf("token_ids %s: %v", f.Raw(), err)
	}
	return ids
}

// int64s converts token ids for the client.
func int64s(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// do sends a raw request and returns the status and the decoded body.
func (e *env) do(method, path, contentType, body string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	if out == nil {
		out = map[string]any{"raw": string(data)}
	}
	return resp.StatusCode, resp.Header, out
}
