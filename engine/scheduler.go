package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// SchedulerOptions bound what the scheduler holds at once. Zero values
// mean defaults.
type SchedulerOptions struct {
	// MaxSeqs is the most sequences running at once (default 64). It is
	// lowered to MaxBatchTokens so every running decode fits in a step.
	MaxSeqs int

	// MaxBatchTokens is the most tokens per step across all sequences
	// (default 512); long prompts are prefilled in chunks of at most this.
	MaxBatchTokens int

	// KVBlockTokens is the number of positions per KV cache block
	// (default 16).
	KVBlockTokens int

	// KVBudgetBytes is the memory for the KV cache (default 1 GiB), which
	// stores keys and values as the model's KVDType (F16 holds twice the
	// positions of F32). The pool never holds more blocks than MaxSeqs
	// full-context sequences need, when the model's context length is
	// known.
	KVBudgetBytes int64

	// MaxQueue is the most requests waiting beyond the running ones
	// (default 256); Submit returns ErrQueueFull beyond it.
	MaxQueue int

	// Logger receives admission, preemption and failure messages; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Errors returned by Submit.
var (
	// ErrQueueFull means MaxQueue requests are already waiting.
	ErrQueueFull = errors.New("engine: queue full")

	// ErrStopped means Run has returned, so nothing will serve the
	// request.
	ErrStopped = errors.New("engine: scheduler stopped")
)

// Scheduler runs continuous batching: requests join and leave the running
// batch at every step. One goroutine (Run) owns the model, the KV pool
// and every running sequence; Submit only appends to the queue, so a
// Scheduler starts no goroutine per request.
//
// Each step gives every decoding sequence one token and shares what is
// left of MaxBatchTokens among prefilling ones, in chunks, so a long
// prompt never stalls the decodes. The KV cache is paged (model.KVPool):
// a request is admitted when the pool holds its prompt, and when a
// decoding sequence needs a block the pool lacks, the most recently
// admitted sequence is preempted: its blocks are freed and it goes back
// to the front of the queue, to be recomputed from its prompt and the
// tokens generated so far. Its stream just pauses.
type Scheduler struct {
	model *model.Model
	tok   *tokenizer.Tokenizer
	opts  SchedulerOptions
	log   *slog.Logger
	pool  *model.KVPool
	batch *lora.Batch

	mu      sync.Mutex
	waiting []*schedSeq // guarded by mu: requests not running, preempted ones first
	stopped bool        // guarded by mu: Run has returned

	wake       chan struct{} // Submit's signal to an idle Run; buffered, 1
	running    atomic.Int64  // len(run), for Running
	freeBlocks atomic.Int64  // s.pool.FreeBlocks(), for KVBlocks
	preempted  atomic.Int64  // preemptions so far, for Preemptions

	// Owned by the Run goroutine.
	run   []*schedSeq // running sequences, in admission order
	steps []model.Seq // this step's batch, reused
	sched []*schedSeq // the sequence of each entry of steps
}

// schedSeq is one request in the scheduler.
type schedSeq struct {
	req    *Request
	ctx    context.Context
	stream *Stream

	cache   *model.Cache // holds blocks only while running
	sampler *Sampler
	decoder *tokenizer.Decoder
	stops   *StopMatcher

	// tokens is the prompt followed by every generated token. The cache
	// holds tokens[:cache.Len]; the rest is fed at the next steps (one
	// token when decoding, more when prefilling or recomputing).
	tokens  []int
	nPrompt int
	chunk   int  // tokens scheduled this step
	done    bool // finished: the stream is closed
}

// Stream delivers a request's output. Cancelling the ctx given to Submit
// (client disconnect) frees its sequence at the next step.
type Stream struct {
	ch      chan Event
	pending Event // output not yet sent because ch was full
	has     bool  // pending holds output
}

// streamBuffer is the capacity of a stream's channel. Run never blocks on
// a slow reader: when the channel is full, output collects in one pending
// event that is sent once there is room. The last slot is kept for the
// final event, so that one is never delayed.
const streamBuffer = 16

// Events returns the channel of the request's events. It is closed after
// the final event (Done true), which always comes.
func (st *Stream) Events() <-chan Event { return st.ch }

// Event is a piece of a request's output.
type Event struct {
	Tokens   []int           // new token ids this event (usually 1)
	Text     string          // newly completed text (UTF-8 safe, stop strings held back)
	Logprobs []TokenLogprobs // per new token, when Request.Logprobs > 0

	Done                           bool
	FinishReason                   string // FinishStop or FinishLength on the final event, "" with Err
	PromptTokens, CompletionTokens int    // usage, on the final event
	Err                            error  // on the final event if the request failed
}

// TokenLogprobs is a generated token's log-probability under the model's
// raw logits and the most likely alternatives at its position.
type TokenLogprobs struct {
	ID      int
	Logprob float32
	Top     []TokenLogprob // Request.Logprobs most likely tokens, most likely first
}

// NewScheduler returns a scheduler for m; tok may be nil (no text, no stop
// strings). It allocates the KV pool at once. Call Run to serve requests.
func NewScheduler(m *model.Model, tok *tokenizer.Tokenizer, opts SchedulerOptions) *Scheduler {
	if opts.MaxBatchTokens <= 0 {
		opts.MaxBatchTokens = 512
	}
	if opts.MaxSeqs <= 0 {
		opts.MaxSeqs = 64
	}
	opts.MaxSeqs = min(opts.MaxSeqs, opts.MaxBatchTokens)
	if opts.KVBlockTokens <= 0 {
		opts.KVBlockTokens = 16
	}
	if opts.KVBudgetBytes <= 0 {
		opts.KVBudgetBytes = 1 << 30
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	blocks := int(opts.KVBudgetBytes / m.KVBlockBytes(opts.KVBlockTokens))
	if n := m.Config.MaxPositions; n > 0 {
		// More blocks than every sequence at full context would be idle.
		blocks = min(blocks, opts.MaxSeqs*((n+opts.KVBlockTokens-1)/opts.KVBlockTokens))
	}
	s := &Scheduler{
		model: m,
		tok:   tok,
		opts:  opts,
		log:   log,
		pool:  m.NewKVPool(opts.KVBlockTokens, blocks),
		batch: lora.NewBatch(m.Pool()),
		wake:  make(chan struct{}, 1),
	}
	s.freeBlocks.Store(int64(blocks))
	return s
}

// QueueDepth returns the number of requests waiting to run, preempted ones
// included.
func (s *Scheduler) QueueDepth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting)
}

