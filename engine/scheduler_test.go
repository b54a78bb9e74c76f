package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// fixtureCase is a loaded fixture: its model, adapters and expectations.
type fixtureCase struct {
	fx       *testshared.Fixture
	m        *model.Model
	tok      *tokenizer.Tokenizer
	adapters map[string]*lora.Adapter
}

func loadCase(t *testing.T, name string) *fixtureCase {
	t.Helper()
	fx := testshared.LoadFixture(t, name)
	dir := testshared.Path(t, "fixtures", name)
	m, err := model.Load(filepath.Join(dir, "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	m.KVDType = kernels.F32 // compared with the reference at logitTol
	tok, err := engine.LoadTokenizer(m, filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	c := &fixtureCase{fx: fx, m: m, tok: tok, adapters: map[string]*lora.Adapter{}}
	for an, ae := range fx.Adapters {
		a, err := lora.Load(filepath.Join(dir, ae.Dir), &m.Config)
		if err != nil {
			t.Fatalf("adapter %s: %v", an, err)
		}
		c.adapters[an] = a
	}
	return c
}

// start runs a scheduler until the test ends.
func start(t *testing.T, c *fixtureCase, opts engine.SchedulerOptions) *engine.Scheduler {
	t.Helper()
	s := engine.NewScheduler(c.m, c.tok, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
	return s
}

// output is everything a stream delivered.
type output struct {
	ids      []int
	text     string
	logprobs []engine.TokenLogprobs
	last     engine.Event
	events   int
}

// collect reads a stream to its end and checks its framing: one final
// event, carrying usage, and nothing after it.
func collect(t *testing.T, st *engine.Stream) output {
	t.Helper()
	var o output
	for ev := range st.Events() {
		if o.last.Done {
			t.Errorf("event after the final one: %+v", ev)
		}
		o.events++
		o.ids = append(o.ids, ev.Tokens...)
		o.text += ev.Text
		o.logprobs = append(o.logprobs, ev.Logprobs...)
		o.last = ev
	}
	if !o.last.Done {
		t.Errorf("stream closed without a final event")
	}
	if o.last.Err == nil && o.last.CompletionTokens != len(o.ids) {
		t.Errorf("CompletionTokens = %d, streamed %d tokens", o.last.CompletionTokens, len(o.ids))
	}
	return o
}

// job is a request with its expected greedy ids.
type job struct {
	label  string
	req    *engine.Request
	greedy []int
	done   atomic.Int32 // OnDone calls
}

func newJob(label string, prompt []int, a *lora.Adapter, greedy []int) *job {
	j := &job{label: label, greedy: greedy}
	j.req = &engine.Request{Prompt: prompt, Adapter: a, Params: greedyParams(len(greedy)), IgnoreEOS: true,
		OnDone: func() { j.done.Add(1) }}
	return j
}

// caseJobs returns every fixture expectation of c as jobs: each prompt on
// the base model and on every adapter, then the mixed batch.
func caseJobs(c *fixtureCase) []*job {
	var jobs []*job
	for i, p := range c.fx.Prompts {
		jobs = append(jobs, newJob(fmt.Sprintf("base[%d]", i), p, nil, c.fx.Base.Greedy[i]))
		for an, ae := range c.fx.Adapters {
			jobs = append(jobs, newJob(fmt.Sprintf("%s[%d]", an, i), p, c.adapters[an], ae.Greedy[i]))
		}
	}
	for i, b := range c.fx.Batch {
		var a *lora.Adapter
		if b.Adapter != nil {
			a = c.adapters[*b.Adapter]
		}
		jobs = append(jobs, newJob(fmt.Sprintf("batch[%d]", i), b.Prompt, a, b.Greedy))
	}
	return jobs
}

// runJobs submits the jobs, half of them only once the first is decoding,
// and checks every stream's greedy ids and that OnDone ran once.
func runJobs(t *testing.T, s *engine.Scheduler, jobs []*job) {
	t.Helper()
	outs := make([]output, len(jobs))
	var wg sync.WaitGroup
	firstToken := make(chan struct{})
	var once sync.Once
	submit := func(i int) {
		st, err := s.Submit(context.Background(), jobs[i].req)
		if err != nil {
			t.Errorf("%s: Submit: %v", jobs[i].label, err)
			return
		}
		wg.Go(func() {
			var o output
			for ev := range st.Events() {
				once.Do(func() { close(firstToken) })
				o.ids = append(o.ids, ev.Tokens...)
				o.last = ev
			}
			outs[i] = o
		})
	}
	half := (len(jobs) + 1) / 2
	for i := range half {
		submit(i)
	}
	<-firstToken // the others join a batch that is already decoding
	for i := half; i < len(jobs); i++ {
		submit(i)
	}
	wg.Wait()
	for i, j := range jobs {
		o := outs[i]
		if o.last.Err != nil || o.last.FinishReason != engine.FinishLength {
			t.Errorf("%s: final event %+v", j.label, o.last)
		}
		if !slices.Equal(o.ids, j.greedy) {
			t.Errorf("%s: greedy\n got %v\nwant %v", j.label, o.ids, j.greedy)
		}
		if n := j.done.Load(); n != 1 {
			t.Errorf("%s: OnDone called %d times", j.label, n)
		}
	}
}

// TestSchedulerFixtures runs every fixture expectation (each prompt alone
// on the base model and each adapter, and the mixed batch) through one
// scheduler at once, some requests joining mid-decode, under default
// options, a tight token budget (chunked prefill beside decodes) and a
// KV cache so small that sequences are preempted and recomputed.
func TestSchedulerFixtures(t *testing.T) {
	for _, name := range testshared.FixtureCases {
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, name)
			longest := 0
			for _, j := range caseJobs(c) {
				longest = max(longest, len(j.req.Prompt)+len(j.greedy))
			}
			for _, tc := range []struct {
				label string
				opts  engine.SchedulerOptions
			}{
				{"default", engine.SchedulerOptions{}},
				{"chunked", engine.SchedulerOptions{MaxBatchTokens: 7, MaxSeqs: 5, KVBlockTokens: 3}},
				// Room for about two of the longest sequences.
				{"preempt", engine.SchedulerOptions{KVBlockTokens: 4, KVBudgetBytes: c.m.KVBlockBytes(4) * int64(2*longest/4+2)}},
			} {
				t.Run(tc.label, func(t *testing.T) {
					s := start(t, c, tc.opts)
					runJobs(t, s, caseJobs(c))
					if tc.label == "preempt" && s.Preemptions() == 0 {
						t.Errorf("no preemption with a %d-byte KV budget", tc.opts.KVBudgetBytes)
					}
					waitIdle(t, s)
				})
			}
		})
	}
}

// waitIdle waits for the scheduler to have nothing running and every KV
// block free.
func waitIdle(t *testing.T, s *engine.Scheduler) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		free, total := s.KVBlocks()
		if s.Running() == 0 && s.QueueDepth() == 0 && free == total {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not idle: %d running, %d queued, %d of %d KV blocks free", s.Running(), s.QueueDepth(), free, total)
		}
		time.Sleep(time.Millisecond)
	}
}

