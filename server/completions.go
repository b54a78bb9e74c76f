package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/switchyard-ai/switchyard/engine"
)

// defaultCompletionTokens is max_tokens of a completion that gives none,
// as in the OpenAI API.
const defaultCompletionTokens = 16

// maxGenerations bounds the generations of one completion request:
// prompts times n.
const maxGenerations = 64

// newID returns a response id with prefix, such as "cmpl-3f2a...".
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// completionChoice is one choice of a completion response or chunk.
type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
	TokenIDs     []int               `json:"token_ids,omitempty"` // Switchyard's extension: the generated ids
}

// completionLogprobs is the logprobs object of the legacy completions
// API.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// completionResponse is a completion response or stream chunk.
type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

// completionJobs validates a completion request and makes its jobs; the
// prompts' texts are returned for echo.
func (s *Server) completionJobs(ctx context.Context, req *completionRequest) (jobs []job, texts []string, n int, err error) {
	var params engine.SamplingParams
	params, n, err = req.params()
	if err != nil {
		return nil, nil, 0, err
	}
	if req.Prompt == nil {
		return nil, nil, 0, invalid("prompt", "prompt is required")
	}
	if req.Suffix != nil && *req.Suffix != "" {
		return nil, nil, 0, invalid("suffix", "suffix is not supported")
	}
	if req.BestOf != nil && *req.BestOf != n {
		return nil, nil, 0, invalid("best_of", "best_of is not supported (other than equal to n)")
	}
	lp := 0
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > maxLogprobs {
			return nil, nil, 0, invalid("logprobs", "logprobs must be between 0 and %d, not %d", maxLogprobs, *req.Logprobs)
		}
		lp = max(*req.Logprobs, 1) // the chosen token's log-probability needs one
	}
	if count := len(req.Prompt.ids) + len(req.Prompt.texts); count*n > maxGenerations {
		return nil, nil, 0, invalid("n", "%d prompts times n=%d is more than %d generations", count, n, maxGenerations)
	}
	mref, err := s.lookupModel(ctx, req.Model)
	if err != nil {
		return nil, nil, 0, err
	}
	prompts := req.Prompt.ids
	texts = req.Prompt.texts
	if texts != nil {
		if s.cfg.Tokenizer == nil {
			return nil, nil, 0, invalid("prompt", "the model has no tokenizer: send the prompt as token ids")
		}
		prompts = make([][]int, len(texts))
		for i, t := range texts {
			prompts[i] = s.cfg.Tokenizer.Encode(t, true)
		}
	} else if s.cfg.Tokenizer != nil {
		texts = make([]string, len(prompts))
		for i, p := range prompts {
			texts[i] = s.cfg.Tokenizer.Decode(p)
		}
	}
	for _, p := range prompts {
		maxTokens, err := s.checkPrompt(p, req.MaxTokens, defaultCompletionTokens, "prompt")
		if err != nil {
			return nil, nil, 0, err
		}
		for c := range n {
			jp := params
			jp.MaxTokens = maxTokens
			jp.Seed += uint64(c)
			jobs = append(jobs, job{model: mref, prompt: p, params: jp, logprobs: lp, ignoreEOS: req.IgnoreEOS})
		}
	}
	return jobs, texts, n, nil
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	jobs, texts, n, err := s.completionJobs(r.Context(), &req)
	if err != nil {
		writeError(w, err)
		return
	}
	echo := func(i int) string {
		if req.Echo && texts != nil {
			return texts[i/n]
		}
		return ""
	}
	resp := completionResponse{ID: newID("cmpl-"), Object: "text_completion", Created: time.Now().Unix(), Model: req.Model}
	if req.Stream {
		s.streamCompletion(w, r, &req, jobs, resp, echo)
		return
	}
	states, err := s.collect(r.Context(), jobs)
	if err != nil {
		writeError(w, err)
		return
	}
	var u usage
	for i, c := range states {
		u.add(c.prompt, c.completion)
		finish := c.finish
		ch := completionChoice{Index: i, Text: echo(i) + c.text.String(), FinishReason: &finish, TokenIDs: c.tokens}
		if req.Logprobs != nil {
			ch.Logprobs = s.completionLogprobs(c.tokens, c.logprobs, *req.Logprobs, len(echo(i)))
		}
		resp.Choices = append(resp.Choices, ch)
	}
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
}

// streamCompletion answers a completion request with server-sent events.
func (s *Server) streamCompletion(w http.ResponseWriter, r *http.Request, req *completionRequest, jobs []job,
	resp completionResponse, echo func(int) string) {
	begin := time.Now()
	events, err := s.start(r.Context(), jobs)
	if err != nil {
		writeError(w, err)
		return
	}
	sse, err := newSSE(w)
	if err != nil {
		writeError(w, err)
		return
	}
	states := make([]*choiceState, len(jobs))
	offsets := make([]int, len(jobs))
	for i := range states {
		states[i] = &choiceState{}
		if e := echo(i); e != "" {
			chunk := resp
			chunk.Choices = []completionChoice{{Index: i, Text: e}}
			sse.send(chunk)
			offsets[i] = len(e)
		}
	}
	var u usage
	for ev := range events {
		if ev.Err != nil {
			sse.fail(ev.Err)
			return
		}
		c := states[ev.index]
		s.observe(c, &ev.Event, begin)
		c.add(&ev.Event)
		chunk := resp
		ch := completionChoice{Index: ev.index, Text: ev.Text, TokenIDs: ev.Tokens}
		if req.Logprobs != nil && len(ev.Logprobs) > 0 {
			ch.Logprobs = s.completionLogprobs(ev.Tokens, ev.Logprobs, *req.Logprobs, offsets[ev.index])
		}
		offsets[ev.index] += len(ev.Text)
		if ev.Done {
			u.add(ev.PromptTokens, ev.CompletionTokens)
			finish := ev.FinishReason
			ch.FinishReason = &finish
		}
		if ch.Text == "" && len(ch.TokenIDs) == 0 && ch.FinishReason == nil {
			continue
		}
		chunk.Choices = []completionChoice{ch}
		if err := sse.send(chunk); err != nil {
			return // the client is gone; leaving cancels the generations
		}
	}
	var usageChunk any
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		chunk := resp
		chunk.Choices = []completionChoice{}
		chunk.Usage = &u
		usageChunk = chunk
	}
	sse.finish(r.Context(), states, usageChunk)
}

// completionLogprobs builds the legacy logprobs object; offset is the
// text offset of the first token.
func (s *Server) completionLogprobs(ids []int, lps []engine.TokenLogprobs, top, offset int) *completionLogprobs {
	out := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	for i, lp := range lps {
		id := lp.ID
		if i < len(ids) && lp.ID == 0 {
			id = ids[i]
		}
		text := s.tokenText(id)
		out.Tokens = append(out.Tokens, text)
		out.TokenLogprobs = append(out.TokenLogprobs, lp.Logprob)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(text)
		m := map[string]float32{}
		for k, t := range lp.Top {
			if k >= top {
				break
			}
			m[s.tokenText(t.ID)] = t.Logprob
		}
		out.TopLogprobs = append(out.TopLogprobs, m)
	}
	return out
}
