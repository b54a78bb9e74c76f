package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// chatTemplate is a model's compiled Jinja chat template.
type chatTemplate struct {
	t        *jinja.Template
	bos, eos string // the texts of the BOS and EOS tokens, for bos_token and eos_token
}

// newChatTemplate compiles a tokenizer's chat template.
func newChatTemplate(src string, tok *tokenizer.Tokenizer) (*chatTemplate, error) {
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("server: chat template: %w", err)
	}
	ct := &chatTemplate{t: t}
	if id := tok.BOS(); id >= 0 {
		ct.bos = tok.TokenString(id)
	}
	if id := tok.EOS(); id >= 0 {
		ct.eos = tok.TokenString(id)
	}
	return ct, nil
}

// message is a chat message as templates see it.
type message struct {
	Role, Content string
}

// render renders messages with add_generation_prompt set, as Hugging
// Face's apply_chat_template does.
func (ct *chatTemplate) render(msgs []message) (string, error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	out, err := ct.t.Render(map[string]any{
		"messages":              list,
		"add_generation_prompt": true,
		"bos_token":             ct.bos,
		"eos_token":             ct.eos,
	})
	if err != nil {
		return "", fmt.Errorf("server: chat template: %w", err)
	}
	return out, nil
}

// renderPlain is the chat format of models without a template: one
// "role: content" line per message, then "assistant:".
func renderPlain(msgs []message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Role)
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	b.WriteString("assistant:")
	return b.String()
}

// chatPrompt renders and tokenizes a chat request's messages.
func (s *Server) chatPrompt(req *chatRequest) ([]int, error) {
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "messages must hold at least one message")
	}
	if s.cfg.Tokenizer == nil {
		return nil, invalid("model", "the model has no tokenizer, so it cannot chat; use /v1/completions with token ids")
	}
	msgs := make([]message, len(req.Messages))
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "role %q is not one of system, developer, user, assistant, tool", m.Role)
		}
		text, err := m.text(i)
		if err != nil {
			return nil, err
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = message{Role: role, Content: text}
	}
	if s.tmpl == nil {
		return s.cfg.Tokenizer.Encode(renderPlain(msgs), true), nil
	}
	text, err := s.tmpl.render(msgs)
	if err != nil {
		// Templates raise exceptions for conversations they refuse
		// (roles out of order, for one): the client's mistake.
		return nil, invalid("messages", "%v", err)
	}
	// The template writes the special tokens itself.
	return s.cfg.Tokenizer.Encode(text, false), nil
}

// chatMessageOut is the assistant message of a chat response.
type chatMessageOut struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatDelta is the delta of a chat stream chunk.
type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// chatLogprob is one entry of a chat choice's logprobs.content.
type chatLogprob struct {
	Token       string        `json:"token"`
	Logprob     float32       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []chatLogprob `json:"top_logprobs"`
}

// chatLogprobs is a chat choice's logprobs.
type chatLogprobs struct {
	Content []chatLogprob `json:"content"`
}