// Test32Concurrent submits 32 requests over the adapters and the base
// model at once; each must give the tokens it gives alone.
func TestScheduler32Concurrent(t *testing.T) {
	c := loadCase(t, "llama_tiny")
	all := caseJobs(c)
	var jobs []*job
	for i := range 32 {
		j := all[i%len(all)]
		jobs = append(jobs, newJob(fmt.Sprintf("%d:%s", i, j.label), j.req.Prompt, j.req.Adapter, j.greedy))
	}
	s := start(t, c, engine.SchedulerOptions{MaxSeqs: 16})
	runJobs(t, s, jobs)
	waitIdle(t, s)
}

// logSoftmax returns log_softmax(v)[i] in float64.
func logSoftmax(v []float32, i int) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, float64(x))
	}
	var sum float64
	for _, x := range v {
		sum += math.Exp(float64(x) - m)
	}
	return float64(v[i]) - m - math.Log(sum)
}

// TestSchedulerChunkedPrefill runs prompts longer than MaxBatchTokens: the
// first token's log-probability, computed from the logits after the last
// chunk, must match the reference logits, and the tokens the reference
// greedy run.
func TestSchedulerChunkedPrefill(t *testing.T) {
	c := loadCase(t, "llama3_rope") // its long prompt runs past the original RoPE context
	s := start(t, c, engine.SchedulerOptions{MaxBatchTokens: 16, KVBlockTokens: 5})
	for i, p := range c.fx.Prompts {
		req := &engine.Request{Prompt: p, Params: greedyParams(len(c.fx.Base.Greedy[i])), IgnoreEOS: true, Logprobs: 3}
		st, err := s.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		o := collect(t, st)
		if !slices.Equal(o.ids, c.fx.Base.Greedy[i]) {
			t.Errorf("prompt %d (%d tokens): greedy\n got %v\nwant %v", i, len(p), o.ids, c.fx.Base.Greedy[i])
		}
		checkLogprobs(t, fmt.Sprintf("prompt %d", i), o, c.fx.Base.LastLogits[i], 3)
	}
}

