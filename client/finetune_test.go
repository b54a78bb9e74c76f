package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/server"
)

// newFinetuneServer serves the stories260K_hf fixture as "stories" with
// fine-tuning enabled.
func newFinetuneServer(t *testing.T) string {
	t.Helper()
	dir := testshared.Path(t, "fixtures", "stories260K_hf", "model")
	m, err := model.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := engine.LoadTokenizer(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	reg, err := adapters.Open(ctx, t.TempDir(), &m.Config, "stories", &adapters.RegistryOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	cache, err := adapters.NewCache(reg, adapters.Budgets{Tier0: 1 << 30}, &adapters.CacheOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	sched := engine.NewScheduler(m, tok, engine.SchedulerOptions{Logger: quiet})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sched.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv, err := server.New(server.Config{Model: m, Tokenizer: tok, BaseName: "stories", Registry: reg, Cache: cache,
		Scheduler: sched, Logger: quiet, JobsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func dogExamples(n int) []Example {
	exs := make([]Example, n)
	for i := range exs {
		exs[i] = Example{Prompt: "Once upon a time", Completion: " the dog ate the big red cake."}
	}
	return exs
}

// TestTrainFiveLines is the README's five-line example.
func TestTrainFiveLines(t *testing.T) {
	url, ctx, examples := newFinetuneServer(t), context.Background(), dogExamples(8)

	c := New(url, nil)
	job, _ := c.Train(ctx, "stories", examples)
	m, _ := job.Wait(ctx)
	out, err := c.Generate(ctx, m, "Once upon a time")

	if err != nil || m == "" || job.Status != "succeeded" {
		t.Fatalf("model %q, job %+v, generate: %v", m, job, err)
	}
	base, err := c.Generate(ctx, "stories", "Once upon a time")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base %q, tuned %q", base, out)
}

func TestTrainOptionsAndCancel(t *testing.T) {
	url, ctx := newFinetuneServer(t), context.Background()
	c := New(url, nil)
	job, err := c.TrainWithOptions(ctx, "stories", dogExamples(8), &TrainOptions{Suffix: "dogs", Validation: dogExamples(2),
		Hyperparameters: Hyperparameters{LearningRateMultiplier: 100, BatchSize: 2, MaxSteps: 12},
		LoRA:            LoRA{R: 4, TargetModules: []string{"q_proj", "v_proj", "o_proj"}}})
	if err != nil {
		t.Fatal(err)
	}
	var steps int
	done, err := c.WatchJob(ctx, job.ID, func(ev JobEvent) {
		if _, ok := ev.Data["train_loss"]; ok {
			steps++
		}
	})
	if err != nil || done.Status != "succeeded" || !strings.Contains(done.FineTunedModel, "-dogs-") {
		t.Fatalf("job %+v: %v", done, err)
	}
	if steps != 12 {
		t.Errorf("saw %d step events, want 12", steps)
	}
	base, _ := c.Generate(ctx, "stories", "Once upon a time")
	tuned, _ := c.Generate(ctx, done.FineTunedModel, "Once upon a time")
	if base == tuned {
		t.Errorf("fine-tuning changed nothing: %q", tuned)
	}

	long, err := c.TrainWithOptions(ctx, "stories", dogExamples(4), &TrainOptions{Hyperparameters: Hyperparameters{MaxSteps: 1000000}})
	if err != nil {
		t.Fatal(err)
	}
	for long.Status != "running" {
		if long.Done() {
			t.Fatalf("job %s before it ran: %+v", long.Status, long.Error)
		}
		time.Sleep(10 * time.Millisecond)
		if long, err = c.Job(ctx, long.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := long.Cancel(ctx); err != nil || long.Status != "cancelled" {
		t.Fatalf("cancel: %v, status %s", err, long.Status)
	}
	if _, err := long.Wait(ctx); err == nil {
		t.Error("Wait on a cancelled job: no error")
	}

	_, err = c.UploadFile(ctx, "bad.jsonl", strings.NewReader("{\"prompt\": \"a\"}\n"))
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "bad.jsonl:1:") {
		t.Errorf("bad file: %v", err)
	}
}
