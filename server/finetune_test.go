package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// ftEnv is a test server with fine-tuning enabled.
type ftEnv struct {
	*env
	ft     *Server
	url    string
	jobDir string
}

// newFTEnv starts a second server over newEnv's model and registry with
// a jobs directory.
func newFTEnv(t *testing.T) *ftEnv {
	t.Helper()
	e := newEnv(t, envOptions{})
	cfg := e.srv.cfg
	cfg.JobsDir = t.TempDir()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &ftEnv{env: e, ft: srv, url: ts.URL, jobDir: cfg.JobsDir}
}

// ftData is a tiny training set the model learns in a few steps.
func ftData(n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(`{"prompt": "Once upon a time", "completion": " the dog ate the big red cake."}` + "\n")
	}
	return b.String()
}

// upload posts a JSONL file to /v1/files.
func (e *ftEnv) upload(data string) (int, map[string]any) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("purpose", "fine-tune")
	fw, _ := mw.CreateFormFile("file", "train.jsonl")
	fw.Write([]byte(data))
	mw.Close()
	return e.call("POST", "/v1/files", mw.FormDataContentType(), body.String())
}

func (e *ftEnv) call(method, path, ct, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// createJob uploads data and creates a job on it with maxSteps.
func (e *ftEnv) createJob(data string, maxSteps int) string {
	e.t.Helper()
	code, f := e.upload(data)
	if code != 200 {
		e.t.Fatalf("upload: %d %v", code, f)
	}
	body := fmt.Sprintf(`{"model": %q, "training_file": %q, "suffix": "dogs", "seed": 1,
		"hyperparameters": {"n_epochs": "auto", "batch_size": 2, "learning_rate_multiplier": 100, "max_steps": %d},
		"lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "o_proj"]}}`, baseName, f["id"], maxSteps)
	code, job := e.call("POST", "/v1/fine_tuning/jobs", "application/json", body)
	if code != 200 {
		e.t.Fatalf("create job: %d %v", code, job)
	}
	return job["id"].(string)
}

// waitJob polls job id until its status is one of want, or fails.
func waitJob(t *testing.T, get func() FineTuningJob, want ...string) FineTuningJob {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j := get()
		for _, w := range want {
			if j.Status == w {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s after 60s; want %v (error %+v)", j.ID, j.Status, want, j.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *ftEnv) getJob(id string) FineTuningJob {
	j, err := e.ft.jobs.Get(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// complete runs a greedy completion on model over HTTP.
func (e *ftEnv) complete(model string) string {
	e.t.Helper()
	code, out := e.call("POST", "/v1/completions", "application/json",
		fmt.Sprintf(`{"model": %q, "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}`, model))
	if code != 200 {
		e.t.Fatalf("completion on %s: %d %v", model, code, out)
	}
	return out["choices"].([]any)[0].(map[string]any)["text"].(string)
}

func TestFinetuneHTTP(t *testing.T) {
	e := newFTEnv(t)
	id := e.createJob(ftData(8), 20)
	job := waitJob(t, func() FineTuningJob { return e.getJob(id) }, StatusSucceeded, StatusFailed)
	if job.Status != StatusSucceeded {
		t.Fatalf("job failed: %+v", job.Error)
	}
	want := FineTunedName(baseName, "dogs", id)
	if job.FineTunedModel == nil || *job.FineTunedModel != want {
		t.Fatalf("fine_tuned_model = %v, want %s", job.FineTunedModel, want)
	}
	if job.TrainedTokens == nil || *job.TrainedTokens == 0 {
		t.Errorf("trained_tokens = %v", job.TrainedTokens)
	}
	base, tuned := e.complete(baseName), e.complete(want)
	t.Logf("base %q, tuned %q", base, tuned)
	if base == tuned {
		t.Errorf("the fine-tuned model completes as the base does: %q", tuned)
	}

	code, got := e.call("GET", "/v1/fine_tuning/jobs/"+id, "", "")
	if code != 200 || got["status"] != "succeeded" || got["object"] != "fine_tuning.job" {
		t.Errorf("GET job: %d %v", code, got)
	}
	code, list := e.call("GET", "/v1/fine_tuning/jobs", "", "")
	if code != 200 || len(list["data"].([]any)) != 1 {
		t.Errorf("list jobs: %d %v", code, list)
	}
	code, evs := e.call("GET", "/v1/fine_tuning/jobs/"+id+"/events?limit=100", "", "")
	if code != 200 {
		t.Fatalf("events: %d %v", code, evs)
	}
	metrics := 0
	for _, ev := range evs["data"].([]any) {
		ev := ev.(map[string]any)
		if ev["type"] == "metrics" {
			d := ev["data"].(map[string]any)
			if _, ok := d["train_loss"]; ok {
				metrics++
				for _, k := range []string{"step", "tokens_per_second", "eta_seconds"} {
					if _, ok := d[k]; !ok {
						t.Errorf("metrics event without %s: %v", k, ev)
					}
				}
			}
		}
	}
	if metrics != 20 {
		t.Errorf("%d step events, want 20", metrics)
	}
	code, cps := e.call("GET", "/v1/fine_tuning/jobs/"+id+"/checkpoints", "", "")
	if code != 200 || len(cps["data"].([]any)) == 0 {
		t.Errorf("checkpoints: %d %v", code, cps)
	}
	code, _ = e.call("POST", "/v1/fine_tuning/jobs/"+id+"/cancel", "", "")
	if code != 400 {
		t.Errorf("cancelling a finished job: %d, want 400", code)
	}
	code, _ = e.call("GET", "/v1/fine_tuning/jobs/ftjob-nope", "", "")
	if code != 404 {
		t.Errorf("unknown job: %d, want 404", code)
	}
}

func TestFinetuneOpenAIClient(t *testing.T) {
	e := newFTEnv(t)
	c := openai.NewClient(option.WithBaseURL(e.url+"/v1"), option.WithAPIKey("test"), option.WithMaxRetries(0))
	ctx := context.Background()
	f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(ftData(4)), "train.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeFineTune})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Files.Get(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	job, err := c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: baseName, TrainingFile: f.ID,
		Suffix: openai.String("sdk"),
		Hyperparameters: openai.FineTuningJobNewParamsHyperparameters{
			NEpochs: openai.FineTuningJobNewParamsHyperparametersNEpochsUnion{OfInt: openai.Int(2)}}},
		option.WithJSONSet("hyperparameters.max_steps", 4))
	if err != nil {
		t.Fatal(err)
	}
	for job.Status != "succeeded" {
		if job.Status == "failed" || job.Status == "cancelled" {
			t.Fatalf("job %s: %+v", job.Status, job.Error)
		}
		time.Sleep(20 * time.Millisecond)
		if job, err = c.FineTuning.Jobs.Get(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
	}
	if job.FineTunedModel != FineTunedName(baseName, "sdk", job.ID) {
		t.Errorf("fine_tuned_model %q", job.FineTunedModel)
	}
	events, err := c.FineTuning.Jobs.ListEvents(ctx, job.ID, openai.FineTuningJobListEventsParams{})
	if err != nil || len(events.Data) == 0 {
		t.Errorf("events: %v, %d", err, len(events.Data))
	}
	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(job.FineTunedModel),
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once")}, MaxTokens: openai.Int(4)})
	if err != nil || len(comp.Choices) != 1 {
		t.Fatalf("completion on the fine-tuned model: %v", err)
	}
}

func TestFinetuneCancel(t *testing.T) {
	e := newFTEnv(t)
	id := e.createJob(ftData(8), 100000)
	waitJob(t, func() FineTuningJob { return e.getJob(id) }, StatusRunning)
	// Let it take a few steps.
	for deadline := time.Now().Add(30 * time.Second); ; {
		evs, _ := e.ft.jobs.Events(id)
		if len(evs) > 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no steps after 30s: %+v", e.getJob(id))
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out := e.call("POST", "/v1/fine_tuning/jobs/"+id+"/cancel", "", "")
	if code != 200 || out["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, out)
	}
	// The worker lets go of it, and it stays cancelled.
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.ft.jobs.mu.Lock()
		running := e.ft.jobs.running[id] != nil
		e.ft.jobs.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled job is still training")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j := e.getJob(id); j.Status != StatusCancelled || j.FineTunedModel != nil {
		t.Errorf("after cancel: %s, fine_tuned_model %v", j.Status, j.FineTunedModel)
	}
	// A queued job cancels too: on a manager without workers, it stays
	// queued.
	e2 := newFTEnv(t)
	e2.ft.jobs.Close()
	id2 := e2.createJobNoWorker(t)
	code, out = e2.call("POST", "/v1/fine_tuning/jobs/"+id2+"/cancel", "", "")
	if code != 200 || out["status"] != "cancelled" {
		t.Fatalf("cancel queued: %d %v", code, out)
	}
}

// createJobNoWorker creates a job on a closed manager, reopened for
// Create but without workers, so that it stays queued.
func (e *ftEnv) createJobNoWorker(t *testing.T) string {
	code, f := e.upload(ftData(2))
	if code != 200 {
		t.Fatalf("upload: %d %v", code, f)
	}
	j := e.ft.jobs
	j.mu.Lock()
	j.closed = false
	j.mu.Unlock()
	job, err := j.Create(FineTuningJob{TrainingFile: f["id"].(string), Hyperparameters: JobHyperparams{NEpochs: 1, BatchSize: 1, LearningRateMultiplier: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return job.ID
}

func TestFinetuneBadFile(t *testing.T) {
	e := newFTEnv(t)
	data := `{"prompt": "a", "completion": "b"}` + "\n" + `{"prompt": "a"` + "\n" + `{"prompt": "a", "completion": "b"}` + "\n" + `{"nothing": 1}` + "\n"
	code, out := e.upload(data)
	if code != 400 {
		t.Fatalf("bad file: %d %v", code, out)
	}
	msg := out["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "train.jsonl:2:") || !strings.Contains(msg, "train.jsonl:4:") {
		t.Errorf("message without line numbers: %q", msg)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("purpose", "assistants")
	fw, _ := mw.CreateFormFile("file", "train.jsonl")
	fw.Write([]byte(ftData(1)))
	mw.Close()
	if code, out := e.call("POST", "/v1/files", mw.FormDataContentType(), body.String()); code != 400 {
		t.Errorf("wrong purpose: %d %v", code, out)
	}
	if code, out := e.call("POST", "/v1/fine_tuning/jobs", "application/json",
		fmt.Sprintf(`{"model": %q, "training_file": "file-nope"}`, baseName)); code != 400 {
		t.Errorf("unknown file: %d %v", code, out)
	}
	if code, out := e.call("POST", "/v1/fine_tuning/jobs", "application/json", `{"model": "gpt-4o", "training_file": "file-x"}`); code != 400 {
		t.Errorf("wrong model: %d %v", code, out)
	}
	_, f := e.upload(ftData(1))
	if code, out := e.call("POST", "/v1/fine_tuning/jobs", "application/json",
		fmt.Sprintf(`{"model": %q, "training_file": %q, "lora": {"r": -1}}`, baseName, f["id"])); code != 400 {
		t.Errorf("bad rank: %d %v", code, out)
	}
	if code, _ := e.call("GET", "/v1/files/"+f["id"].(string), "", ""); code != 200 {
		t.Errorf("GET file: %d", code)
	}
	if code, _ := e.call("GET", "/v1/files/file-nope", "", ""); code != 404 {
		t.Errorf("GET unknown file: %d", code)
	}
	if code, out := e.call("GET", "/v1/files", "", ""); code != 200 || len(out["data"].([]any)) != 1 {
		t.Errorf("list files: %d %v", code, out)
	}
	if code, out := e.call("DELETE", "/v1/files/"+f["id"].(string), "", ""); code != 200 || out["deleted"] != true {
		t.Errorf("delete file: %d %v", code, out)
	}
	if code, _ := e.call("GET", "/v1/files/"+f["id"].(string), "", ""); code != 404 {
		t.Errorf("GET deleted file: %d", code)
	}
}

func TestFinetuneRestart(t *testing.T) {
	e := newFTEnv(t)
	e.ft.jobs.Close()
	cfg := e.ft.jobs.cfg
	cfg.CheckpointEvery = 2
	jobs, err := OpenJobs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := jobs.AddFile("train.jsonl", strings.NewReader(ftData(4)))
	if err != nil {
		t.Fatal(err)
	}
	job, err := jobs.Create(FineTuningJob{TrainingFile: f.ID, Hyperparameters: JobHyperparams{NEpochs: 1, BatchSize: 1,
		LearningRateMultiplier: 10, MaxSteps: 400}, LoRA: JobLoRA{R: 4, LoRAAlpha: 8, TargetModules: []string{"q_proj"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A second job waits in the queue behind it.
	queued, err := jobs.Create(FineTuningJob{TrainingFile: f.ID, Hyperparameters: JobHyperparams{NEpochs: 1, BatchSize: 1,
		LearningRateMultiplier: 1, MaxSteps: 2}, LoRA: JobLoRA{R: 4, LoRAAlpha: 8, TargetModules: []string{"q_proj"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a checkpoint, then stop the manager mid-run.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if cps, _ := jobs.Checkpoints(job.ID); len(cps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	jobs.Close()
	if j, _ := jobs.Get(job.ID); j.Status != StatusRunning {
		t.Fatalf("closed mid-run: %s, want running", j.Status)
	}
	if j, _ := jobs.Get(queued.ID); j.Status != StatusQueued {
		t.Fatalf("queued job after close: %s", j.Status)
	}

	jobs2, err := OpenJobs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer jobs2.Close()
	get := func(id string) func() FineTuningJob {
		return func() FineTuningJob {
			j, err := jobs2.Get(id)
			if err != nil {
				t.Fatalf("job %s lost on restart: %v", id, err)
			}
			return j
		}
	}
	j := waitJob(t, get(job.ID), StatusSucceeded, StatusFailed, StatusCancelled)
	if j.Status != StatusSucceeded {
		t.Fatalf("resumed job: %s %+v", j.Status, j.Error)
	}
	evs, _ := jobs2.Events(job.ID)
	resumed := false
	for _, ev := range evs {
		if strings.HasPrefix(ev.Message, "Resuming from checkpoint-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("the job did not resume from a checkpoint")
	}
	if j := waitJob(t, get(queued.ID), StatusSucceeded, StatusFailed); j.Status != StatusSucceeded {
		t.Fatalf("queued job: %s %+v", j.Status, j.Error)
	}
	if _, err := cfg.Registry.Resolve(*j.FineTunedModel); err != nil {
		t.Errorf("the resumed job's adapter is not registered: %v", err)
	}
}

func TestFineTunedName(t *testing.T) {
	for _, c := range []struct{ base, suffix, id, want string }{
		{"stories", "dogs", "ftjob-abc", "ft-stories-dogs-ftjob-abc"},
		{"llama", "", "ftjob-1", "ft-llama-ftjob-1"},
		{"org/model", "my suffix", "ftjob-1", "ft-org-model-my-suffix-ftjob-1"},
	} {
		if got := FineTunedName(c.base, c.suffix, c.id); got != c.want {
			t.Errorf("FineTunedName(%q, %q, %q) = %q, want %q", c.base, c.suffix, c.id, got, c.want)
		}
	}
	long := FineTunedName(strings.Repeat("b", 200), strings.Repeat("s", 200), "ftjob-0123456789abcdef01234567")
	if len(long) > 128 || !strings.HasSuffix(long, "ftjob-0123456789abcdef01234567") {
		t.Errorf("long name %q (%d bytes)", long, len(long))
	}
}