// Running returns the number of sequences in the running batch.
func (s *Scheduler) Running() int { return int(s.running.Load()) }

// KVBlocks returns the number of free blocks in the KV pool, as of the
// end of the last step, and the pool's size, for metrics.
func (s *Scheduler) KVBlocks() (free, total int) {
	return int(s.freeBlocks.Load()), s.pool.Blocks()
}

// Preemptions returns the number of times a running sequence was
// preempted to free KV blocks, for metrics: a steadily growing count
// means KVBudgetBytes is too small for the load.
func (s *Scheduler) Preemptions() int64 { return s.preempted.Load() }

// Submit queues a request. The request's Adapter (may be nil) must stay
// valid until the stream ends. When Submit returns a stream, OnDone (if
// set) is called exactly once, on the Run goroutine, when the request
// leaves the scheduler (before its final event is sent), e.g. to release an adapter cache handle; when it
// returns an error, OnDone is not called. Invalid sampling parameters are
// reported as a *ParamError. req must not be modified until the stream
// ends.
//
// Params.MaxTokens 0 means no limit: the request runs until a stop, or
// until its context (or, when the model's context length is unknown, the
// whole KV cache) is full.
func (s *Scheduler) Submit(ctx context.Context, req *Request) (*Stream, error) {
	cfg := &s.model.Config
	switch {
	case len(req.Prompt) == 0:
		return nil, errors.New("engine: empty prompt")
	case len(req.Params.Stop) > 0 && s.tok == nil:
		return nil, errors.New("engine: stop strings need a tokenizer")
	case cfg.MaxPositions > 0 && len(req.Prompt) > cfg.MaxPositions:
		return nil, fmt.Errorf("engine: prompt of %d tokens is longer than the context (%d)", len(req.Prompt), cfg.MaxPositions)
	case s.pool.BlocksFor(len(req.Prompt)) > s.pool.Blocks():
		return nil, fmt.Errorf("engine: prompt of %d tokens is larger than the KV cache (%d positions)",
			len(req.Prompt), s.pool.Blocks()*s.pool.BlockTokens())
	case req.Logprobs < 0:
		return nil, &ParamError{Param: "top_logprobs", Reason: fmt.Sprintf("%d must not be negative", req.Logprobs)}
	}
	if err := req.Params.Validate(); err != nil {
		return nil, err
	}
	for _, id := range req.Prompt {
		if id < 0 || id >= cfg.Vocab {
			return nil, fmt.Errorf("engine: prompt token id %d is outside the vocabulary [0, %d)", id, cfg.Vocab)
		}
	}
	seq := &schedSeq{
		req:     req,
		ctx:     ctx,
		stream:  &Stream{ch: make(chan Event, streamBuffer)},
		sampler: NewSampler(req.Params, req.Prompt),
		stops:   NewStopMatcher(req.Params.Stop),
		cache:   s.pool.NewCache(),
		tokens:  slices.Clone(req.Prompt),
		nPrompt: len(req.Prompt),
	}
	if s.tok != nil {
		seq.decoder = s.tok.NewDecoder()
	}

	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return nil, ErrStopped
	case len(s.waiting) >= s.opts.MaxQueue:
		s.mu.Unlock()
		return nil, ErrQueueFull
	}
	s.waiting = append(s.waiting, seq)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return seq.stream, nil
}

