package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// Engine generates text with one base model.
type Engine struct {
	Model     *model.Model
	Tokenizer *tokenizer.Tokenizer // nil: results carry ids but no text, and stop strings are refused
}

// Request is one generation: a prompt, the adapter to run it on (nil for
// the base model) and its decoding settings.
type Request struct {
	Prompt    []int
	Adapter   *lora.Adapter
	Params    SamplingParams
	IgnoreEOS bool // generate MaxTokens tokens even past an end-of-sequence token

	// Logprobs is the number of most likely alternatives to report with
	// each generated token's log-probability; 0 reports none. Only the
	// Scheduler reports log-probabilities.
	Logprobs int

	// OnDone, if set, is called once when the Scheduler is done with the
	// request, e.g. to release the adapter's cache handle. Generate does
	// not call it.
	OnDone func()
}

// Finish reasons, as the OpenAI API names them.
const (
	FinishStop   = "stop"   // an end-of-sequence token or a stop string
	FinishLength = "length" // MaxTokens reached, or the context is full
)

// Result is what a Request produced.
type Result struct {
	PromptIDs    []int
	Generated    []int     // sampled ids, an end-of-sequence token included
	Text         string    // decoded Generated, cut before any stop string
	LastLogits   []float32 // raw logits at the last prompt position
	FinishReason string
}

// genSeq is a request in flight.
type genSeq struct {
	req     *Request
	res     *Result
	cache   *model.Cache
	sampler *Sampler
	decoder *tokenizer.Decoder
	stops   *StopMatcher
	next    int // token to feed at the next step
	done    bool
}

// Generate runs all requests together as one batch until each is
// finished, and returns their results in the same order. Every step
// (the prefill of all prompts, then each decode step) is one pass of the
// model over the tokens of every unfinished request.
func (e *Engine) Generate(ctx context.Context, reqs []Request) ([]Result, error) {
	cfg := &e.Model.Config
	results := make([]Result, len(reqs))
	seqs := make([]*genSeq, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		if len(r.Prompt) == 0 {
			return nil, fmt.Errorf("engine: request %d has an empty prompt", i)
		}
		if err := r.Params.Validate(); err != nil {
			return nil, fmt.Errorf("engine: request %d: %w", i, err)
		}
		if len(r.Params.Stop) > 0 && e.Tokenizer == nil {
			return nil, fmt.Errorf("engine: request %d has stop strings but the model has no tokenizer", i)
		}
		for _, id := range r.Prompt {
			if id < 0 || id >= cfg.Vocab {
				return nil, fmt.Errorf("engine: request %d: prompt token id %d is outside the vocabulary [0, %d)", i, id, cfg.Vocab)
			}
		}
		if cfg.MaxPositions > 0 && len(r.Prompt) > cfg.MaxPositions {
			return nil, fmt.Errorf("engine: request %d: prompt of %d tokens is longer than the context (%d)", i, len(r.Prompt), cfg.MaxPositions)
		}
		capacity := len(r.Prompt) + max(r.Params.MaxTokens, 0)
		s := &genSeq{req: r, res: &results[i], cache: e.Model.NewCache(capacity), sampler: NewSampler(r.Params, r.Prompt),
			stops: NewStopMatcher(r.Params.Stop)}
		if e.Tokenizer != nil {
			s.decoder = e.Tokenizer.NewDecoder()
		}
		s.res.PromptIDs = slices.Clone(r.Prompt)
		seqs[i] = s
	}

	batch := lora.NewBatch(e.Model.Pool())
	var active []*genSeq
	var steps []model.Seq
	prefill := true
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		active, steps = active[:0], steps[:0]
		batch.Reset()
		for _, s := range seqs {
			if s.done {
				continue
			}
			tokens := []int{s.next}
			if prefill {
				tokens = s.req.Prompt
			}
			active = append(active, s)
			steps = append(steps, model.Seq{Cache: s.cache, Tokens: tokens})
			batch.Add(s.req.Adapter, len(tokens))
		}
		if len(active) == 0 {
			return results, nil
		}
		logits, err := e.Model.Forward(steps, batch)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		for i, s := range active {
			if prefill {
				s.res.LastLogits = slices.Clone(logits[i])
			}
			e.advance(s, logits[i])
		}
		prefill = false
	}
}

// advance samples a sequence's next token from its logits and decides
// whether it is finished.
func (e *Engine) advance(s *genSeq, logits []float32) {
	if s.req.Params.MaxTokens <= len(s.res.Generated) {
		e.finish(s, FinishLength)
		return
	}
	id := s.sampler.Sample(logits)
	s.res.Generated = append(s.res.Generated, id)
	s.next = id
	if !s.req.IgnoreEOS && slices.Contains(e.Model.Config.EOS, id) {
		e.finish(s, FinishStop)
		return
	}
	if s.decoder != nil {
		emit, stopped := s.stops.Push(s.decoder.Next(id))
		s.res.Text += emit
		if stopped {
			s.done = true
			s.res.FinishReason = FinishStop
			return
		}
	}
	if len(s.res.Generated) >= s.req.Params.MaxTokens {
		e.finish(s, FinishLength)
	} else if s.cache.Len+1 > s.cache.Cap {
		e.finish(s, FinishLength)
	}
}

func (e *Engine) finish(s *genSeq, reason string) {
	s.done = true
	s.res.FinishReason = reason
	if s.decoder != nil {
		emit, _ := s.stops.Push(s.decoder.Flush())
		s.res.Text += emit + s.stops.Flush()
	}
}
