package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/internal/fsutil"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
	"github.com/switchyard-ai/switchyard/train"
)

// Fine-tuning job statuses, as OpenAI names them.
const (
	StatusValidatingFiles = "validating_files"
	StatusQueued          = "queued"
	StatusRunning         = "running"
	StatusSucceeded       = "succeeded"
	StatusFailed          = "failed"
	StatusCancelled       = "cancelled"
)

// maxJobEvents bounds the events kept per job; the oldest go first.
const maxJobEvents = 500

// defaultCheckpointEvery is JobsConfig.CheckpointEvery's default.
const defaultCheckpointEvery = 10

// JobsConfig configures a Jobs manager.
type JobsConfig struct {
	// Dir holds the uploaded files, the job records and the jobs'
	// checkpoints and adapters; it is created when missing.
	Dir string
	// Model is the base model the jobs train on; it is only read.
	Model *model.Model
	// Tokenizer reads the training files.
	Tokenizer *tokenizer.Tokenizer
	// BaseName is the base model's name: a job's "model".
	BaseName string
	// Registry receives the adapter of each finished job.
	Registry *adapters.Registry
	// Workers bounds the jobs that train at once; 0 means 1.
	Workers int
	// Threads is each job's training thread count; 0 means 1, which
	// leaves the other cores to serving.
	Threads int
	// CheckpointEvery is how many optimizer steps pass between a job's
	// checkpoints, which a restarted server resumes from; 0 means 10.
	CheckpointEvery int
	// Logger receives the jobs' logs; nil means slog.Default().
	Logger *slog.Logger
}

// Jobs runs fine-tuning jobs in the background, at most Workers at a
// time, and keeps their records as JSON files in its directory, so that
// a restarted server resumes the jobs that were running (from their last
// checkpoint) and still runs the queued ones. It is safe for concurrent
// use.
type Jobs struct {
	cfg JobsConfig
	log *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a job is queued or the manager closes
	closed  bool
	jobs    map[string]*jobState
	running map[string]context.CancelFunc
	seq     int64 // the last job's Seq
	wg      sync.WaitGroup
}

// jobState is a job's record and its events.
type jobState struct {
	FineTuningJob
	Seq       int64      `json:"seq"` // creation order: the queue's order
	Events    []JobEvent `json:"events"`
	NextEvent int        `json:"next_event"`
	saved     time.Time  // when the record was last written
}

