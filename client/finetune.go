package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Example is one training example: the model learns to continue Prompt
// with Completion.
type Example struct {
	Prompt     string `json:"prompt"`
	Completion string `json:"completion"`
}

// File is an uploaded training file.
type File struct {
	ID        string `json:"id"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

// Hyperparameters of a fine-tuning job; zero values mean the server's
// defaults. MaxSteps is Switchyard's extension.
type Hyperparameters struct {
	NEpochs                int     `json:"n_epochs,omitempty"`
	BatchSize              int     `json:"batch_size,omitempty"`
	LearningRateMultiplier float64 `json:"learning_rate_multiplier,omitempty"` // of the base learning rate, 2e-4
	MaxSteps               int     `json:"max_steps,omitempty"`
}

// LoRA are a job's LoRA settings, as PEFT's LoraConfig names them; zero
// values mean the server's defaults.
type LoRA struct {
	R             int      `json:"r,omitempty"`
	LoRAAlpha     float64  `json:"lora_alpha,omitempty"`
	TargetModules []string `json:"target_modules,omitempty"`
	UseRSLoRA     bool     `json:"use_rslora,omitempty"`
	LoRADropout   float64  `json:"lora_dropout,omitempty"`
}

// JobRequest creates a fine-tuning job.
type JobRequest struct {
	Model           string          `json:"model"` // the server's base model
	TrainingFile    string          `json:"training_file"`
	ValidationFile  string          `json:"validation_file,omitempty"`
	Suffix          string          `json:"suffix,omitempty"`
	Seed            *int64          `json:"seed,omitempty"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
	LoRA            LoRA            `json:"lora"`
}

