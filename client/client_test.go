package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/server"
)

// TestClient drives a server over the stories260K_hf fixture.
func TestClient(t *testing.T) {
	dir := testshared.Path(t, "fixtures", "stories260K_hf")
	m, err := model.Load(dir+"/model", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := engine.LoadTokenizer(m, dir+"/model")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	reg, err := adapters.Open(ctx, t.TempDir(), &m.Config, "stories", &adapters.RegistryOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	cache, err := adapters.NewCache(reg, adapters.Budgets{Tier0: 1 << 30}, &adapters.CacheOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	sched := engine.NewScheduler(m, tok, engine.SchedulerOptions{Logger: quiet})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sched.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }() // before m.Close unmaps the weights
	srv, err := server.New(server.Config{Model: m, Tokenizer: tok, BaseName: "stories", Registry: reg, Cache: cache, Scheduler: sched, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	c := New(ts.URL, nil)
	a, err := c.RegisterAdapter(ctx, "r8", dir+"/adapters/r8_qv")
	if err != nil || a.Version != 1 || a.Rank != 8 {
		t.Fatalf("register: %+v %v", a, err)
	}
	if a, err := c.PinAdapter(ctx, "r8"); err != nil || !a.Pinned || a.Residency != "tier0" {
		t.Errorf("pin: %+v %v", a, err)
	}
	if _, err := c.UnpinAdapter(ctx, "r8"); err != nil {
		t.Error(err)
	}
	var apiErr *Error
	if _, err := c.UnpinAdapter(ctx, "r8"); !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Errorf("unpin twice: %v", err)
	}
	list, err := c.Adapters(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("list: %v %v", list, err)
	}

	f := testshared.LoadFixture(t, "stories260K_hf")
	comp, err := c.Complete(ctx, CompletionRequest{Model: "r8", Prompt: f.Prompts[1], MaxTokens: 16, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.Adapters["r8_qv"].Greedy[1][:16]; !slices.Equal(comp.TokenIDs, want) {
		t.Errorf("completion %v, want %v", comp.TokenIDs, want)
	}

	res, err := c.RunChain(ctx, "Once upon a time", []ChainStep{
		{Name: "a", Model: "r8", Prompt: "{{ input }}", MaxTokens: 8},
		{Name: "b", Model: "stories", Prompt: "{{ steps.a }}", MaxTokens: 8},
	})
	if err != nil || len(res.Steps) != 2 || res.Output != res.Steps[1].Output || res.Usage.CompletionTokens == 0 {
		t.Errorf("chain: %+v %v", res, err)
	}
	if err := c.DeleteAdapter(ctx, "r8"); err != nil {
		t.Error(err)
	}
	if _, err := c.Adapter(ctx, "r8"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("after delete: %v", err)
	}
}