// FineTuningJob is a fine-tuning job in the shape of OpenAI's
// fine_tuning.job object, with Switchyard's LoRA settings added.
type FineTuningJob struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"` // "fine_tuning.job"
	CreatedAt       int64             `json:"created_at"`
	FinishedAt      *int64            `json:"finished_at"`
	EstimatedFinish *int64            `json:"estimated_finish"`
	Model           string            `json:"model"`
	FineTunedModel  *string           `json:"fine_tuned_model"`
	OrganizationID  string            `json:"organization_id"`
	Status          string            `json:"status"`
	Hyperparameters JobHyperparams    `json:"hyperparameters"`
	LoRA            JobLoRA           `json:"lora"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  *string           `json:"validation_file"`
	ResultFiles     []string          `json:"result_files"`
	TrainedTokens   *int64            `json:"trained_tokens"`
	Error           *JobError         `json:"error"`
	Seed            int64             `json:"seed"`
	Suffix          *string           `json:"suffix"`
	Metadata        map[string]string `json:"metadata"`
	Integrations    []any             `json:"integrations"`
}

// JobHyperparams are a job's hyperparameters. MaxSteps is Switchyard's
// extension: it stops training after that many optimizer steps.
type JobHyperparams struct {
	NEpochs                int     `json:"n_epochs"`
	BatchSize              int     `json:"batch_size"`
	LearningRateMultiplier float64 `json:"learning_rate_multiplier"`
	MaxSteps               int     `json:"max_steps,omitempty"`
}

// JobLoRA are a job's LoRA settings, as PEFT's LoraConfig names them.
type JobLoRA struct {
	R             int      `json:"r"`
	LoRAAlpha     float64  `json:"lora_alpha"`
	TargetModules []string `json:"target_modules"`
	UseRSLoRA     bool     `json:"use_rslora"`
	LoRADropout   float64  `json:"lora_dropout"`
}

// JobError is why a job failed.
type JobError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

// JobEvent is a fine_tuning.job.event. Metrics events carry the step's
// numbers in Data.
type JobEvent struct {
	ID        string         `json:"id"`
	Object    string         `json:"object"` // "fine_tuning.job.event"
	CreatedAt int64          `json:"created_at"`
	Level     string         `json:"level"` // "info", "warn" or "error"
	Message   string         `json:"message"`
	Type      string         `json:"type"` // "message" or "metrics"
	Data      map[string]any `json:"data"`
}

// JobCheckpoint is a fine_tuning.job.checkpoint: a saved adapter of a
// job's run, servable as it is from FineTunedModelCheckpoint (a
// directory on the server).
type JobCheckpoint struct {
	ID                       string         `json:"id"`
	Object                   string         `json:"object"` // "fine_tuning.job.checkpoint"
	CreatedAt                int64          `json:"created_at"`
	FineTunedModelCheckpoint string         `json:"fine_tuned_model_checkpoint"`
	FineTuningJobID          string         `json:"fine_tuning_job_id"`
	StepNumber               int            `json:"step_number"`
	Metrics                  map[string]any `json:"metrics"`
}

// ErrJobNotFound is returned for a job or file id that does not exist.
var ErrJobNotFound = errors.New("server: no such fine-tuning job")

// OpenJobs opens (or creates) the jobs directory cfg.Dir, re-queues the
// jobs an earlier manager left running, and starts the workers.
func OpenJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Dir == "" || cfg.Model == nil || cfg.Tokenizer == nil || cfg.Registry == nil || cfg.BaseName == "" {
		return nil, errors.New("server: JobsConfig needs Dir, Model, Tokenizer, Registry and BaseName")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = defaultCheckpointEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{"files", "jobs"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("server: jobs dir: %w", err)
		}
	}
	j := &Jobs{cfg: cfg, log: cfg.Logger, jobs: map[string]*jobState{}, running: map[string]context.CancelFunc{}}
	j.cond = sync.NewCond(&j.mu)
	paths, _ := filepath.Glob(filepath.Join(cfg.Dir, "jobs", "*.json"))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("server: jobs dir: %w", err)
		}
		var st jobState
		if err := json.Unmarshal(raw, &st); err != nil || st.ID == "" {
			j.log.Warn("server: unreadable fine-tuning job record; skipped", "path", p, "err", err)
			continue
		}
		if st.Status == StatusRunning || st.Status == StatusValidatingFiles {
			st.Status = StatusQueued
			j.event(&st, "info", "The server restarted; the job is queued to resume from its last checkpoint.", nil)
			j.save(&st)
		}
		j.jobs[st.ID] = &st
		j.seq = max(j.seq, st.Seq)
	}
	for range cfg.Workers {
		j.wg.Add(1)
		go j.worker()
	}
	return j, nil
}

// Close stops the workers. Running jobs are stopped but stay "running"
// in their records, so the next OpenJobs on the directory resumes them.
func (j *Jobs) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	for _, cancel := range j.running {
		cancel()
	}
	j.cond.Broadcast()
	j.mu.Unlock()
	j.wg.Wait()
	return nil
}

// jobPath is the record file of a job; jobDir holds its checkpoints and
// adapter.
func (j *Jobs) jobPath(id string) string { return filepath.Join(j.cfg.Dir, "jobs", id+".json") }
func (j *Jobs) jobDir(id string) string  { return filepath.Join(j.cfg.Dir, "jobs", id) }

// save writes st's record atomically; j.mu is held or st is not shared
// yet.
func (j *Jobs) save(st *jobState) {
	st.saved = time.Now()
	err := fsutil.WriteFileAtomic(j.jobPath(st.ID), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(st)
	})
	if err != nil {
		j.log.Error("server: saving a fine-tuning job", "job", st.ID, "err", err)
	}
}

// event appends an event to st, dropping the oldest beyond maxJobEvents.
func (j *Jobs) event(st *jobState, level, msg string, data map[string]any) {
	typ := "message"
	if data != nil {
		typ = "metrics"
	}
	st.NextEvent++
	st.Events = append(st.Events, JobEvent{ID: fmt.Sprintf("ftevent-%s-%d", strings.TrimPrefix(st.ID, "ftjob-"), st.NextEvent),
		Object: "fine_tuning.job.event", CreatedAt: time.Now().Unix(), Level: level, Message: msg, Type: typ, Data: data})
	if n := len(st.Events) - maxJobEvents; n > 0 {
		st.Events = slices.Delete(st.Events, 0, n)
	}
}

// Create queues a job. Its files must have been uploaded.
func (j *Jobs) Create(job FineTuningJob) (FineTuningJob, error) {
	if _, err := j.File(job.TrainingFile); err != nil {
		return FineTuningJob{}, invalid("training_file", "training_file %q: no such file", job.TrainingFile)
	}
	if job.ValidationFile != nil {
		if _, err := j.File(*job.ValidationFile); err != nil {
			return FineTuningJob{}, invalid("validation_file", "validation_file %q: no such file", *job.ValidationFile)
		}
	}
	job.ID = newID("ftjob-")
	job.Object = "fine_tuning.job"
	job.CreatedAt = time.Now().Unix()
	job.Model = j.cfg.BaseName
	job.Status = StatusQueued
	job.ResultFiles = []string{}
	job.Integrations = []any{}
	if job.Metadata == nil {
		job.Metadata = map[string]string{}
	}
	st := &jobState{FineTuningJob: job}
	j.event(st, "info", "Created fine-tuning job "+job.ID, nil)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return FineTuningJob{}, errors.New("server: the fine-tuning manager is closed")
	}
	j.seq++
	st.Seq = j.seq
	j.save(st)
	j.jobs[job.ID] = st
	j.cond.Signal()
	return st.FineTuningJob, nil
}

// Get returns a job.
func (j *Jobs) Get(id string) (FineTuningJob, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.jobs[id]
	if !ok {
		return FineTuningJob{}, ErrJobNotFound
	}
	return st.FineTuningJob, nil
}

// List returns every job, newest first.
func (j *Jobs) List() []FineTuningJob {
	j.mu.Lock()
	defer j.mu.Unlock()
	sts := make([]*jobState, 0, len(j.jobs))
	for _, st := range j.jobs {
		sts = append(sts, st)
	}
	sort.Slice(sts, func(a, b int) bool { return sts[a].Seq > sts[b].Seq })
	out := make([]FineTuningJob, len(sts))
	for i, st := range sts {
		out[i] = st.FineTuningJob
	}
	return out
}

// Events returns a job's kept events, newest first.
func (j *Jobs) Events(id string) ([]JobEvent, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.jobs[id]
	if !ok {
		return nil, ErrJobNotFound
	}
	out := slices.Clone(st.Events)
	slices.Reverse(out)
	return out, nil
}

// Checkpoints returns a job's saved checkpoints, newest first.
func (j *Jobs) Checkpoints(id string) ([]JobCheckpoint, error) {
	if _, err := j.Get(id); err != nil {
		return nil, err
	}
	dirs, _ := filepath.Glob(filepath.Join(j.jobDir(id), "checkpoints", "checkpoint-*"))
	var out []JobCheckpoint
	for _, d := range dirs {
		var step int
		if _, err := fmt.Sscanf(filepath.Base(d), "checkpoint-%d", &step); err != nil || strings.HasSuffix(d, ".tmp") {
			continue
		}
		var created int64
		if fi, err := os.Stat(d); err == nil {
			created = fi.ModTime().Unix()
		}
		out = append(out, JobCheckpoint{ID: fmt.Sprintf("ftckpt-%s-%d", strings.TrimPrefix(id, "ftjob-"), step),
			Object: "fine_tuning.job.checkpoint", CreatedAt: created, FineTunedModelCheckpoint: d,
			FineTuningJobID: id, StepNumber: step, Metrics: map[string]any{}})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].StepNumber > out[b].StepNumber })
	return out, nil
}

// Cancel cancels a queued or running job. A finished job cannot be
// cancelled.
func (j *Jobs) Cancel(id string) (FineTuningJob, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.jobs[id]
	if !ok {
		return FineTuningJob{}, ErrJobNotFound
	}
	switch st.Status {
	case StatusSucceeded, StatusFailed, StatusCancelled:
		return FineTuningJob{}, invalid("", "job %s has already %s", id, st.Status)
	}
	st.Status = StatusCancelled
	now := time.Now().Unix()
	st.FinishedAt = &now
	st.EstimatedFinish = nil
	j.event(st, "info", "Fine-tuning job cancelled", nil)
	j.save(st)
	if cancel := j.running[id]; cancel != nil {
		cancel()
	}
	return st.FineTuningJob, nil
}

// worker runs queued jobs, oldest first, until the manager closes.
func (j *Jobs) worker() {
	defer j.wg.Done()
	for {
		j.mu.Lock()
		var next *jobState
		for !j.closed {
			for _, st := range j.jobs {
				if st.Status == StatusQueued && j.running[st.ID] == nil && (next == nil || st.Seq < next.Seq) {
					next = st
				}
			}
			if next != nil {
				break
			}
			j.cond.Wait()
		}
		if j.closed {
			j.mu.Unlock()
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		j.running[next.ID] = cancel
		next.Status = StatusRunning
		j.event(next, "info", "Fine-tuning job started", nil)
		j.save(next)
		id := next.ID
		j.mu.Unlock()

		name, tokens, err := j.run(ctx, id)

		j.mu.Lock()
		delete(j.running, id)
		cancel()
		st := j.jobs[id]
		switch {
		case j.closed && st.Status == StatusRunning:
			// Stopped by Close: the record stays "running" and the next
			// OpenJobs resumes it.
			j.event(st, "info", "The server stopped; the job will resume from its last checkpoint.", nil)
		case st.Status != StatusRunning:
			// Cancelled meanwhile; Cancel wrote the record.
		case err != nil:
			st.Status = StatusFailed
			msg := err.Error()
			code := "server_error"
			var de *train.DataError
			if errors.As(err, &de) {
				code = "invalid_training_file"
			}
			st.Error = &JobError{Code: code, Message: msg}
			j.event(st, "error", "Fine-tuning job failed: "+msg, nil)
		default:
			st.Status = StatusSucceeded
			st.FineTunedModel = &name
			st.TrainedTokens = &tokens
			st.ResultFiles = []string{}
			j.event(st, "info", "New fine-tuned model created: "+name, nil)
			j.event(st, "info", "The job has successfully completed", nil)
		}
		if st.Status != StatusRunning {
			now := time.Now().Unix()
			if st.FinishedAt == nil {
				st.FinishedAt = &now
			}
			st.EstimatedFinish = nil
		}
		j.save(st)
		j.mu.Unlock()
	}
}

// run trains job id and registers its adapter, returning the adapter's
// name and the tokens trained on.
func (j *Jobs) run(ctx context.Context, id string) (string, int64, error) {
	j.mu.Lock()
	job := j.jobs[id].FineTuningJob
	j.mu.Unlock()
	maxLen := j.cfg.Model.Config.MaxPositions
	trainSet, err := j.readExamples(job.TrainingFile, maxLen)
	if err != nil {
		return "", 0, err
	}
	var evalSet []train.Example
	if job.ValidationFile != nil {
		if evalSet, err = j.readExamples(*job.ValidationFile, maxLen); err != nil {
			return "", 0, err
		}
	}
	opts := jobOptions(&job)
	opts.Threads = j.cfg.Threads
	opts.CheckpointDir = filepath.Join(j.jobDir(id), "checkpoints")
	opts.CheckpointEvery = j.cfg.CheckpointEvery
	if err := os.MkdirAll(opts.CheckpointDir, 0o755); err != nil {
		return "", 0, err
	}
	if last := latestCheckpoint(opts.CheckpointDir); last != "" {
		opts.ResumeFrom = last
		j.addEvent(id, "info", "Resuming from "+filepath.Base(last), nil)
	}
	opts.Progress = func(p train.Progress) { j.progress(id, p) }
	ad, rep, err := train.Train(ctx, j.cfg.Model, trainSet, evalSet, opts)
	if err != nil {
		return "", 0, err
	}
	out := filepath.Join(j.jobDir(id), "adapter")
	os.RemoveAll(out)
	if err := train.SavePEFT(out, ad, opts, j.cfg.BaseName); err != nil {
		return "", 0, err
	}
	name := FineTunedName(j.cfg.BaseName, deref(job.Suffix), id)
	// A job resumed after its adapter was registered is not registered
	// twice.
	if vs := j.cfg.Registry.Versions(name); len(vs) == 0 || vs[len(vs)-1].Source != out {
		if _, err := j.cfg.Registry.Register(context.WithoutCancel(ctx), name, out); err != nil {
			return "", 0, err
		}
	}
	j.log.Info("server: fine-tuning job succeeded", "job", id, "model", name, "steps", rep.Steps)
	return name, rep.Tokens, nil
}

// addEvent adds an event to job id and saves it.
func (j *Jobs) addEvent(id, level, msg string, data map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if st := j.jobs[id]; st != nil {
		j.event(st, level, msg, data)
		j.save(st)
	}
}

// progress records a training step as a metrics event. The record is
// written at most once a second.
func (j *Jobs) progress(id string, p train.Progress) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.jobs[id]
	if st == nil {
		return
	}
	data := map[string]any{"step": p.Step, "total_steps": p.Steps, "epoch": p.Epoch, "tokens": p.Tokens}
	var msg string
	if p.Eval {
		data["valid_loss"] = p.EvalLoss
		msg = fmt.Sprintf("Step %d/%d: validation loss=%.4f", p.Step, p.Steps, p.EvalLoss)
	} else {
		data["train_loss"] = p.Loss
		data["learning_rate"] = p.LR
		data["tokens_per_second"] = p.TokensPerSec
		data["eta_seconds"] = p.ETA.Seconds()
		if !math.IsNaN(p.EvalLoss) {
			data["valid_loss"] = p.EvalLoss
		}
		msg = fmt.Sprintf("Step %d/%d: training loss=%.4f, %.0f tokens/s, eta %v", p.Step, p.Steps, p.Loss, p.TokensPerSec, p.ETA.Round(time.Second))
		finish := time.Now().Add(p.ETA).Unix()
		st.EstimatedFinish = &finish
	}
	j.event(st, "info", msg, data)
	if time.Since(st.saved) >= time.Second {
		j.save(st)
	}
}

// readExamples reads an uploaded file's examples.
func (j *Jobs) readExamples(fileID string, maxLen int) ([]train.Example, error) {
	f, err := j.File(fileID)
	if err != nil {
		return nil, err
	}
	return train.ReadExamples(j.filePath(f.ID), j.cfg.Tokenizer, maxLen, false)
}

// latestCheckpoint returns the newest complete checkpoint under dir, or
// "".
func latestCheckpoint(dir string) string {
	dirs, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*"))
	best, bestStep := "", -1
	for _, d := range dirs {
		var step int
		if strings.HasSuffix(d, ".tmp") {
			continue
		}
		if _, err := fmt.Sscanf(filepath.Base(d), "checkpoint-%d", &step); err == nil && step > bestStep {
			best, bestStep = d, step
		}
	}
	return best
}

// jobOptions turns a job's hyperparameters into training options.
func jobOptions(job *FineTuningJob) train.Options {
	d := train.Defaults()
	h, l := &job.Hyperparameters, &job.LoRA
	return train.Options{Rank: l.R, Alpha: l.LoRAAlpha, RSLoRA: l.UseRSLoRA, Targets: l.TargetModules, Dropout: l.LoRADropout,
		LR: d.LR * h.LearningRateMultiplier, Epochs: h.NEpochs, BatchSize: h.BatchSize, MaxSteps: h.MaxSteps,
		ClipNorm: 1, Shuffle: true, Seed: uint64(job.Seed)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// FineTunedName is the adapter name a finished job registers. OpenAI's
// "ft:<base>:<suffix>:<id>" has ':', which adapter names do not allow,
// so the name is "ft-<base>-<suffix>-<id>" (without "-<suffix>" when
// there is none), with characters outside [A-Za-z0-9._-] replaced by
// '-' and base and suffix shortened so that the name fits 128 bytes.
func FineTunedName(base, suffix, jobID string) string {
	clean := func(s string, n int) string {
		b := []byte(s)
		for i, c := range b {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				b[i] = '-'
			}
		}
		if len(b) > n {
			b = b[:n]
		}
		return string(b)
	}
	id := clean(jobID, 60)
	room := 128 - len("ft-") - len(id) - 1 // for base and "-" suffix
	if suffix != "" {
		s := clean(suffix, min(40, room/2-1))
		return "ft-" + clean(base, room-len(s)-1) + "-" + s + "-" + id
	}
	return "ft-" + clean(base, room) + "-" + id
}
