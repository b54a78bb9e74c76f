package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/adapters/store"
	"github.com/switchyard-ai/switchyard/engine"
)

// modelRef is a request's model, resolved: the base, or an adapter
// reference for the cache.
type modelRef struct {
	ref   string // "" for the base model; else "name" or "name@N"
	label string // the metrics label: the base or adapter name
}

// lookupModel resolves a request's model without loading anything,
// except that an adapter URI allowed on demand is registered.
func (s *Server) lookupModel(ctx context.Context, name string) (modelRef, error) {
	if name == s.cfg.BaseName {
		return modelRef{label: name}, nil
	}
	notFound := func() error {
		return &apiError{Status: http.StatusNotFound, Type: typeNotFound, Param: "model", Code: "model_not_found",
			Message: fmt.Sprintf("the model %q does not exist: it is neither the base model %q nor a registered adapter (GET /v1/models lists them)", name, s.cfg.BaseName)}
	}
	if !store.IsRegistryName(name) {
		if !s.cfg.AllowOnDemand {
			return modelRef{}, &apiError{Status: http.StatusForbidden, Type: typePermission, Param: "model", Code: "on_demand_disabled",
				Message: fmt.Sprintf("the model %q is not a registered adapter, and loading adapters from URIs on demand is disabled on this server; register it first (POST /v1/adapters)", name)}
		}
		if s.cfg.Registry == nil {
			return modelRef{}, notFound()
		}
		return s.registerOnDemand(ctx, name)
	}
	if s.cfg.Registry == nil {
		return modelRef{}, notFound()
	}
	ref, err := adapters.ParseRef(name)
	if err != nil {
		return modelRef{}, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: "model", Code: "invalid_model",
			Message: fmt.Sprintf("the model %q is not a valid adapter name: %v", name, err)}
	}
	if _, err := s.cfg.Registry.Resolve(name); err != nil {
		if errors.Is(err, adapters.ErrNotFound) {
			return modelRef{}, notFound()
		}
		return modelRef{}, err
	}
	return modelRef{ref: name, label: ref.Name}, nil
}

// registerOnDemand registers the adapter at uri under a name derived
// from the URI, once, and returns its reference.
func (s *Server) registerOnDemand(ctx context.Context, uri string) (modelRef, error) {
	sum := sha256.Sum256([]byte(uri))
	name := "uri-" + hex.EncodeToString(sum[:8])
	s.onDemandMu.Lock()
	defer s.onDemandMu.Unlock()
	if _, err := s.cfg.Registry.Resolve(name); err == nil {
		return modelRef{ref: name, label: name}, nil
	}
	s.log.Info("server: registering adapter on demand", "uri", uri, "name", name)
	if _, err := s.cfg.Registry.Register(ctx, name, uri); err != nil {
		return modelRef{}, adapterError(err, "model")
	}
	return modelRef{ref: name, label: name}, nil
}

// adapterError maps an adapters or store error to an API error.
func adapterError(err error, param string) error {
	var p any
	if param != "" {
		p = param
	}
	switch {
	case errors.Is(err, adapters.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Type: typeNotFound, Param: p, Code: "adapter_not_found", Message: err.Error()}
	case errors.Is(err, adapters.ErrBadName), errors.Is(err, store.ErrBadName):
		return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: p, Code: "invalid_adapter_name", Message: err.Error()}
	case errors.Is(err, adapters.ErrMismatch), errors.Is(err, adapters.ErrInvalid):
		return &apiError{Status: http.StatusUnprocessableEntity, Type: typeInvalid, Param: p, Code: "invalid_adapter", Message: err.Error()}
	case errors.Is(err, adapters.ErrNotPinned):
		return &apiError{Status: http.StatusConflict, Type: typeInvalid, Param: p, Code: "not_pinned", Message: err.Error()}
	case errors.Is(err, adapters.ErrBudget):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeOverloaded, Param: p, Code: "adapter_budget", RetryAfter: "1", Message: err.Error()}
	case errors.Is(err, adapters.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeOverloaded, Param: p, Code: "shutting_down", RetryAfter: "5", Message: err.Error()}
	case errors.Is(err, store.ErrUnreachable):
		return &apiError{Status: http.StatusBadGateway, Type: typeServer, Param: p, Code: "store_unreachable", Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: "cancelled", Message: err.Error()}
	}
	return err
}

// job is one generation of a request: one choice of one prompt.
type job struct {
	model     modelRef
	prompt    []int
	params    engine.SamplingParams
	logprobs  int // top-N log-probabilities per token; 0 for none
	ignoreEOS bool
}

// choiceEvent is an engine event of the job at index.
type choiceEvent struct {
	index int
	engine.Event
}

