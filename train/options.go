package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// Options are the hyperparameters of a training run. The zero value of a
// field means the default given in its comment; Defaults returns them all.
type Options struct {
	// LoRA, as PEFT's LoraConfig names them.
	Rank    int      // r (8)
	Alpha   float64  // lora_alpha (2·Rank)
	RSLoRA  bool     // use_rslora: scale alpha/sqrt(r) instead of alpha/r
	Targets []string // target_modules: projection names ("q_proj", ...) or "all-linear" (q_proj, v_proj)
	Dropout float64  // lora_dropout, in [0, 1) (0)

	// Optimizer and schedule.
	LR          float64 // peak learning rate (2e-4)
	WeightDecay float64 // AdamW decoupled weight decay (0)
	Beta1       float64 // AdamW beta1 (0.9)
	Beta2       float64 // AdamW beta2 (0.999)
	Eps         float64 // AdamW epsilon (1e-8)
	Warmup      int     // optimizer steps of linear warm-up from 0 (0)
	Schedule    string  // decay after warm-up: "cosine", "linear" or "constant" ("linear")
	ClipNorm    float64 // clip gradients to this global L2 norm; 0 is off (the CLI's default is 1)

	// Data.
	Epochs    int  // passes over the training set (1)
	MaxSteps  int  // stop after this many optimizer steps; 0: Epochs decides
	BatchSize int  // examples per micro-batch, packed into one token stream (1)
	GradAccum int  // micro-batches per optimizer step (1)
	Shuffle   bool // shuffle the training set each epoch (with Seed)

	Seed    uint64 // seeds LoRA init, shuffling and dropout (0 is a valid seed)
	Threads int    // worker threads; 0: one per CPU core

	// EvalEvery runs the evaluation set every this many steps (and always
	// before the first and after the last step); 0: only before and after.
	EvalEvery int

	// CheckpointDir, when set, receives checkpoint-NNNNNN directories
	// every CheckpointEvery steps (and at the end); ResumeFrom names one to
	// continue from.
	CheckpointDir   string
	CheckpointEvery int
	ResumeFrom      string

	// Init, when set, is the adapter training starts from instead of
	// PEFT's initialisation; its projections and ranks are used and Rank,
	// Alpha, RSLoRA and Targets are ignored.
	Init *lora.Adapter

	// Progress, when set, is called after every optimizer step and
	// evaluation.
	Progress func(Progress)
}

// Progress reports a training run's state after a step.
type Progress struct {
	Step, Steps  int           // optimizer steps done and planned
	Epoch        float64       // fractional epochs done
	Loss         float64       // training loss of this step
	EvalLoss     float64       // last evaluation loss; NaN when none yet
	LR           float64       // learning rate used by this step
	GradNorm     float64       // global gradient norm before clipping
	Tokens       int64         // tokens processed so far (prompt and completion)
	TokensPerSec float64       // since the run (or resume) started
	Elapsed, ETA time.Duration // time since start, and estimated time left
	Eval         bool          // this report is for an evaluation
}

// Report summarizes a finished run.
type Report struct {
	Steps         int
	Tokens        int64 // tokens processed (prompt and completion)
	LossFirst     float64
	LossLast      float64
	EvalLossFirst float64 // NaN without an evaluation set
	EvalLossLast  float64
	Duration      time.Duration
	TokensPerSec  float64
	Params        int // trainable parameters
}

// Defaults returns the options with every default filled in.
func Defaults() Options {
	var o Options
	o.fill()
	return o
}