// checkLogprobs compares the first token's reported log-probabilities
// with log_softmax of the reference logits.
func checkLogprobs(t *testing.T, label string, o output, ref []float32, top int) {
	t.Helper()
	if len(o.logprobs) != len(o.ids) {
		t.Fatalf("%s: %d logprobs for %d tokens", label, len(o.logprobs), len(o.ids))
	}
	lp := o.logprobs[0]
	if lp.ID != o.ids[0] {
		t.Errorf("%s: logprob of token %d, generated %d", label, lp.ID, o.ids[0])
	}
	if d := math.Abs(float64(lp.Logprob) - logSoftmax(ref, lp.ID)); d > logitTol {
		t.Errorf("%s: logprob %v, reference %v", label, lp.Logprob, logSoftmax(ref, lp.ID))
	}
	if len(lp.Top) != top || lp.Top[0].ID != lp.ID {
		t.Fatalf("%s: top logprobs %v, chosen %d", label, lp.Top, lp.ID)
	}
	for _, tl := range lp.Top {
		if d := math.Abs(float64(tl.Logprob) - logSoftmax(ref, tl.ID)); d > logitTol {
			t.Errorf("%s: top logprob of %d: %v, reference %v", label, tl.ID, tl.Logprob, logSoftmax(ref, tl.ID))
		}
	}
}