// Run is the step loop. It returns ctx's error when ctx is done; the
// requests still running or waiting then end with Err = that error, and
// later Submits fail with ErrStopped. Run must be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			s.shutdown(err)
			return err
		}
		if s.step() {
			continue
		}
		// Nothing to run: sleep until a request arrives.
		select {
		case <-ctx.Done():
		case <-s.wake:
		}
	}
}

// shutdown ends every request with err and refuses new ones.
func (s *Scheduler) shutdown(err error) {
	s.mu.Lock()
	s.stopped = true
	waiting := s.waiting
	s.waiting = nil
	s.mu.Unlock()
	for _, q := range s.run {
		s.finish(q, "", err)
	}
	s.run = s.run[:0]
	for _, q := range waiting {
		s.finish(q, "", err)
	}
	s.running.Store(0)
	s.freeBlocks.Store(int64(s.pool.FreeBlocks()))
}

// step runs one step of the batch: it drops cancelled requests, admits
// waiting ones, runs the model over one token of every decoding sequence
// and prefill chunks of the others, samples and emits their tokens and
// retires the finished ones. It reports whether there is work left.
func (s *Scheduler) step() bool {
	s.dropCancelled()
	s.admit()
	s.running.Store(int64(len(s.run)))
	s.freeBlocks.Store(int64(s.pool.FreeBlocks()))
	if len(s.run) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiting) > 0
	}
	if !s.schedule() {
		return true
	}

	s.steps, s.sched = s.steps[:0], s.sched[:0]
	for _, q := range s.run {
		if q.chunk > 0 {
			s.sched = append(s.sched, q)
		}
	}
	groupByAdapter(s.sched)
	s.batch.Reset()
	for _, q := range s.sched {
		s.steps = append(s.steps, model.Seq{Cache: q.cache, Tokens: q.tokens[q.cache.Len : q.cache.Len+q.chunk]})
		s.batch.Add(q.req.Adapter, q.chunk)
	}
	logits, err := s.model.Forward(s.steps, s.batch)
	s.batch.Reset() // drop the adapter pointers until the next step
	if err != nil {
		// Submit validated every input, so this is a bug; fail the step's
		// sequences rather than the whole scheduler.
		s.log.Error("engine: forward failed", "err", err)
		for _, q := range s.sched {
			s.finish(q, "", fmt.Errorf("engine: %w", err))
		}
	} else {
		for i, q := range s.sched {
			q.chunk = 0
			if q.cache.Len == len(q.tokens) { // prefill done or decoding
				s.advance(q, logits[i])
			}
		}
	}
	s.run = slices.DeleteFunc(s.run, func(q *schedSeq) bool { return q.done })
	s.running.Store(int64(len(s.run)))
	s.freeBlocks.Store(int64(s.pool.FreeBlocks()))
	return true
}

