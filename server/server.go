package server

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// DefaultMaxRequestBytes bounds a request body when Config.MaxRequestBytes
// is 0.
const DefaultMaxRequestBytes = 8 << 20

// maxUploadBytes bounds a multipart adapter upload.
const maxUploadBytes = 4 << 30

// Config is what a Server serves and how.
type Config struct {
	// Model is the base model.
	Model *model.Model
	// Tokenizer is the model's tokenizer; nil serves token-id prompts only.
	Tokenizer *tokenizer.Tokenizer
	// BaseName is the base model's name in the API ("model": BaseName).
	BaseName string
	// Registry names and stores the adapters; nil serves the base only.
	Registry *adapters.Registry
	// Cache makes registered adapters compute-ready; required with Registry.
	Cache *adapters.Cache
	// Scheduler runs the generations; its Run must be running.
	Scheduler *engine.Scheduler
	// AllowOnDemand lets a request's model be an adapter URI, registered
	// and loaded on first use. Off, such a request is refused with 403.
	AllowOnDemand bool
	// MaxRequestBytes bounds a request body (413 beyond it); 0 means
	// DefaultMaxRequestBytes. Adapter uploads are bounded separately.
	MaxRequestBytes int64
	// Logger receives structured request logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the server's Prometheus metrics; nil registers
	// them nowhere. /metrics serves Gatherer when it is one, else the
	// metrics of this Server only.
	Metrics prometheus.Registerer

	// JobsDir, when set, enables the fine-tuning API (/v1/files and
	// /v1/fine_tuning/jobs): uploaded files, job records, checkpoints and
	// trained adapters are kept there, and the jobs an earlier server left
	// queued or running run again. It needs Tokenizer and Registry; a
	// finished job's adapter is registered and served at once. Call Close
	// to stop the jobs.
	JobsDir string
	// FinetuneWorkers bounds the fine-tuning jobs that train at once; 0
	// means 1.
	FinetuneWorkers int
	// FinetuneThreads is each fine-tuning job's thread count; 0 means 1,
	// which leaves the other cores to serving.
	FinetuneThreads int
}

// Server is the HTTP API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	met     *metrics
	gather  prometheus.Gatherer
	tmpl    *chatTemplate
	created int64 // Unix time the server started, for /v1/models

	ready    atomic.Bool // /readyz answers 200
	draining atomic.Bool // new generation requests get 503

	onDemandMu sync.Mutex // serialises on-demand registrations

	chainsMu sync.RWMutex // guards chains
	chains   map[string]*chainSpec

	jobs *Jobs // fine-tuning; nil when Config.JobsDir is empty
}

// New returns a Server for cfg. It is ready (/readyz 200) at once; call
// Drain when shutting down.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil {
		return nil, errors.New("server: Config.Model is nil")
	}
	if cfg.Scheduler == nil {
		return nil, errors.New("server: Config.Scheduler is nil")
	}
	if cfg.Registry != nil && cfg.Cache == nil {
		return nil, errors.New("server: Config.Registry needs Config.Cache")
	}
	if cfg.BaseName == "" {
		return nil, errors.New("server: Config.BaseName is empty")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, created: time.Now().Unix(), chains: map[string]*chainSpec{}}
	reg := cfg.Metrics
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gather = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		s.gather = g
	}
	met, err := newMetrics(reg, cfg.Scheduler)
	if err != nil {
		return nil, err
	}
	s.met = met
	if cfg.Tokenizer != nil {
		src := cfg.Tokenizer.ChatTemplate()
		if src == "" && cfg.Model.GGUF != nil {
			src, _ = cfg.Model.GGUF.String("tokenizer.chat_template")
		}
		if src != "" {
			t, err := newChatTemplate(src, cfg.Tokenizer)
			if err != nil {
				// A template the engine cannot run falls back to the plain
				// format rather than making the model unservable.
				s.log.Warn("server: chat template does not compile; using the plain format", "err", err)
			} else {
				s.tmpl = t
			}
		}
	}
	if cfg.JobsDir != "" {
		if cfg.Tokenizer == nil || cfg.Registry == nil {
			return nil, errors.New("server: Config.JobsDir needs Config.Tokenizer and Config.Registry")
		}
		s.jobs, err = OpenJobs(JobsConfig{Dir: cfg.JobsDir, Model: cfg.Model, Tokenizer: cfg.Tokenizer, BaseName: cfg.BaseName,
			Registry: cfg.Registry, Workers: cfg.FinetuneWorkers, Threads: cfg.FinetuneThreads, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
	}
	s.ready.Store(true)
	return s, nil
}

// Close stops the fine-tuning jobs; running ones resume when a server
// opens the same jobs directory again. Generation is not affected.
func (s *Server) Close() error {
	if s.jobs != nil {
		return s.jobs.Close()
	}
	return nil
}

// Drain marks the server as shutting down: /readyz answers 503 and new
// generation requests are refused with 503, while requests in flight go
// on. Stop the listener with http.Server.Shutdown afterwards.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.ready.Store(false)
}