// TestSchedulerCancel cancels a request mid-decode: its stream ends with
// the context's error, OnDone runs and its blocks go back to the pool.
func TestSchedulerCancel(t *testing.T) {
	c := loadCase(t, "stories260K_hf")
	s := start(t, c, engine.SchedulerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Int32
	req := &engine.Request{Prompt: c.fx.Prompts[0], IgnoreEOS: true, OnDone: func() { done.Add(1) }} // no MaxTokens: runs to the context length
	st, err := s.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	first := <-st.Events()
	if len(first.Tokens) == 0 || first.Done {
		t.Fatalf("first event %+v", first)
	}
	if s.Running() != 1 {
		t.Errorf("Running = %d while decoding", s.Running())
	}
	cancel()
	o := collect(t, st)
	if !errors.Is(o.last.Err, context.Canceled) || o.last.FinishReason != "" {
		t.Errorf("final event %+v, want Err context.Canceled", o.last)
	}
	waitIdle(t, s)
	if n := done.Load(); n != 1 {
		t.Errorf("OnDone called %d times", n)
	}
}

// TestSchedulerQueueFull fills the queue of a scheduler that is not
// running yet.
func TestSchedulerQueueFull(t *testing.T) {
	c := loadCase(t, "llama_tiny")
	s := engine.NewScheduler(c.m, nil, engine.SchedulerOptions{MaxQueue: 2})
	req := &engine.Request{Prompt: c.fx.Prompts[0], Params: greedyParams(1)}
	for range 2 {
		if _, err := s.Submit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(context.Background(), req); !errors.Is(err, engine.ErrQueueFull) {
		t.Fatalf("third Submit = %v, want ErrQueueFull", err)
	}
	if n := s.QueueDepth(); n != 2 {
		t.Errorf("QueueDepth = %d, want 2", n)
	}

	// Stopping the scheduler ends the queued requests and refuses more.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if _, err := s.Submit(context.Background(), req); !errors.Is(err, engine.ErrStopped) {
		t.Errorf("Submit after Run = %v, want ErrStopped", err)
	}
}

// TestSchedulerSubmitErrors checks the requests Submit refuses.
func TestSchedulerSubmitErrors(t *testing.T) {
	c := loadCase(t, "llama_tiny")
	s := engine.NewScheduler(c.m, nil, engine.SchedulerOptions{})
	long := make([]int, c.m.Config.MaxPositions+1)
	for _, tc := range []struct {
		name string
		req  engine.Request
	}{
		{"empty prompt", engine.Request{}},
		{"bad id", engine.Request{Prompt: []int{1, c.m.Config.Vocab}}},
		{"too long", engine.Request{Prompt: long}},
		{"stop without tokenizer", engine.Request{Prompt: []int{1}, Params: engine.SamplingParams{Stop: []string{"x"}}}},
		{"bad param", engine.Request{Prompt: []int{1}, Params: engine.SamplingParams{TopP: 2}}},
		{"negative logprobs", engine.Request{Prompt: []int{1}, Logprobs: -1}},
	} {
		if _, err := s.Submit(context.Background(), &tc.req); err == nil {
			t.Errorf("%s: Submit succeeded", tc.name)
		}
	}
}

// TestSchedulerStop checks stop strings and end-of-sequence tokens through
// the events: the text stops before the stop string, which never appears
// in any event, and an end-of-sequence token ends the stream with "stop".
func TestSchedulerStop(t *testing.T) {
	c := loadCase(t, "stories260K_hf")
	s := start(t, c, engine.SchedulerOptions{})
	prompt, greedy := c.fx.Prompts[0], c.fx.Base.Greedy[0]
	submit := func(req *engine.Request) output {
		t.Helper()
		st, err := s.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return collect(t, st)
	}

	full := submit(&engine.Request{Prompt: prompt, Params: greedyParams(len(greedy)), IgnoreEOS: true})
	if !slices.Equal(full.ids, greedy) {
		t.Fatalf("greedy\n got %v\nwant %v", full.ids, greedy)
	}
	if want := c.tok.Decode(greedy); full.text != want {
		t.Errorf("text %q, want %q", full.text, want)
	}

	// A stop string from the middle of the text, a few tokens long.
	at := len(full.text) / 2
	stop := full.text[at : at+6]
	at = strings.Index(full.text, stop)
	p := greedyParams(len(greedy))
	p.Stop = []string{"zzz", stop}
	st, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, Params: p, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	var last engine.Event
	for ev := range st.Events() {
		text += ev.Text
		if strings.Contains(text, stop) {
			t.Fatalf("stop string %q leaked: %q", stop, text)
		}
		last = ev
	}
	if text != full.text[:at] || last.FinishReason != engine.FinishStop {
		t.Errorf("with stop %q: text %q, finish %q; want %q, stop", stop, text, last.FinishReason, full.text[:at])
	}

	// Make a token the model emits early an end-of-sequence token.
	eos := greedy[3]
	first := slices.Index(greedy, eos)
	saved := c.m.Config.EOS
	c.m.Config.EOS = []int{eos}
	defer func() { c.m.Config.EOS = saved }()
	o := submit(&engine.Request{Prompt: prompt, Params: greedyParams(len(greedy))})
	if !slices.Equal(o.ids, greedy[:first+1]) || o.last.FinishReason != engine.FinishStop {
		t.Errorf("with EOS %d: ids %v, finish %q; want %v, stop", eos, o.ids, o.last.FinishReason, greedy[:first+1])
	}
	if want := c.tok.Decode(greedy[:first]); o.text != want {
		t.Errorf("with EOS %d: text %q, want %q", eos, o.text, want)
	}
}

// TestSchedulerLogprobs checks the first token's log-probabilities on an
// adapter against the reference logits.
func TestSchedulerLogprobs(t *testing.T) {
	c := loadCase(t, "qwen2_tiny")
	s := start(t, c, engine.SchedulerOptions{})
	for an, ae := range c.fx.Adapters {
		for i, p := range c.fx.Prompts {
			st, err := s.Submit(context.Background(), &engine.Request{Prompt: p, Adapter: c.adapters[an],
				Params: greedyParams(len(ae.Greedy[i])), IgnoreEOS: true, Logprobs: 5})
			if err != nil {
				t.Fatal(err)
			}
			o := collect(t, st)
			if !slices.Equal(o.ids, ae.Greedy[i]) {
				t.Errorf("%s[%d]: greedy\n got %v\nwant %v", an, i, o.ids, ae.Greedy[i])
			}
			checkLogprobs(t, fmt.Sprintf("%s[%d]", an, i), o, ae.LastLogits[i], 5)
		}
	}
}

// TestSchedulerSlowReader reads a stream only after the request is done:
// the scheduler must not block on it, and the events, coalesced once the
// channel filled, must still carry every token.
func TestSchedulerSlowReader(t *testing.T) {
	c := loadCase(t, "stories260K_hf")
	s := start(t, c, engine.SchedulerOptions{})
	prompt, greedy := c.fx.Prompts[1], c.fx.Base.Greedy[1]
	var done atomic.Int32
	st, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, Params: greedyParams(len(greedy)),
		IgnoreEOS: true, Logprobs: 1, OnDone: func() { done.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	// A second request must keep running while the first is unread.
	other := newJob("other", c.fx.Prompts[2], nil, c.fx.Base.Greedy[2])
	runJobs(t, s, []*job{other})
	for done.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	o := collect(t, st)
	if !slices.Equal(o.ids, greedy) || len(o.logprobs) != len(greedy) {
		t.Errorf("greedy\n got %v (%d logprobs)\nwant %v", o.ids, len(o.logprobs), greedy)
	}
	if o.events >= len(greedy) {
		t.Errorf("%d events for %d tokens: nothing was coalesced", o.events, len(greedy))
	}
}

// TestSchedulerPoolExhausted runs requests with no token limit on a KV
// cache too small for any of them to reach the context length: they
// preempt one another until each runs alone and ends with "length" when
// the whole pool is full, without deadlock.
func TestSchedulerPoolExhausted(t *testing.T) {
	c := loadCase(t, "llama_tiny")
	const blocks = 10
	s := start(t, c, engine.SchedulerOptions{KVBlockTokens: 4, KVBudgetBytes: c.m.KVBlockBytes(4) * blocks})
	var jobs []*job
	var streams []*engine.Stream
	for i := range 4 {
		j := newJob(fmt.Sprint(i), c.fx.Prompts[i%2], nil, nil)
		j.req.Params.MaxTokens = 0
		st, err := s.Submit(context.Background(), j.req)
		if err != nil {
			t.Fatal(err)
		}
		jobs, streams = append(jobs, j), append(streams, st)
	}
	for i, st := range streams {
		o := collect(t, st)
		if o.last.FinishReason != engine.FinishLength || o.last.Err != nil {
			t.Errorf("request %d: final event %+v", i, o.last)
		}
		if n := o.last.PromptTokens + o.last.CompletionTokens; n != blocks*4+1 {
			t.Errorf("request %d: %d tokens in all, want the pool's %d positions + 1", i, n, blocks*4)
		}
		if n := jobs[i].done.Load(); n != 1 {
			t.Errorf("request %d: OnDone called %d times", i, n)
		}
	}
	if s.Preemptions() == 0 {
		t.Error("no preemption")
	}
	waitIdle(t, s)
}