// groupByAdapter reorders qs so that sequences on the same adapter stand
// side by side, each group where its first sequence was and each keeping
// its order: the batch then has one run per adapter, whose matrices are
// read once per projection for all its tokens. It allocates nothing; a
// batch holds at most MaxSeqs sequences, so its quadratic time is small.
func groupByAdapter(qs []*schedSeq) {
	for i := 1; i < len(qs); i++ {
		a := qs[i].req.Adapter
		k := i - 1
		for k >= 0 && qs[k].req.Adapter != a {
			k--
		}
		if k >= 0 && k < i-1 { // move qs[i] just after its group
			q := qs[i]
			copy(qs[k+2:i+1], qs[k+1:i])
			qs[k+1] = q
		}
	}
}

// dropCancelled ends the requests whose Submit context is done.
func (s *Scheduler) dropCancelled() {
	for _, q := range s.run {
		if err := q.ctx.Err(); err != nil {
			s.finish(q, "", err)
		}
	}
	s.run = slices.DeleteFunc(s.run, func(q *schedSeq) bool { return q.done })

	s.mu.Lock()
	var gone []*schedSeq
	s.waiting = slices.DeleteFunc(s.waiting, func(q *schedSeq) bool {
		if q.ctx.Err() != nil {
			gone = append(gone, q)
			return true
		}
		return false
	})
	s.mu.Unlock()
	for _, q := range gone {
		s.finish(q, "", q.ctx.Err())
	}
}

// admit moves waiting requests into the running batch, first come first
// served, while MaxSeqs and the free KV blocks allow. A request needs
// blocks for every token it has, so its prefill never waits for memory,
// and admission leaves the blocks that running decodes need at this step,
// so it never causes an immediate preemption.
func (s *Scheduler) admit() {
	reserve := 0
	for _, q := range s.run {
		if len(q.tokens) > q.cache.Cap {
			reserve++
		}
	}
	for len(s.run) < s.opts.MaxSeqs {
		s.mu.Lock()
		if len(s.waiting) == 0 {
			s.mu.Unlock()
			return
		}
		q := s.waiting[0]
		need := s.pool.BlocksFor(len(q.tokens))
		tooBig := need > s.pool.Blocks()
		if !tooBig && need > s.pool.FreeBlocks()-reserve {
			s.mu.Unlock()
			return // first come first served: later requests wait too
		}
		s.waiting[0] = nil // let a finished request be collected
		s.waiting = s.waiting[1:]
		s.mu.Unlock()
		if tooBig {
			// A preempted sequence grew beyond the whole pool: it can
			// never run again.
			s.finish(q, FinishLength, nil)
			continue
		}
		q.cache.Grow(len(q.tokens))
		s.run = append(s.run, q)
	}
}

