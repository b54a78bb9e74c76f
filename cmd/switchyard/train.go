package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-ai/switchyard/client"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/train"
)

// runTrain is "switchyard train": finetune a LoRA adapter on a JSONL file
// and write it as a PEFT directory.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := train.Defaults()
	var (
		modelPath = fs.String("model", "", "base model: Hugging Face dir or .gguf file (default: TinyStories 260K from ../shared, or $SWITCHYARD_MODEL)")
		dataPath  = fs.String("data", "", "training data, JSONL: {prompt, completion}, {input, output} or {messages}")
		evalPath  = fs.String("eval", "", "optional evaluation data, same format; its loss is reported during training")
		outDir    = fs.String("out", "", "output PEFT adapter directory")
		ggufOut   = fs.String("gguf", "", "also write the adapter as a llama.cpp GGUF LoRA file")
		rank      = fs.Int("r", d.Rank, "LoRA rank")
		alpha     = fs.Float64("lora-alpha", 0, "LoRA alpha (default 2·r)")
		rslora    = fs.Bool("use-rslora", false, "scale by alpha/sqrt(r) instead of alpha/r")
		targets   = fs.String("target-modules", "q_proj,v_proj", `comma-separated projections, or "all-linear"`)
		dropout   = fs.Float64("lora-dropout", 0, "LoRA dropout")
		lr        = fs.Float64("lr", d.LR, "peak learning rate")
		wd        = fs.Float64("weight-decay", 0, "AdamW decoupled weight decay")
		warmup    = fs.Int("warmup", 0, "warm-up steps")
		schedule  = fs.String("schedule", d.Schedule, "learning rate decay: cosine, linear or constant")
		clip      = fs.Float64("clip", 1, "clip gradients to this global norm (0: off)")
		epochs    = fs.Int("epochs", d.Epochs, "passes over the training data")
		maxSteps  = fs.Int("max-steps", 0, "stop after this many optimizer steps (0: epochs decide)")
		batch     = fs.Int("batch-size", d.BatchSize, "examples per micro-batch (packed)")
		accum     = fs.Int("grad-accum", d.GradAccum, "micro-batches per optimizer step")
		maxLen    = fs.Int("max-seq-len", 0, "longest example in tokens (default: the model's context length)")
		truncate  = fs.Bool("truncate", false, "cut examples longer than --max-seq-len instead of refusing them")
		noShuffle = fs.Bool("no-shuffle", false, "keep the data order")
		seed      = fs.Uint64("seed", 0, "random seed (init, shuffling, dropout)")
		threads   = fs.Int("threads", 0, "worker threads (0: one per core)")
		evalEvery = fs.Int("eval-every", 0, "evaluate every N steps (0: only at start and end)")
		ckptDir   = fs.String("checkpoint-dir", "", "write checkpoints here")
		ckptEvery = fs.Int("checkpoint-every", 0, "checkpoint every N steps")
		resume    = fs.String("resume", "", "resume from this checkpoint directory")
		quiet     = fs.Bool("quiet", false, "no progress lines")
		serverURL = fs.String("server", "", "send the job to the Switchyard server at this URL instead of training here; --model is then the server's base model name (default: its base model)")
		suffix    = fs.String("suffix", "", "with --server: a suffix for the fine-tuned model's name")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("train: unexpected argument %q", fs.Arg(0))
	}
	if *serverURL != "" {
		return trainRemote(ctx, fs, *serverURL, *suffix, stdout, stderr)
	}
	if *dataPath == "" || *outDir == "" {
		return errors.New("train: --data and --out are required")
	}
	opts := train.Options{Rank: *rank, Alpha: *alpha, RSLoRA: *rslora, Dropout: *dropout, LR: *lr, WeightDecay: *wd,
		Warmup: *warmup, Schedule: *schedule, ClipNorm: *clip, Epochs: *epochs, MaxSteps: *maxSteps, BatchSize: *batch,
		GradAccum: *accum, Shuffle: !*noShuffle, Seed: *seed, Threads: *threads, EvalEvery: *evalEvery,
		CheckpointDir: *ckptDir, CheckpointEvery: *ckptEvery, ResumeFrom: *resume}
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			opts.Targets = append(opts.Targets, t)
		}
	}
	// Hyperparameters are checked before the model is even loaded.
	if err := opts.Validate(); err != nil {
		return err
	}

	path := *modelPath
	if path == "" {
		var err error
		if path, err = defaultModel(); err != nil {
			return err
		}
	}
	m, err := model.Load(path, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := engine.LoadTokenizer(m, path)
	if err != nil {
		return err
	}
	if tok == nil {
		return fmt.Errorf("train: %s has no tokenizer to read the data with", path)
	}
	limit := *maxLen
	if limit == 0 {
		limit = m.Config.MaxPositions
	}
	trainSet, err := train.ReadExamples(*dataPath, tok, limit, *truncate)
	if err != nil {
		return err
	}
	var evalSet []train.Example
	if *evalPath != "" {
		if evalSet, err = train.ReadExamples(*evalPath, tok, limit, *truncate); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "train: %d examples (%d eval) from %s, model %s\n", len(trainSet), len(evalSet), *dataPath, path)
	if !*quiet {
		opts.Progress = func(p train.Progress) {
			if p.Eval {
				fmt.Fprintf(stderr, "step %d/%d  eval loss %.4f\n", p.Step, p.Steps, p.EvalLoss)
				return
			}
			fmt.Fprintf(stderr, "step %d/%d  epoch %.2f  loss %.4f  lr %.3g  grad norm %.3g  %.0f tok/s  eta %v\n",
				p.Step, p.Steps, p.Epoch, p.Loss, p.LR, p.GradNorm, p.TokensPerSec, p.ETA.Round(time.Second))
		}
	}
	ad, rep, err := train.Train(ctx, m, trainSet, evalSet, opts)
	if err != nil {
		return err
	}
	base, _ := filepath.Abs(path)
	if err := train.SavePEFT(*outDir, ad, opts, base); err != nil {
		return err
	}
	if *ggufOut != "" {
		if err := train.SaveGGUF(*ggufOut, ad, &m.Config); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "GGUF LoRA written to %s\n", *ggufOut)
	}
	fmt.Fprintf(stdout, "trained %d steps on %d tokens in %v (%.0f tokens/s), %d trainable parameters\n",
		rep.Steps, rep.Tokens, rep.Duration.Round(time.Millisecond), rep.TokensPerSec, rep.Params)
	fmt.Fprintf(stdout, "train loss %.4f -> %.4f\n", rep.LossFirst, rep.LossLast)
	if !math.IsNaN(rep.EvalLossFirst) {
		fmt.Fprintf(stdout, "eval loss %.4f -> %.4f\n", rep.EvalLossFirst, rep.EvalLossLast)
	}
	fmt.Fprintf(stdout, "adapter written to %s\n", *outDir)
	return nil
}