// chatChoice is one choice of a chat response or chunk.
type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     *chatLogprobs   `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
	TokenIDs     []int           `json:"token_ids,omitempty"` // Switchyard's extension: the generated ids
}

// chatResponse is a chat response or stream chunk.
type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

// chatJobs validates a chat request and makes its jobs.
func (s *Server) chatJobs(ctx context.Context, req *chatRequest) ([]job, error) {
	params, n, err := req.params()
	if err != nil {
		return nil, err
	}
	maxTokens := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		if *req.MaxCompletionTokens < 1 {
			return nil, invalid("max_completion_tokens", "max_completion_tokens must be at least 1, not %d", *req.MaxCompletionTokens)
		}
		maxTokens = req.MaxCompletionTokens
	}
	lp := 0
	if req.TopLogprobs != nil {
		if *req.TopLogprobs < 0 || *req.TopLogprobs > maxLogprobs {
			return nil, invalid("top_logprobs", "top_logprobs must be between 0 and %d, not %d", maxLogprobs, *req.TopLogprobs)
		}
		if !req.Logprobs {
			return nil, invalid("top_logprobs", "top_logprobs needs logprobs: true")
		}
	}
	if req.Logprobs {
		lp = 1
		if req.TopLogprobs != nil {
			lp = max(lp, *req.TopLogprobs)
		}
	}
	mref, err := s.lookupModel(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	prompt, err := s.chatPrompt(req)
	if err != nil {
		return nil, err
	}
	mt, err := s.checkPrompt(prompt, maxTokens, 0, "messages")
	if err != nil {
		return nil, err
	}
	jobs := make([]job, n)
	for c := range n {
		jp := params
		jp.MaxTokens = mt
		jp.Seed += uint64(c)
		jobs[c] = job{model: mref, prompt: prompt, params: jp, logprobs: lp, ignoreEOS: req.IgnoreEOS}
	}
	return jobs, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	jobs, err := s.chatJobs(r.Context(), &req)
	if err != nil {
		writeError(w, err)
		return
	}
	top := 0
	if req.TopLogprobs != nil {
		top = *req.TopLogprobs
	}
	resp := chatResponse{ID: newID("chatcmpl-"), Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model}
	if req.Stream {
		resp.Object = "chat.completion.chunk"
		s.streamChat(w, r, &req, jobs, resp, top)
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
		ch := chatChoice{Index: i, Message: &chatMessageOut{Role: "assistant", Content: c.text.String()}, FinishReason: &finish, TokenIDs: c.tokens}
		if req.Logprobs {
			ch.Logprobs = s.chatLogprobs(c.logprobs, top)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
}

// streamChat answers a chat request with server-sent events.
func (s *Server) streamChat(w http.ResponseWriter, r *http.Request, req *chatRequest, jobs []job, resp chatResponse, top int) {
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
	empty := ""
	for i := range states {
		states[i] = &choiceState{}
		chunk := resp
		chunk.Choices = []chatChoice{{Index: i, Delta: &chatDelta{Role: "assistant", Content: &empty}}}
		sse.send(chunk)
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
		text := ev.Text
		ch := chatChoice{Index: ev.index, Delta: &chatDelta{}, TokenIDs: ev.Tokens}
		if text != "" {
			ch.Delta.Content = &text
		}
		if req.Logprobs && len(ev.Logprobs) > 0 {
			ch.Logprobs = s.chatLogprobs(ev.Logprobs, top)
		}
		if ev.Done {
			u.add(ev.PromptTokens, ev.CompletionTokens)
			finish := ev.FinishReason
			ch.FinishReason = &finish
		}
		if text == "" && len(ch.TokenIDs) == 0 && ch.FinishReason == nil {
			continue
		}
		chunk := resp
		chunk.Choices = []chatChoice{ch}
		if err := sse.send(chunk); err != nil {
			return
		}
	}
	var usageChunk any
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		chunk := resp
		chunk.Choices = []chatChoice{}
		chunk.Usage = &u
		usageChunk = chunk
	}
	sse.finish(r.Context(), states, usageChunk)
}

// chatLogprobs builds a chat choice's logprobs with top alternatives per
// token.
func (s *Server) chatLogprobs(lps []engine.TokenLogprobs, top int) *chatLogprobs {
	out := &chatLogprobs{Content: []chatLogprob{}}
	for _, lp := range lps {
		e := s.chatLogprob(lp.ID, lp.Logprob)
		e.TopLogprobs = []chatLogprob{}
		for k, t := range lp.Top {
			if k >= top {
				break
			}
			e.TopLogprobs = append(e.TopLogprobs, s.chatLogprob(t.ID, t.Logprob))
		}
		out.Content = append(out.Content, e)
	}
	return out
}

func (s *Server) chatLogprob(id int, lp float32) chatLogprob {
	text := s.tokenText(id)
	b := make([]int, len(text))
	for i := range len(text) {
		b[i] = int(text[i])
	}
	return chatLogprob{Token: text, Logprob: lp, Bytes: b}
}