// schedule sets every running sequence's chunk for this step: one token
// for each decoding sequence, which gets the block it needs first, even
// if that preempts the most recently admitted sequences; then prefill
// chunks, in admission order, out of the tokens left in MaxBatchTokens.
// It reports whether any sequence has tokens to run.
func (s *Scheduler) schedule() bool {
	budget := s.opts.MaxBatchTokens
	for i := 0; i < len(s.run); i++ {
		q := s.run[i]
		q.chunk = 0
		if len(q.tokens)-q.cache.Len != 1 {
			continue // prefilling
		}
		for !q.cache.Grow(q.cache.Len + 1) {
			victim := s.run[len(s.run)-1]
			s.preempt(victim)
			if victim == q {
				break
			}
		}
		if q.done || i == len(s.run) {
			break // q preempted itself, or ended, and was the last one
		}
		q.chunk = 1
		budget--
	}
	any := false
	for _, q := range s.run {
		if q.chunk == 0 && budget > 0 {
			q.chunk = min(len(q.tokens)-q.cache.Len, budget)
			budget -= q.chunk
		}
		any = any || q.chunk > 0
	}
	return any
}

// preempt frees the blocks of q, the last running sequence, and puts it
// at the front of the queue; it will be recomputed from its tokens.
func (s *Scheduler) preempt(q *schedSeq) {
	s.run = s.run[:len(s.run)-1]
	if len(s.run) == 0 {
		// Alone it still cannot grow: the pool is too small for it.
		s.finish(q, FinishLength, nil)
		return
	}
	s.log.Debug("engine: preempting sequence", "tokens", len(q.tokens), "running", len(s.run))
	s.preempted.Add(1)
	q.cache.Free()
	q.chunk = 0
	s.mu.Lock()
	s.waiting = slices.Insert(s.waiting, 0, q)
	s.mu.Unlock()
}

// advance samples the next token of q from its logits, emits it and
// finishes q when it is done.
func (s *Scheduler) advance(q *schedSeq, logits []float32) {
	id := q.sampler.Sample(logits)
	q.tokens = append(q.tokens, id)
	ev := &q.stream.pending
	q.stream.has = true
	ev.Tokens = append(ev.Tokens, id)
	if n := q.req.Logprobs; n > 0 {
		ev.Logprobs = append(ev.Logprobs, TokenLogprobs{
			ID:      id,
			Logprob: float32(float64(logits[id]) - logSumExp(logits)),
			Top:     TopLogprobs(logits, n),
		})
	}
	if !q.req.IgnoreEOS && slices.Contains(s.model.Config.EOS, id) {
		s.finish(q, FinishStop, nil)
		return
	}
	if q.decoder != nil {
		text, stopped := q.stops.Push(q.decoder.Next(id))
		ev.Text += text
		if stopped {
			s.finish(q, FinishStop, nil)
			return
		}
	}
	generated := len(q.tokens) - q.nPrompt
	// The context is full when the new token has no position left.
	if ctxLen := s.model.Config.MaxPositions; q.req.Params.MaxTokens > 0 && generated >= q.req.Params.MaxTokens ||
		ctxLen > 0 && len(q.tokens) > ctxLen {
		s.finish(q, FinishLength, nil)
		return
	}
	q.stream.flush(false)
}

// finish ends q: it frees its blocks, calls OnDone, sends the final event
// and closes its stream. reason is "" when err is set.
func (s *Scheduler) finish(q *schedSeq, reason string, err error) {
	q.done = true
	q.cache.Free()
	ev := &q.stream.pending
	q.stream.has = true
	if err == nil && q.decoder != nil && !q.stops.Stopped() {
		text, _ := q.stops.Push(q.decoder.Flush())
		ev.Text += text + q.stops.Flush()
	}
	ev.Done = true
	ev.FinishReason = reason
	ev.Err = err
	ev.PromptTokens = q.nPrompt
	ev.CompletionTokens = len(q.tokens) - q.nPrompt
	// OnDone first, so that a reader who sees the final event knows the
	// request's resources (its adapter handle) are released.
	if q.req.OnDone != nil {
		q.req.OnDone()
	}
	q.stream.flush(true)
	close(q.stream.ch)
}

// flush sends the pending event if there is room for it, always for the
// final one: non-final events leave the channel's last slot free.
func (st *Stream) flush(final bool) {
	if !st.has || !final && len(st.ch) >= cap(st.ch)-1 {
		return
	}
	st.ch <- st.pending
	st.pending = Event{}
	st.has = false
}
