package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// job is one training run: the options, the trainable state and the
// trainer that computes gradients.
type job struct {
	m      *model.Model
	opts   Options
	pool   *kernels.Pool
	ps     *params
	tr     *trainer
	step   int   // optimizer steps done
	tokens int64 // tokens processed
}

// newJob fills in defaults, validates the options and initializes the
// LoRA weights. The job has its own worker pool, so it never contends
// with whoever serves the model.
func newJob(m *model.Model, opts Options) (*job, error) {
	opts.fill()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ps, err := initParams(&m.Config, &opts)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	pool := kernels.NewPool(opts.Threads)
	return &job{m: m, opts: opts, pool: pool, ps: ps, tr: newTrainer(m, pool, ps, opts.Dropout)}, nil
}

func (j *job) close() { j.pool.Close() }

// accumulate computes the gradients of one optimizer step over batch,
// micro-batch by micro-batch, and returns the step's loss: the mean over
// all of the batch's target tokens.
func (j *job) accumulate(batch []Example, step int) (float64, int) {
	j.ps.zeroGrad()
	targets, tokens := 0, 0
	for i := range batch {
		targets += batch[i].Targets()
		tokens += len(batch[i].Tokens)
	}
	w := float32(1 / float64(targets))
	var loss float64
	for mb, i := 0, 0; i < len(batch); mb, i = mb+1, i+j.opts.BatchSize {
		// Dropout masks depend only on the seed, the step and the
		// micro-batch, so a resumed run draws the same ones.
		rng := rand.New(rand.NewPCG(j.opts.Seed^0x64726f70, uint64(step)<<16|uint64(mb)))
		j.tr.forward(batch[i:min(i+j.opts.BatchSize, len(batch))], true, rng)
		loss += j.tr.lossBackward(w, true)
	}
	return loss / float64(targets), tokens
}

// evalLoss returns the mean loss over the target tokens of exs, without
// dropout.
func (j *job) evalLoss(exs []Example) float64 {
	var loss float64
	targets := 0
	for i := 0; i < len(exs); i += j.opts.BatchSize {
		mb := exs[i:min(i+j.opts.BatchSize, len(exs))]
		j.tr.forward(mb, false, nil)
		loss += j.tr.lossBackward(1, false)
		for k := range mb {
			targets += mb[k].Targets()
		}
	}
	return loss / float64(targets)
}

// checkExamples refuses examples the model cannot run.
func checkExamples(cfg *model.Config, exs []Example, what string) error {
	for i := range exs {
		ex := &exs[i]
		if len(ex.Tokens) != len(ex.Target) || len(ex.Tokens) < 2 {
			return fmt.Errorf("train: %s example %d (line %d): needs at least 2 tokens and one target flag per token", what, i, ex.Line)
		}
		for _, id := range ex.Tokens {
			if id < 0 || id >= cfg.Vocab {
				return fmt.Errorf("train: %s example %d (line %d): token id %d is outside the vocabulary [0, %d)", what, i, ex.Line, id, cfg.Vocab)
			}
		}
		if ex.Targets() == 0 {
			return fmt.Errorf("train: %s example %d (line %d): no completion tokens to learn from", what, i, ex.Line)
		}
	}
	return nil
}