// JobError is why a job failed.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is a fine-tuning job.
type Job struct {
	ID              string          `json:"id"`
	Status          string          `json:"status"` // validating_files, queued, running, succeeded, failed or cancelled
	Model           string          `json:"model"`
	FineTunedModel  string          `json:"fine_tuned_model"` // the adapter's name, once succeeded
	CreatedAt       int64           `json:"created_at"`
	FinishedAt      int64           `json:"finished_at"`
	EstimatedFinish int64           `json:"estimated_finish"`
	TrainingFile    string          `json:"training_file"`
	ValidationFile  string          `json:"validation_file"`
	TrainedTokens   int64           `json:"trained_tokens"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
	LoRA            LoRA            `json:"lora"`
	Error           *JobError       `json:"error"`

	c *Client
}

// Done reports whether the job has finished: succeeded, failed or
// cancelled.
func (j *Job) Done() bool {
	return j.Status == "succeeded" || j.Status == "failed" || j.Status == "cancelled"
}

// JobEvent is a message or a training step's metrics (step,
// total_steps, train_loss, tokens_per_second, eta_seconds, ...).
type JobEvent struct {
	ID        string         `json:"id"`
	CreatedAt int64          `json:"created_at"`
	Level     string         `json:"level"`
	Message   string         `json:"message"`
	Type      string         `json:"type"` // "message" or "metrics"
	Data      map[string]any `json:"data"`
}

// TrainOptions adjust Train; the zero value means the server's defaults.
type TrainOptions struct {
	Suffix          string
	Validation      []Example
	Seed            *int64
	Hyperparameters Hyperparameters
	LoRA            LoRA
}

// UploadFile uploads a JSONL training file for fine-tuning. The server
// checks every line; a bad file is an *Error whose message lists the bad
// lines by number.
func (c *Client) UploadFile(ctx context.Context, filename string, r io.Reader) (*File, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("purpose", "fine-tune")
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", filename); err == nil {
				if _, err = io.Copy(fw, r); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/files", pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var f File
	if err := c.send(req, &f); err != nil {
		pr.Close()
		return nil, err
	}
	return &f, nil
}

// File returns an uploaded file.
func (c *Client) File(ctx context.Context, id string) (*File, error) {
	var f File
	err := c.do(ctx, "GET", "/v1/files/"+url.PathEscape(id), nil, &f)
	return &f, err
}

// CreateJob creates a fine-tuning job. It runs in the background; see
// Job.Wait and WatchJob.
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	return c.jobCall(ctx, "POST", "/v1/fine_tuning/jobs", req)
}

// Job returns a fine-tuning job.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	return c.jobCall(ctx, "GET", "/v1/fine_tuning/jobs/"+url.PathEscape(id), nil)
}

// CancelJob cancels a queued or running job.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	return c.jobCall(ctx, "POST", "/v1/fine_tuning/jobs/"+url.PathEscape(id)+"/cancel", nil)
}

// Jobs lists the fine-tuning jobs, newest first (at most 1000).
func (c *Client) Jobs(ctx context.Context) ([]*Job, error) {
	var out struct {
		Data []*Job `json:"data"`
	}
	if err := c.do(ctx, "GET", "/v1/fine_tuning/jobs?limit=1000", nil, &out); err != nil {
		return nil, err
	}
	for _, j := range out.Data {
		j.c = c
	}
	return out.Data, nil
}

// JobEvents returns a job's events, newest first (the server keeps the
// last few hundred).
func (c *Client) JobEvents(ctx context.Context, id string) ([]JobEvent, error) {
	var out struct {
		Data []JobEvent `json:"data"`
	}
	err := c.do(ctx, "GET", "/v1/fine_tuning/jobs/"+url.PathEscape(id)+"/events?limit=1000", nil, &out)
	return out.Data, err
}

func (c *Client) jobCall(ctx context.Context, method, path string, body any) (*Job, error) {
	var j Job
	if err := c.do(ctx, method, path, body, &j); err != nil {
		return nil, err
	}
	j.c = c
	return &j, nil
}

// Train uploads examples and starts a fine-tuning job on the base model
// with the server's default hyperparameters:
//
//	c := client.New(url, nil)
//	job, err := c.Train(ctx, base, examples)
//	m, err := job.Wait(ctx)
//	out, err := c.Generate(ctx, m, prompt)
func (c *Client) Train(ctx context.Context, base string, examples []Example) (*Job, error) {
	return c.TrainWithOptions(ctx, base, examples, nil)
}

// TrainWithOptions is Train with options; nil means the defaults.
func (c *Client) TrainWithOptions(ctx context.Context, base string, examples []Example, opts *TrainOptions) (*Job, error) {
	if opts == nil {
		opts = &TrainOptions{}
	}
	if len(examples) == 0 {
		return nil, errors.New("switchyard: no training examples")
	}
	f, err := c.UploadFile(ctx, "train.jsonl", bytes.NewReader(examplesJSONL(examples)))
	if err != nil {
		return nil, err
	}
	req := JobRequest{Model: base, TrainingFile: f.ID, Suffix: opts.Suffix, Seed: opts.Seed,
		Hyperparameters: opts.Hyperparameters, LoRA: opts.LoRA}
	if len(opts.Validation) > 0 {
		v, err := c.UploadFile(ctx, "validation.jsonl", bytes.NewReader(examplesJSONL(opts.Validation)))
		if err != nil {
			return nil, err
		}
		req.ValidationFile = v.ID
	}
	return c.CreateJob(ctx, req)
}

// examplesJSONL encodes examples one JSON object a line.
func examplesJSONL(exs []Example) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, e := range exs {
		enc.Encode(e)
	}
	return b.Bytes()
}

// pollInterval is how often WatchJob asks the server; it starts short
// and doubles up to maxPollInterval.
const (
	minPollInterval = 20 * time.Millisecond
	maxPollInterval = time.Second
)

// WatchJob follows job id until it finishes, calling fn (when not nil)
// on each new event, oldest first, and returns the finished job. Events
// may be missed when more than a thousand arrive between two polls.
func (c *Client) WatchJob(ctx context.Context, id string, fn func(JobEvent)) (*Job, error) {
	seen := map[string]bool{}
	wait := minPollInterval
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if fn != nil {
			evs, err := c.JobEvents(ctx, id)
			if err != nil {
				return nil, err
			}
			for i := len(evs) - 1; i >= 0; i-- {
				if !seen[evs[i].ID] {
					seen[evs[i].ID] = true
					fn(evs[i])
				}
			}
		}
		if j.Done() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxPollInterval)
	}
}

// Wait waits for the job to finish and returns its fine-tuned model's
// name, ready to use as a request's model. A failed or cancelled job is
// an error.
func (j *Job) Wait(ctx context.Context) (string, error) {
	if j.c == nil {
		return "", errors.New("switchyard: Wait on a Job not returned by a Client")
	}
	done, err := j.c.WatchJob(ctx, j.ID, nil)
	if err != nil {
		return "", err
	}
	c := j.c
	*j = *done
	j.c = c
	switch j.Status {
	case "succeeded":
		return j.FineTunedModel, nil
	case "failed":
		msg := "unknown error"
		if j.Error != nil {
			msg = j.Error.Message
		}
		return "", fmt.Errorf("switchyard: fine-tuning job %s failed: %s", j.ID, msg)
	}
	return "", fmt.Errorf("switchyard: fine-tuning job %s was %s", j.ID, j.Status)
}

// Cancel cancels the job.
func (j *Job) Cancel(ctx context.Context) error {
	if j.c == nil {
		return errors.New("switchyard: Cancel on a Job not returned by a Client")
	}
	done, err := j.c.CancelJob(ctx, j.ID)
	if err != nil {
		return err
	}
	*j = *done
	return nil
}

// generateMaxTokens bounds Generate's output.
const generateMaxTokens = 128

// Generate completes prompt greedily on model (the base model or an
// adapter's name), up to 128 tokens or the end of the sequence, and
// returns the text.
func (c *Client) Generate(ctx context.Context, model, prompt string) (string, error) {
	out, err := c.Complete(ctx, CompletionRequest{Model: model, Prompt: prompt, MaxTokens: generateMaxTokens})
	if err != nil {
		return "", err
	}
	return out.Text, nil
}

// send sends req and decodes a JSON response into out (when not nil),
// turning error responses into *Error.
func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == nil {
			return &Error{Status: resp.StatusCode, Type: "http_error", Message: strings.TrimSpace(string(data))}
		}
		e.Error.Status = resp.StatusCode
		return e.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// BaseModel returns the name of the server's base model, the model that
// fine-tuning jobs train on.
func (c *Client) BaseModel(ctx context.Context) (string, error) {
	var out struct {
		Data []struct {
			ID   string `json:"id"`
			Root string `json:"root"`
		} `json:"data"`
	}
	if err := c.do(ctx, "GET", "/v1/models", nil, &out); err != nil {
		return "", err
	}
	for _, m := range out.Data {
		if m.Root == "" {
			return m.ID, nil
		}
	}
	return "", errors.New("switchyard: the server lists no base model")
}