// start acquires each job's adapter and submits it to the scheduler, and
// returns their events merged in one channel, which is closed once every
// job is done or ctx ends. When any job cannot start, the ones started
// are cancelled and the error is returned.
func (s *Server) start(ctx context.Context, jobs []job) (<-chan choiceEvent, error) {
	if s.draining.Load() {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Type: typeOverloaded, Code: "shutting_down", RetryAfter: "5",
			Message: "the server is shutting down"}
	}
	ctx, cancel := context.WithCancel(ctx)
	streams := make([]*engine.Stream, len(jobs))
	for i, j := range jobs {
		st, err := s.submit(ctx, j)
		if err != nil {
			cancel()
			return nil, err
		}
		streams[i] = st
	}
	out := make(chan choiceEvent)
	var wg sync.WaitGroup
	for i, st := range streams {
		wg.Go(func() {
			for {
				select {
				case ev, ok := <-st.Events():
					if !ok {
						return
					}
					select {
					case out <- choiceEvent{i, ev}:
					case <-ctx.Done():
						return
					}
					if ev.Done || ev.Err != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

// submit starts one job: it waits for the job's adapter in this goroutine
// (the batch goes on meanwhile), then hands the request to the scheduler,
// which releases the adapter when the request leaves.
func (s *Server) submit(ctx context.Context, j job) (*engine.Stream, error) {
	req := &engine.Request{Prompt: j.prompt, Params: j.params, IgnoreEOS: j.ignoreEOS, Logprobs: j.logprobs}
	release := func() {}
	if j.model.ref != "" {
		h, err := s.cfg.Cache.Acquire(ctx, j.model.ref)
		if err != nil {
			return nil, adapterError(err, "model")
		}
		req.Adapter = h.Adapter()
		var once sync.Once
		release = func() { once.Do(h.Release) }
	}
	req.OnDone = release
	st, err := s.cfg.Scheduler.Submit(ctx, req)
	if err != nil {
		release()
		if errors.Is(err, engine.ErrQueueFull) {
			s.met.rejected.Inc()
			return nil, &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "queue_full", RetryAfter: "1",
				Message: "the server is at capacity: its request queue is full; retry later"}
		}
		if errors.Is(err, engine.ErrStopped) {
			return nil, &apiError{Status: http.StatusServiceUnavailable, Type: typeOverloaded, Code: "shutting_down", RetryAfter: "5",
				Message: "the server is shutting down"}
		}
		var pe *engine.ParamError
		if errors.As(err, &pe) {
			return nil, invalid(pe.Param, "%s %s", pe.Param, pe.Reason)
		}
		return nil, invalid("", "%v", err)
	}
	s.met.adapterRequests.WithLabelValues(j.model.label).Inc()
	return st, nil
}

// choiceState accumulates one choice's output.
type choiceState struct {
	text       strings.Builder
	tokens     []int
	logprobs   []engine.TokenLogprobs
	finish     string
	prompt     int
	completion int
	done       bool
	last       time.Time // when the previous tokens came, for inter-token latency
}

// observe records an event's timing in the metrics: the time to the first
// token from begin, or the time since the previous tokens.
func (s *Server) observe(c *choiceState, ev *engine.Event, begin time.Time) {
	now := time.Now()
	if len(ev.Tokens) > 0 {
		if c.last.IsZero() {
			s.met.ttft.Observe(now.Sub(begin).Seconds())
		} else {
			s.met.itl.Observe(now.Sub(c.last).Seconds() / float64(len(ev.Tokens)))
		}
		c.last = now
	}
	if ev.Done {
		s.met.tokens.WithLabelValues("prompt").Add(float64(ev.PromptTokens))
		s.met.tokens.WithLabelValues("completion").Add(float64(ev.CompletionTokens))
	}
}

// eventError turns an engine event's error into an API error.
func eventError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: "cancelled", Message: "the request was cancelled: " + err.Error()}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "generation_failed", Message: err.Error()}
}

// collect runs jobs to the end and returns each one's output.
func (s *Server) collect(ctx context.Context, jobs []job) ([]*choiceState, error) {
	begin := time.Now()
	events, err := s.start(ctx, jobs)
	if err != nil {
		return nil, err
	}
	states := make([]*choiceState, len(jobs))
	for i := range states {
		states[i] = &choiceState{}
	}
	for ev := range events {
		c := states[ev.index]
		if ev.Err != nil {
			return nil, eventError(ev.Err)
		}
		s.observe(c, &ev.Event, begin)
		c.add(&ev.Event)
	}
	for _, c := range states {
		if !c.done {
			if err := ctx.Err(); err != nil {
				return nil, eventError(err)
			}
			return nil, eventError(errors.New("the generation ended without a result"))
		}
	}
	return states, nil
}

// add appends an event to the choice.
func (c *choiceState) add(ev *engine.Event) {
	c.text.WriteString(ev.Text)
	c.tokens = append(c.tokens, ev.Tokens...)
	c.logprobs = append(c.logprobs, ev.Logprobs...)
	if ev.Done {
		c.done = true
		c.finish = ev.FinishReason
		c.prompt = ev.PromptTokens
		c.completion = ev.CompletionTokens
	}
}

// checkPrompt checks token ids against the vocabulary and the context
// length, and returns the max_tokens to use: the request's, or def, or
// what is left of the context when def is 0.
func (s *Server) checkPrompt(ids []int, maxTokens *int, def int, param string) (int, error) {
	cfg := &s.cfg.Model.Config
	if len(ids) == 0 {
		return 0, invalid(param, "the prompt is empty")
	}
	for _, id := range ids {
		if id < 0 || id >= cfg.Vocab {
			return 0, invalid(param, "token id %d is outside the vocabulary [0, %d)", id, cfg.Vocab)
		}
	}
	ctxLen := cfg.MaxPositions
	if ctxLen <= 0 {
		ctxLen = 1 << 30
	}
	n := def
	if maxTokens != nil {
		n = *maxTokens
	}
	if n == 0 {
		n = ctxLen - len(ids)
	}
	if len(ids)+n > ctxLen || len(ids) >= ctxLen {
		return 0, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: param, Code: "context_length_exceeded",
			Message: fmt.Sprintf("this model's maximum context length is %d tokens, but %d were requested (%d in the prompt, %d for the completion); shorten the prompt or lower max_tokens",
				ctxLen, len(ids)+n, len(ids), n)}
	}
	return n, nil
}

// tokenText is the text of one token, for log-probabilities.
func (s *Server) tokenText(id int) string {
	if s.cfg.Tokenizer == nil {
		return fmt.Sprintf("<%d>", id)
	}
	return s.cfg.Tokenizer.Decode([]int{id})
}
