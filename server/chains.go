package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ardanlabs/jinja"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
)

// Chain limits.
const (
	maxChainSteps        = 32
	defaultChainMaxToken = 256
)

// chainStep is one step of a chain: a model (the base or an adapter) and
// a prompt template rendered with the chain's input and earlier outputs.
type chainStep struct {
	Name        string     `json:"name"`
	Model       string     `json:"model"`
	Prompt      string     `json:"prompt"`               // Jinja: {{ input }}, {{ steps.NAME }}, {{ previous }}
	DependsOn   []string   `json:"depends_on,omitempty"` // steps it waits for; absent: the step before it
	MaxTokens   *int       `json:"max_tokens,omitempty"`
	Temperature *float32   `json:"temperature,omitempty"` // absent: 0, greedy
	TopP        *float32   `json:"top_p,omitempty"`
	TopK        *int       `json:"top_k,omitempty"`
	MinP        *float32   `json:"min_p,omitempty"`
	Stop        stringList `json:"stop,omitempty"`
	Seed        *int64     `json:"seed,omitempty"`
}

// chainSpec is a chain's definition: its steps, the last of which is the
// chain's output.
type chainSpec struct {
	Name  string      `json:"name,omitempty"`
	Steps []chainStep `json:"steps"`

	tmpls []*jinja.Template // compiled Prompt of each step
	deps  [][]int           // indices of each step's direct dependencies
	above [][]int           // indices of each step's ancestors, ascending
}

// compile checks a chain and fills its compiled fields. Step names
// default to "step1", "step2", ...; dependencies must name earlier steps,
// so a chain is always acyclic.
func (c *chainSpec) compile() error {
	if len(c.Steps) == 0 {
		return invalid("steps", "a chain needs at least one step")
	}
	if len(c.Steps) > maxChainSteps {
		return invalid("steps", "a chain has at most %d steps, not %d", maxChainSteps, len(c.Steps))
	}
	index := map[string]int{}
	c.tmpls = make([]*jinja.Template, len(c.Steps))
	c.deps = make([][]int, len(c.Steps))
	c.above = make([][]int, len(c.Steps))
	for i := range c.Steps {
		st := &c.Steps[i]
		param := fmt.Sprintf("steps[%d]", i)
		if st.Name == "" {
			st.Name = fmt.Sprintf("step%d", i+1)
		}
		if _, dup := index[st.Name]; dup {
			return invalid(param+".name", "two steps are named %q", st.Name)
		}
		if st.Model == "" {
			return invalid(param+".model", "%s.model is required", param)
		}
		if st.Prompt == "" {
			return invalid(param+".prompt", "%s.prompt is required", param)
		}
		t, err := jinja.Compile(st.Prompt)
		if err != nil {
			return invalid(param+".prompt", "%s.prompt is not a valid template: %v", param, err)
		}
		c.tmpls[i] = t
		deps := st.DependsOn
		if deps == nil && i > 0 {
			deps = []string{c.Steps[i-1].Name}
		}
		seen := map[int]bool{}
		for _, d := range deps {
			j, ok := index[d]
			if !ok {
				return invalid(param+".depends_on", "step %q depends on %q, which is not an earlier step", st.Name, d)
			}
			c.deps[i] = append(c.deps[i], j)
			seen[j] = true
			for _, a := range c.above[j] {
				seen[a] = true
			}
		}
		for j := range seen {
			c.above[i] = append(c.above[i], j)
		}
		slices.Sort(c.above[i])
		index[st.Name] = i
	}
	return nil
}

