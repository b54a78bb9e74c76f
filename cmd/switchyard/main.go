// Command switchyard finetunes and serves LoRA variants of one base model.
//
// Usage:
//
//	switchyard                  (the demo: finetune, serve and switch on the default model)
//	switchyard generate [--model PATH] [--adapter PATH] (--prompt TEXT | --prompt-ids 1,2,3) [flags]
//	switchyard generate [--model PATH] --batch FILE.jsonl [--logits]
//	switchyard train [--model PATH] --data FILE.jsonl [--eval FILE.jsonl] --out DIR [flags]
//	switchyard serve --model PATH [--name NAME] [--addr HOST:PORT] [--adapter NAME=URI]...
//	switchyard bench [--model PATH] | switchyard bench serve [flags]
//
// Without --model, the TinyStories 260K model from ../shared/models (or
// $SWITCHYARD_MODEL) is used.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
)

const usage = `switchyard: finetune and serve thousands of LoRA variants of one base model

Commands:
  demo       (the default) finetune three adapters on the default model, serve them and compare
  generate   generate text with a model and an optional adapter
  serve      serve the OpenAI-compatible HTTP API for a model and its adapters
  train      finetune a LoRA adapter on a JSONL dataset
  bench      measure prefill and decode speed, with and without adapters
             (bench serve: a load test of a running server)

Run "switchyard COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchyard:", err)
		}
		os.Exit(1)
	}
}

// run executes one command line; main is a thin shell around it so tests
// can drive the whole CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		args = []string{"demo"}
	}
	switch args[0] {
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "generate":
		return runGenerate(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "train":
		return runTrain(ctx, args[1:], stdout, stderr)
	case "bench":
		if len(args) > 1 && args[1] == "serve" {
			return runBenchServe(ctx, args[2:], stdout, stderr)
		}
		return runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// defaultModel finds the embedded default model: $SWITCHYARD_MODEL, or the
// TinyStories 260K GGUF under ../shared/models (looked for from the
// working directory up).
func defaultModel() (string, error) {
	if p := os.Getenv("SWITCHYARD_MODEL"); p != "" {
		return p, nil
	}
	rel := filepath.Join("shared", "models", "stories260K", "stories260K-f32.gguf")
	if shared := os.Getenv("SWITCHYARD_SHARED"); shared != "" {
		return filepath.Join(shared, "models", "stories260K", "stories260K-f32.gguf"), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		for _, p := range []string{filepath.Join(dir, rel), filepath.Join(dir, "..", rel)} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no --model given and the default model (../shared/models/stories260K) was not found; set --model or SWITCHYARD_MODEL")
		}
		dir = parent
	}
}