// Train finetunes a LoRA adapter on the train examples and returns it
// with a report. The base model is only read. eval (may be empty) is
// evaluated before the first step, every opts.EvalEvery steps and after
// the last. Options are checked, and every example, before any training
// starts. ctx stops the run between steps (a checkpoint dir keeps what was
// done up to the last checkpoint).
func Train(ctx context.Context, m *model.Model, train, eval []Example, opts Options) (*lora.Adapter, *Report, error) {
	if len(train) == 0 {
		return nil, nil, fmt.Errorf("train: no training examples")
	}
	if err := checkExamples(&m.Config, train, "training"); err != nil {
		return nil, nil, err
	}
	if err := checkExamples(&m.Config, eval, "evaluation"); err != nil {
		return nil, nil, err
	}
	j, err := newJob(m, opts)
	if err != nil {
		return nil, nil, err
	}
	defer j.close()
	o := &j.opts
	perStep := o.BatchSize * o.GradAccum
	perEpoch := (len(train) + perStep - 1) / perStep
	total := perEpoch * o.Epochs
	if o.MaxSteps > 0 {
		total = o.MaxSteps
	}
	if o.ResumeFrom != "" {
		if err := j.loadCheckpoint(o.ResumeFrom); err != nil {
			return nil, nil, err
		}
	}
	rep := &Report{Params: j.ps.count(), EvalLossFirst: math.NaN(), EvalLossLast: math.NaN(), LossFirst: math.NaN(), LossLast: math.NaN()}
	evalLoss := math.NaN()
	start := time.Now()
	startStep, startTokens := j.step, j.tokens
	report := func(p Progress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	runEval := func() {
		if len(eval) == 0 {
			return
		}
		evalLoss = j.evalLoss(eval)
		if math.IsNaN(rep.EvalLossFirst) {
			rep.EvalLossFirst = evalLoss
		}
		rep.EvalLossLast = evalLoss
		report(Progress{Step: j.step, Steps: total, Epoch: float64(j.step) / float64(perEpoch), EvalLoss: evalLoss, Loss: math.NaN(),
			Tokens: j.tokens, Elapsed: time.Since(start), Eval: true})
	}
	runEval()

	var order []int
	orderEpoch := -1
	for j.step < total {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("train: stopped at step %d: %w", j.step, err)
		}
		epoch, off := j.step/perEpoch, j.step%perEpoch
		if epoch != orderEpoch {
			order, orderEpoch = epochOrder(len(train), epoch, o), epoch
		}
		idx := order[off*perStep : min((off+1)*perStep, len(order))]
		batch := make([]Example, len(idx))
		for i, k := range idx {
			batch[i] = train[k]
		}
		loss, tokens := j.accumulate(batch, j.step)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, nil, fmt.Errorf("train: loss became %v at step %d (learning rate %v too high?)", loss, j.step, o.LR)
		}
		norm := j.ps.gradNorm()
		if o.ClipNorm > 0 && norm > o.ClipNorm {
			j.ps.scaleGrad(float32(o.ClipNorm / (norm + 1e-6)))
		}
		lr := o.lrAt(j.step, total)
		j.ps.adamW(o, lr, j.step+1)
		j.step++
		j.tokens += int64(tokens)
		if math.IsNaN(rep.LossFirst) {
			rep.LossFirst = loss
		}
		rep.LossLast = loss
		el := time.Since(start)
		tps := float64(j.tokens-startTokens) / el.Seconds()
		eta := time.Duration(float64(el) / float64(j.step-startStep) * float64(total-j.step))
		report(Progress{Step: j.step, Steps: total, Epoch: float64(j.step) / float64(perEpoch), Loss: loss, EvalLoss: evalLoss,
			LR: lr, GradNorm: norm, Tokens: j.tokens, TokensPerSec: tps, Elapsed: el, ETA: eta})
		if o.EvalEvery > 0 && j.step%o.EvalEvery == 0 && j.step < total {
			runEval()
		}
		if o.CheckpointEvery > 0 && j.step%o.CheckpointEvery == 0 && j.step < total {
			if err := j.saveCheckpoint(o.CheckpointDir); err != nil {
				return nil, nil, err
			}
		}
	}
	runEval()
	if o.CheckpointDir != "" {
		if err := j.saveCheckpoint(o.CheckpointDir); err != nil {
			return nil, nil, err
		}
	}
	rep.Steps = j.step
	rep.Tokens = j.tokens
	rep.Duration = time.Since(start)
	rep.TokensPerSec = float64(j.tokens-startTokens) / rep.Duration.Seconds()
	return j.ps.adapter(&m.Config, j.peftConfig(""), "adapter"), rep, nil
}

// epochOrder returns the order of the examples in an epoch: as given, or
// shuffled from the seed and the epoch.
func epochOrder(n, epoch int, o *Options) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if o.Shuffle {
		rng := rand.New(rand.NewPCG(o.Seed^0x73687566, uint64(epoch)))
		rng.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
	}
	return order
}