// fill replaces zero values by defaults.
func (o *Options) fill() {
	if o.Rank == 0 {
		o.Rank = 8
	}
	if o.Alpha == 0 {
		o.Alpha = 2 * float64(o.Rank)
	}
	if len(o.Targets) == 0 {
		o.Targets = []string{"q_proj", "v_proj"}
	}
	if o.LR == 0 {
		o.LR = 2e-4
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	if o.Schedule == "" {
		o.Schedule = "linear"
	}
	if o.Epochs == 0 {
		o.Epochs = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1
	}
	if o.GradAccum == 0 {
		o.GradAccum = 1
	}
}

// Validate reports every hyperparameter that is out of range, with
// defaults filled in for zero values, as one error.
func (o Options) Validate() error {
	o.fill()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if o.Init == nil {
		if o.Rank < 1 || o.Rank > 1024 {
			bad("rank %d must be in [1, 1024]", o.Rank)
		}
		if !finite(o.Alpha) || o.Alpha <= 0 {
			bad("lora alpha %v must be positive", o.Alpha)
		}
		if _, err := targetModules(o.Targets); err != nil {
			errs = append(errs, err)
		}
	}
	if !(o.Dropout >= 0 && o.Dropout < 1) {
		bad("lora dropout %v must be in [0, 1)", o.Dropout)
	}
	if !finite(o.LR) || o.LR <= 0 || o.LR > 1 {
		bad("learning rate %v must be in (0, 1]", o.LR)
	}
	if !finite(o.WeightDecay) || o.WeightDecay < 0 || o.WeightDecay*o.LR >= 1 {
		bad("weight decay %v must be non-negative with lr·weight_decay < 1", o.WeightDecay)
	}
	if !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1) {
		bad("adam betas (%v, %v) must be in [0, 1)", o.Beta1, o.Beta2)
	}
	if !finite(o.Eps) || o.Eps <= 0 {
		bad("adam epsilon %v must be positive", o.Eps)
	}
	if o.Warmup < 0 {
		bad("warm-up %d must be non-negative", o.Warmup)
	}
	if !slices.Contains([]string{"cosine", "linear", "constant"}, o.Schedule) {
		bad("schedule %q must be cosine, linear or constant", o.Schedule)
	}
	if !finite(o.ClipNorm) || o.ClipNorm < 0 {
		bad("clip norm %v must be non-negative (0 is off)", o.ClipNorm)
	}
	if o.Epochs < 1 || o.MaxSteps < 0 || o.BatchSize < 1 || o.GradAccum < 1 {
		bad("epochs (%d), batch size (%d) and gradient accumulation (%d) must be at least 1, max steps (%d) non-negative",
			o.Epochs, o.BatchSize, o.GradAccum, o.MaxSteps)
	}
	if o.EvalEvery < 0 || o.CheckpointEvery < 0 || o.Threads < 0 {
		bad("eval-every, checkpoint-every and threads must be non-negative")
	}
	if o.CheckpointEvery > 0 && o.CheckpointDir == "" {
		bad("checkpoint-every needs a checkpoint directory")
	}
	if len(errs) > 0 {
		return fmt.Errorf("train: bad options: %w", errors.Join(errs...))
	}
	return nil
}

// targetModules turns PEFT target_modules names into projections.
// "all-linear" is every projection of a decoder layer (PEFT leaves out
// only the LM head).
func targetModules(names []string) ([]model.Module, error) {
	var ms []model.Module
	for _, n := range names {
		if n == "all-linear" {
			if len(names) != 1 {
				return nil, errors.New(`target "all-linear" must stand alone`)
			}
			for m := range model.NumModules {
				ms = append(ms, m)
			}
			return ms, nil
		}
		m, ok := model.ParseModule(n)
		if !ok {
			return nil, fmt.Errorf("unknown target module %q (want q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear)", n)
		}
		if slices.Contains(ms, m) {
			return nil, fmt.Errorf("target module %q given twice", n)
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, errors.New("no target modules")
	}
	return ms, nil
}

// lrAt returns the learning rate of optimizer step `step` (0-based) out of
// total, as transformers' get_{linear,cosine,constant}_schedule_with_warmup
// do: step/warmup during warm-up, then the decay.
func (o *Options) lrAt(step, total int) float64 {
	if step < o.Warmup {
		return o.LR * float64(step) / float64(max(1, o.Warmup))
	}
	progress := float64(step-o.Warmup) / float64(max(1, total-o.Warmup))
	switch o.Schedule {
	case "cosine":
		return o.LR * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	case "linear":
		return o.LR * max(0, 1-progress)
	}
	return o.LR
}
