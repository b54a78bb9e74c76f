package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/switchyard-ai/switchyard/train"
)

// The fine-tuning API follows OpenAI's:
//
//	POST /v1/files                          upload a JSONL training file (multipart: purpose=fine-tune, file)
//	GET  /v1/files                          the uploaded files, newest first
//	GET  /v1/files/{id}                     an uploaded file
//	DELETE /v1/files/{id}                   delete an uploaded file
//	POST /v1/fine_tuning/jobs               create a job
//	GET  /v1/fine_tuning/jobs               list the jobs, newest first
//	GET  /v1/fine_tuning/jobs/{id}          a job
//	GET  /v1/fine_tuning/jobs/{id}/events   its events, newest first (loss, tokens/s, eta per step)
//	GET  /v1/fine_tuning/jobs/{id}/checkpoints
//	POST /v1/fine_tuning/jobs/{id}/cancel
//
// A job's request may add "lora": {"r", "lora_alpha", "target_modules",
// "use_rslora", "lora_dropout"} and "hyperparameters": {"max_steps"}.

// createJobRequest is the body of POST /v1/fine_tuning/jobs.
type createJobRequest struct {
	Model           string            `json:"model"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  *string           `json:"validation_file"`
	Suffix          *string           `json:"suffix"`
	Seed            *int64            `json:"seed"`
	Metadata        map[string]string `json:"metadata"`
	Hyperparameters struct {
		NEpochs                autoNumber `json:"n_epochs"`
		BatchSize              autoNumber `json:"batch_size"`
		LearningRateMultiplier autoNumber `json:"learning_rate_multiplier"`
		MaxSteps               int        `json:"max_steps"`
	} `json:"hyperparameters"`
	Method *struct {
		Type       string `json:"type"`
		Supervised *struct {
			Hyperparameters *struct {
				NEpochs                autoNumber `json:"n_epochs"`
				BatchSize              autoNumber `json:"batch_size"`
				LearningRateMultiplier autoNumber `json:"learning_rate_multiplier"`
			} `json:"hyperparameters"`
		} `json:"supervised"`
	} `json:"method"`
	LoRA struct {
		R             int      `json:"r"`
		LoRAAlpha     float64  `json:"lora_alpha"`
		TargetModules []string `json:"target_modules"`
		UseRSLoRA     bool     `json:"use_rslora"`
		LoRADropout   float64  `json:"lora_dropout"`
	} `json:"lora"`
}

// autoNumber is a hyperparameter that is a number or "auto" (0).
type autoNumber float64

// UnmarshalJSON implements json.Unmarshaler.
func (n *autoNumber) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s == "auto" {
			*n = 0
			return nil
		}
		return invalid("hyperparameters", `hyperparameters must be numbers or "auto", not %q`, s)
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil && !bytes.Equal(b, []byte("null")) {
		return invalid("hyperparameters", `hyperparameters must be numbers or "auto", not %s`, b)
	}
	*n = autoNumber(f)
	return nil
}

// needJobs reports whether fine-tuning is enabled, answering 404 when
// it is not.
func (s *Server) needJobs(w http.ResponseWriter) bool {
	if s.jobs == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "not_found",
			Message: "fine-tuning is not enabled on this server (start it with a jobs directory)"})
		return false
	}
	return true
}

// jobsError turns ErrJobNotFound into a 404.
func jobsError(err error, what string) error {
	if errors.Is(err, ErrJobNotFound) {
		return &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "not_found", Message: "no such " + what}
	}
	return err
}

func (s *Server) handleUploadFile(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	if !isMultipart(r) {
		writeError(w, invalid("file", "upload the file as multipart/form-data with fields purpose=fine-tune and file"))
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, invalid("", "reading the multipart upload: %v", err))
		return
	}
	var (
		purpose string
		file    *FileObject
		fileErr error
	)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, uploadError(err))
			return
		}
		switch {
		case p.FormName() == "purpose" && p.FileName() == "":
			b, err := io.ReadAll(io.LimitReader(p, 64))
			if err != nil {
				writeError(w, uploadError(err))
				return
			}
			purpose = string(b)
		case p.FormName() == "file" && file == nil && fileErr == nil:
			f, err := s.jobs.AddFile(p.FileName(), p)
			if err != nil {
				fileErr = err
			} else {
				file = &f
			}
		default:
			io.Copy(io.Discard, p)
		}
	}
	if purpose != "fine-tune" {
		if file != nil {
			s.jobs.removeFile(file.ID)
		}
		writeError(w, invalid("purpose", `purpose must be "fine-tune", not %q`, purpose))
		return
	}
	if fileErr != nil {
		writeError(w, fileErr)
		return
	}
	if file == nil {
		writeError(w, invalid("file", "the upload has no file part"))
		return
	}
	writeJSON(w, http.StatusOK, file)
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	f, err := s.jobs.File(r.PathValue("id"))
	if err != nil {
		writeError(w, jobsError(err, "file"))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	writePage(w, r, s.jobs.Files(), func(f FileObject) string { return f.ID })
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	id := r.PathValue("id")
	if err := s.jobs.DeleteFile(id); err != nil {
		writeError(w, jobsError(err, "file"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "file", "deleted": true})
}

func (s *Server) handleCreateJob(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	var req createJobRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Model != s.cfg.BaseName {
		writeError(w, invalid("model", "model %q: fine-tuning trains on the base model %q", req.Model, s.cfg.BaseName))
		return
	}
	if req.TrainingFile == "" {
		writeError(w, invalid("training_file", "training_file is required"))
		return
	}
	h := req.Hyperparameters
	if m := req.Method; m != nil && m.Supervised != nil && m.Supervised.Hyperparameters != nil {
		sh := m.Supervised.Hyperparameters
		h.NEpochs, h.BatchSize, h.LearningRateMultiplier = sh.NEpochs, sh.BatchSize, sh.LearningRateMultiplier
	}
	if m := req.Method; m != nil && m.Type != "" && m.Type != "supervised" {
		writeError(w, invalid("method.type", "method %q: only supervised fine-tuning is supported", m.Type))
		return
	}
	job := FineTuningJob{TrainingFile: req.TrainingFile, ValidationFile: req.ValidationFile, Suffix: req.Suffix,
		Metadata: req.Metadata,
		Hyperparameters: JobHyperparams{NEpochs: int(h.NEpochs), BatchSize: int(h.BatchSize),
			LearningRateMultiplier: float64(h.LearningRateMultiplier), MaxSteps: h.MaxSteps},
		LoRA: JobLoRA{R: req.LoRA.R, LoRAAlpha: req.LoRA.LoRAAlpha, TargetModules: req.LoRA.TargetModules,
			UseRSLoRA: req.LoRA.UseRSLoRA, LoRADropout: req.LoRA.LoRADropout}}
	if req.Seed != nil {
		job.Seed = *req.Seed
	}
	if job.Suffix != nil && *job.Suffix == "" {
		job.Suffix = nil
	}
	if job.ValidationFile != nil && *job.ValidationFile == "" {
		job.ValidationFile = nil
	}
	// Fill the defaults in, so the job shows what it will run with.
	d := train.Defaults()
	hp := &job.Hyperparameters
	if hp.NEpochs == 0 {
		hp.NEpochs = d.Epochs
	}
	if hp.BatchSize == 0 {
		hp.BatchSize = d.BatchSize
	}
	if hp.LearningRateMultiplier == 0 {
		hp.LearningRateMultiplier = 1
	}
	if job.LoRA.R == 0 {
		job.LoRA.R = d.Rank
	}
	if job.LoRA.LoRAAlpha == 0 {
		job.LoRA.LoRAAlpha = 2 * float64(job.LoRA.R)
	}
	if len(job.LoRA.TargetModules) == 0 {
		job.LoRA.TargetModules = d.Targets
	}
	if err := jobOptions(&job).Validate(); err != nil {
		writeError(w, invalid("hyperparameters", "%v", err))
		return
	}
	created, err := s.jobs.Create(job)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("server: fine-tuning job created", "job", created.ID, "training_file", created.TrainingFile)
	writeJSON(w, http.StatusOK, created)
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	jobs := s.jobs.List()
	writePage(w, r, jobs, func(j FineTuningJob) string { return j.ID })
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	job, err := s.jobs.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, jobsError(err, "fine-tuning job"))
		return
	}
	writeJSON(w, http.StatusOK, job)
}

func (s *Server) handleJobEvents(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	evs, err := s.jobs.Events(r.PathValue("id"))
	if err != nil {
		writeError(w, jobsError(err, "fine-tuning job"))
		return
	}
	writePage(w, r, evs, func(e JobEvent) string { return e.ID })
}

func (s *Server) handleJobCheckpoints(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	cps, err := s.jobs.Checkpoints(r.PathValue("id"))
	if err != nil {
		writeError(w, jobsError(err, "fine-tuning job"))
		return
	}
	writePage(w, r, cps, func(c JobCheckpoint) string { return c.ID })
}

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	if !s.needJobs(w) {
		return
	}
	job, err := s.jobs.Cancel(r.PathValue("id"))
	if err != nil {
		writeError(w, jobsError(err, "fine-tuning job"))
		return
	}
	s.log.Info("server: fine-tuning job cancelled", "job", job.ID)
	writeJSON(w, http.StatusOK, job)
}

// writePage writes a cursor page of items (newest first) as OpenAI
// lists them: the items after the one whose id is the "after" query
// parameter, at most "limit" of them (default 20, at most 1000).
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T, id func(T) string) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, invalid("limit", "limit must be a positive integer, not %q", v))
			return
		}
		limit = min(n, 1000)
	}
	if after := r.URL.Query().Get("after"); after != "" {
		for i, it := range items {
			if id(it) == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": items, "has_more": more})
}