// chainRequest is the body of POST /v1/chains and of a saved chain's run.
type chainRequest struct {
	chainSpec
	Input         string         `json:"input"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
}

// stepResult is one step's outcome in a chain response.
type stepResult struct {
	Name         string `json:"name"`
	Model        string `json:"model"`
	Output       string `json:"output"`
	FinishReason string `json:"finish_reason"`
	Usage        usage  `json:"usage"`
	done         bool
}

// chainResponse is the result of a chain.
type chainResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Chain   string       `json:"chain,omitempty"`
	Steps   []stepResult `json:"steps"`
	Output  string       `json:"output"`
	Usage   usage        `json:"usage"`
}

// chainChunk is a streamed chain event: a finished step ("chain.step"),
// or a piece of the last step's output ("chain.chunk").
type chainChunk struct {
	ID     string      `json:"id"`
	Object string      `json:"object"`
	Step   string      `json:"step"`
	Delta  string      `json:"delta,omitempty"`
	Result *stepResult `json:"result,omitempty"`
}

// chainProgress receives a chain's progress: a finished step other than
// the last (res set) or an event of the last step (ev set). Calls are
// serialised.
type chainProgress func(step int, ev *engine.Event, res *stepResult)

// runChain runs c on input, each step as soon as its dependencies are
// done, and returns every step's result.
func (s *Server) runChain(ctx context.Context, c *chainSpec, input string, progress chainProgress) ([]stepResult, error) {
	// Resolve every model first, so a bad one fails before any work.
	refs := make([]modelRef, len(c.Steps))
	for i, st := range c.Steps {
		ref, err := s.lookupModel(ctx, st.Model)
		if err != nil {
			if ae, ok := err.(*apiError); ok {
				e := *ae
				e.Param = fmt.Sprintf("steps[%d].model", i)
				e.Message = fmt.Sprintf("step %q: %s", st.Name, ae.Message)
				return nil, &e
			}
			return nil, err
		}
		refs[i] = ref
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make([]stepResult, len(c.Steps))
	done := make([]chan struct{}, len(c.Steps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var mu sync.Mutex // serialises progress and guards results' outputs for readers
	var wg sync.WaitGroup
	last := len(c.Steps) - 1
	for i := range c.Steps {
		wg.Go(func() {
			for _, d := range c.deps[i] {
				select {
				case <-done[d]:
				case <-ctx.Done():
					return
				}
			}
			res, err := s.runStep(ctx, c, i, refs[i], input, results, &mu, func(ev *engine.Event) {
				if i == last && progress != nil {
					mu.Lock()
					progress(i, ev, nil)
					mu.Unlock()
				}
			})
			if err != nil {
				cancel(err)
				return
			}
			mu.Lock()
			results[i] = res
			if progress != nil && i != last {
				progress(i, nil, &results[i])
			}
			mu.Unlock()
			close(done[i])
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// runStep renders step i's prompt from the finished steps and runs it.
func (s *Server) runStep(ctx context.Context, c *chainSpec, i int, ref modelRef, input string, results []stepResult,
	mu *sync.Mutex, onEvent func(*engine.Event)) (stepResult, error) {
	st := &c.Steps[i]
	fail := func(err error) (stepResult, error) {
		if ae, ok := err.(*apiError); ok {
			e := *ae
			e.Message = fmt.Sprintf("step %q: %s", st.Name, ae.Message)
			return stepResult{}, &e
		}
		return stepResult{}, fmt.Errorf("step %q: %w", st.Name, err)
	}
	steps := map[string]any{}
	previous := ""
	mu.Lock()
	for _, a := range c.above[i] {
		steps[c.Steps[a].Name] = results[a].Output
	}
	if i > 0 && slices.Contains(c.above[i], i-1) {
		previous = results[i-1].Output
	}
	mu.Unlock()
	text, err := c.tmpls[i].Render(map[string]any{"input": input, "steps": steps, "previous": previous})
	if err != nil {
		return fail(invalid(fmt.Sprintf("steps[%d].prompt", i), "rendering the prompt: %v", err))
	}
	if s.cfg.Tokenizer == nil {
		return fail(invalid("", "the model has no tokenizer, so it cannot run chains"))
	}
	prompt := s.cfg.Tokenizer.Encode(text, true)
	ctxLen := s.cfg.Model.Config.MaxPositions
	def := defaultChainMaxToken
	if ctxLen > 0 {
		def = max(1, min(def, ctxLen-len(prompt)))
	}
	maxTokens, err := s.checkPrompt(prompt, st.MaxTokens, def, fmt.Sprintf("steps[%d].prompt", i))
	if err != nil {
		return fail(err)
	}
	f := samplingFields{Model: st.Model, Temperature: st.Temperature, TopP: st.TopP, TopK: st.TopK, MinP: st.MinP, Stop: st.Stop, Seed: st.Seed}
	if f.Temperature == nil {
		zero := float32(0)
		f.Temperature = &zero
	}
	params, _, err := f.params()
	if err != nil {
		return fail(err)
	}
	params.MaxTokens = maxTokens
	begin := time.Now()
	events, err := s.start(ctx, []job{{model: ref, prompt: prompt, params: params}})
	if err != nil {
		return fail(err)
	}
	var cs choiceState
	for ev := range events {
		if ev.Err != nil {
			return fail(eventError(ev.Err))
		}
		s.observe(&cs, &ev.Event, begin)
		cs.add(&ev.Event)
		onEvent(&ev.Event)
	}
	if !cs.done {
		return fail(eventError(context.Cause(ctx)))
	}
	res := stepResult{Name: st.Name, Model: st.Model, Output: cs.text.String(), FinishReason: cs.finish, done: true}
	res.Usage.add(cs.prompt, cs.completion)
	return res, nil
}

func (s *Server) handleRunChain(w http.ResponseWriter, r *http.Request) {
	var req chainRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := req.compile(); err != nil {
		writeError(w, err)
		return
	}
	s.serveChain(w, r, &req.chainSpec, &req)
}

func (s *Server) handleRunSavedChain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.chainsMu.RLock()
	spec := s.chains[name]
	s.chainsMu.RUnlock()
	if spec == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "chain_not_found", Message: fmt.Sprintf("no chain is saved as %q", name)})
		return
	}
	var req chainRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Steps) > 0 {
		writeError(w, invalid("steps", "a saved chain's steps cannot be replaced when running it"))
		return
	}
	s.serveChain(w, r, spec, &req)
}

// serveChain runs a compiled chain and writes its response.
func (s *Server) serveChain(w http.ResponseWriter, r *http.Request, spec *chainSpec, req *chainRequest) {
	resp := chainResponse{ID: newID("chain-"), Object: "chain.result", Created: time.Now().Unix(), Chain: spec.Name}
	if !req.Stream {
		results, err := s.runChain(r.Context(), spec, req.Input, nil)
		if err != nil {
			writeError(w, err)
			return
		}
		s.finishChain(&resp, results)
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var sse *sseWriter
	var sseErr error
	results, err := s.runChain(r.Context(), spec, req.Input, func(i int, ev *engine.Event, res *stepResult) {
		if sse == nil && sseErr == nil {
			sse, sseErr = newSSE(w)
		}
		if sseErr != nil {
			return
		}
		switch {
		case res != nil:
			sse.send(chainChunk{ID: resp.ID, Object: "chain.step", Step: res.Name, Result: res})
		case ev.Text != "":
			sse.send(chainChunk{ID: resp.ID, Object: "chain.chunk", Step: spec.Steps[i].Name, Delta: ev.Text})
		}
	})
	if sse == nil && sseErr == nil {
		if err != nil {
			writeError(w, err)
			return
		}
		sse, sseErr = newSSE(w)
	}
	if sseErr != nil {
		writeError(w, sseErr)
		return
	}
	if err != nil {
		sse.fail(err)
		return
	}
	s.finishChain(&resp, results)
	sse.send(resp)
	sse.done()
}

// finishChain fills a chain response from its steps' results.
func (s *Server) finishChain(resp *chainResponse, results []stepResult) {
	resp.Steps = results
	for _, r := range results {
		resp.Usage.add(r.Usage.PromptTokens, r.Usage.CompletionTokens)
	}
	resp.Output = results[len(results)-1].Output
}

func (s *Server) handleSaveChain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := adapters.ValidName(name); err != nil {
		writeError(w, invalid("name", "%q is not a valid chain name: names are 1-128 letters, digits, '.', '_' and '-'", name))
		return
	}
	var spec chainSpec
	if err := decodeBody(r, &spec); err != nil {
		writeError(w, err)
		return
	}
	if err := spec.compile(); err != nil {
		writeError(w, err)
		return
	}
	spec.Name = name
	s.chainsMu.Lock()
	s.chains[name] = &spec
	s.chainsMu.Unlock()
	writeJSON(w, http.StatusOK, &spec)
}

func (s *Server) handleGetChain(w http.ResponseWriter, r *http.Request) {
	s.chainsMu.RLock()
	spec := s.chains[r.PathValue("name")]
	s.chainsMu.RUnlock()
	if spec == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "chain_not_found", Message: fmt.Sprintf("no chain is saved as %q", r.PathValue("name"))})
		return
	}
	writeJSON(w, http.StatusOK, spec)
}

func (s *Server) handleListChains(w http.ResponseWriter, r *http.Request) {
	s.chainsMu.RLock()
	data := []*chainSpec{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.chains {
			if !yield(k) {
				return
			}
		}
	}) {
		data = append(data, s.chains[name])
	}
	s.chainsMu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) handleDeleteChain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.chainsMu.Lock()
	_, ok := s.chains[name]
	delete(s.chains, name)
	s.chainsMu.Unlock()
	if !ok {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "chain_not_found", Message: fmt.Sprintf("no chain is saved as %q", name)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": name, "object": "chain", "deleted": true})
}