// remoteFlags are the train flags a server's fine-tuning job takes.
var remoteFlags = map[string]bool{"server": true, "suffix": true, "model": true, "data": true, "eval": true, "r": true,
	"lora-alpha": true, "use-rslora": true, "target-modules": true, "lora-dropout": true, "lr": true, "epochs": true,
	"max-steps": true, "batch-size": true, "seed": true, "quiet": true}

// trainRemote is "switchyard train --server URL": it uploads the data,
// creates a fine-tuning job on the server, prints its events as progress
// lines and, when it succeeds, the fine-tuned model's name. Interrupted,
// it cancels the job.
func trainRemote(ctx context.Context, fs *flag.FlagSet, url, suffix string, stdout, stderr io.Writer) error {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !remoteFlags[f.Name] {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("train: %s cannot be used with --server", strings.Join(bad, ", "))
	}
	flagValue := func(name string) string { return fs.Lookup(name).Value.String() }
	flagInt := func(name string) int { n, _ := strconv.Atoi(flagValue(name)); return n }
	flagFloat := func(name string) float64 { f, _ := strconv.ParseFloat(flagValue(name), 64); return f }
	dataPath, evalPath := flagValue("data"), flagValue("eval")
	if dataPath == "" {
		return errors.New("train: --data is required")
	}
	c := client.New(url, nil)
	base := flagValue("model")
	if base == "" {
		var err error
		if base, err = c.BaseModel(ctx); err != nil {
			return fmt.Errorf("train: %s: %w", url, err)
		}
	}
	upload := func(path string) (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("train: %w", err)
		}
		defer f.Close()
		up, err := c.UploadFile(ctx, filepath.Base(path), f)
		if err != nil {
			return "", fmt.Errorf("train: uploading %s: %w", path, err)
		}
		return up.ID, nil
	}
	req := client.JobRequest{Model: base, Suffix: suffix,
		Hyperparameters: client.Hyperparameters{NEpochs: flagInt("epochs"), BatchSize: flagInt("batch-size"),
			LearningRateMultiplier: flagFloat("lr") / train.Defaults().LR, MaxSteps: flagInt("max-steps")},
		LoRA: client.LoRA{R: flagInt("r"), LoRAAlpha: flagFloat("lora-alpha"), UseRSLoRA: flagValue("use-rslora") == "true",
			LoRADropout: flagFloat("lora-dropout")}}
	seed, _ := strconv.ParseInt(flagValue("seed"), 10, 64)
	req.Seed = &seed
	for _, t := range strings.Split(flagValue("target-modules"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.LoRA.TargetModules = append(req.LoRA.TargetModules, t)
		}
	}
	var err error
	if req.TrainingFile, err = upload(dataPath); err != nil {
		return err
	}
	if evalPath != "" {
		if req.ValidationFile, err = upload(evalPath); err != nil {
			return err
		}
	}
	job, err := c.CreateJob(ctx, req)
	if err != nil {
		return fmt.Errorf("train: creating the job: %w", err)
	}
	fmt.Fprintf(stderr, "train: job %s on %s at %s\n", job.ID, base, url)
	quiet := flagValue("quiet") == "true"
	done, err := c.WatchJob(ctx, job.ID, func(ev client.JobEvent) {
		if !quiet {
			fmt.Fprintln(stderr, remoteProgress(ev))
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, cerr := c.CancelJob(cctx, job.ID); cerr == nil {
				fmt.Fprintf(stderr, "train: job %s cancelled\n", job.ID)
			}
		}
		return fmt.Errorf("train: job %s: %w", job.ID, err)
	}
	switch done.Status {
	case "succeeded":
		fmt.Fprintf(stderr, "train: job %s succeeded on %d tokens; the server serves its model as:\n", done.ID, done.TrainedTokens)
		fmt.Fprintln(stdout, done.FineTunedModel)
		return nil
	case "failed":
		msg := "unknown error"
		if done.Error != nil {
			msg = done.Error.Message
		}
		return fmt.Errorf("train: job %s failed: %s", done.ID, msg)
	}
	return fmt.Errorf("train: job %s was %s", done.ID, done.Status)
}

// remoteProgress formats a job event as a progress line: a step's
// metrics as the local progress lines are, other events as their
// message.
func remoteProgress(ev client.JobEvent) string {
	num := func(k string) float64 { f, _ := ev.Data[k].(float64); return f }
	if _, ok := ev.Data["train_loss"]; ok {
		return fmt.Sprintf("step %d/%d  epoch %.2f  loss %.4f  lr %.3g  %.0f tok/s  eta %v",
			int(num("step")), int(num("total_steps")), num("epoch"), num("train_loss"), num("learning_rate"),
			num("tokens_per_second"), (time.Duration(num("eta_seconds") * float64(time.Second))).Round(time.Second))
	}
	if _, ok := ev.Data["valid_loss"]; ok {
		return fmt.Sprintf("step %d/%d  eval loss %.4f", int(num("step")), int(num("total_steps")), num("valid_loss"))
	}
	return ev.Message
}
