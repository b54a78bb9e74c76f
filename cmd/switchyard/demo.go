package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-ai/switchyard/client"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/train"
)

// demoAdapter is one variant the demo trains: its name, its dataset
// (examples/data/DATA_train.jsonl and _eval.jsonl) and a phrase its
// stories should now contain.
type demoAdapter struct{ name, data, marker string }

// demoAdapters are the variants the demo trains: each dataset in
// examples/data makes a visible change in how the model's stories go.
var demoAdapters = []demoAdapter{
	{"dragon", "dragon", "dragon"},
	{"moral", "moral", "moral of the story"},
	{"moon", "moon", "moon"},
}

// demoPrompts are held out from every training set.
var demoPrompts = []string{
	"Once upon a time, there was a little kid named Zoe. Zoe played in the garden with a ball.",
	"Once upon a time, there was a little kid named Leo. Leo was in the forest.",
}

// runDemo is the whole story on the default model: finetune three small
// adapters, serve them beside the base model from one server, and send
// each the same prompts, printing the outputs side by side with the time
// each adapter switch took.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "base model (default: TinyStories 260K from ../shared, or $SWITCHYARD_MODEL)")
	dataDir := fs.String("data", "", "directory with NAME_train.jsonl and NAME_eval.jsonl (default: examples/data of this repository)")
	steps := fs.Int("steps", 120, "training steps per adapter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" {
		p, err := defaultModel()
		if err != nil {
			return err
		}
		*modelPath = p
	}
	if *dataDir == "" {
		d, err := findUp(filepath.Join("examples", "data"))
		if err != nil {
			return fmt.Errorf("demo: %w; set --data", err)
		}
		*dataDir = d
	}
	outDir, err := os.MkdirTemp("", "switchyard-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(outDir)

	// 1. Finetune: one LoRA adapter per dataset on the frozen base.
	m, err := model.Load(*modelPath, nil)
	if err != nil {
		return err
	}
	tok, err := engine.LoadTokenizer(m, *modelPath)
	if err != nil || tok == nil {
		m.Close()
		return fmt.Errorf("demo: the model needs a tokenizer: %v", err)
	}
	fmt.Fprintf(stdout, "Switchyard demo: base model %s\n\n1. Finetune %d LoRA adapters (%d steps each)\n", filepath.Base(*modelPath), len(demoAdapters), *steps)
	var serveAdapters []string
	for _, d := range demoAdapters {
		trainSet, err := train.ReadExamples(filepath.Join(*dataDir, d.data+"_train.jsonl"), tok, 256, false)
		if err != nil {
			m.Close()
			return err
		}
		evalSet, err := train.ReadExamples(filepath.Join(*dataDir, d.data+"_eval.jsonl"), tok, 256, false)
		if err != nil {
			m.Close()
			return err
		}
		opts := train.Options{Rank: 8, Alpha: 16, Targets: []string{"all-linear"}, LR: 1e-2, MaxSteps: *steps, Epochs: 1000,
			BatchSize: 4, Warmup: 10, Schedule: "cosine", ClipNorm: 1, Seed: 7, Shuffle: true}
		opts.Progress = func(p train.Progress) {
			if !p.Eval && (p.Step == 1 || p.Step%40 == 0) && p.Step < p.Steps {
				fmt.Fprintf(stdout, "   %-7s step %3d/%d  loss %.3f  %5.0f tok/s  eta %4.1fs\n", d.name, p.Step, p.Steps, p.Loss, p.TokensPerSec, p.ETA.Seconds())
			}
		}
		a, rep, err := train.Train(ctx, m, trainSet, evalSet, opts)
		if err != nil {
			m.Close()
			return err
		}
		dir := filepath.Join(outDir, d.name)
		if err := train.SavePEFT(dir, a, opts, *modelPath); err != nil {
			m.Close()
			return err
		}
		fmt.Fprintf(stdout, "   %-7s %d steps in %.1fs: eval loss %.2f -> %.2f, %.1f KB adapter\n", d.name, rep.Steps,
			rep.Duration.Seconds(), rep.EvalLossFirst, rep.EvalLossLast, float64(a.Bytes)/1e3)
		serveAdapters = append(serveAdapters, d.name+"="+dir)
	}
	m.Close()

	// 2. Serve: one base model, every adapter beside it, one batch.
	fmt.Fprintf(stdout, "\n2. Serve the base model and the %d adapters from one server\n", len(demoAdapters))
	rs, err := startServer(ctx, serveOptions{modelPath: *modelPath, name: "base", addr: "127.0.0.1:0", adapters: serveAdapters,
		tier0: 256 << 20, tier1: 256 << 20, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer rs.shutdown(5 * time.Second)
	fmt.Fprintf(stdout, "   listening on %s\n", rs.URL)
	// Warm every adapter into the compute-ready tier, then time the
	// switch itself: acquiring a resident adapter for a request.
	switchTime := map[string]time.Duration{}
	for _, d := range demoAdapters {
		h, err := rs.cache.Acquire(ctx, d.name)
		if err != nil {
			return err
		}
		h.Release()
		const n = 10000
		start := time.Now()
		for range n {
			h, _ := rs.cache.Acquire(ctx, d.name)
			h.Release()
		}
		switchTime[d.name] = time.Since(start) / n
	}

	// 3. Ask every variant the same prompts, all at once.
	fmt.Fprintf(stdout, "\n3. The same prompts to each variant, sent concurrently (greedy, 48 tokens)\n")
	c := client.New(rs.URL, nil)
	models := append([]string{"base"}, names(demoAdapters)...)
	type answer struct {
		text    string
		latency time.Duration
		err     error
	}
	answers := make([][]answer, len(demoPrompts))
	done := make(chan struct{})
	for i, p := range demoPrompts {
		answers[i] = make([]answer, len(models))
		for j, mod := range models {
			go func() {
				start := time.Now()
				out, err := c.Complete(ctx, client.CompletionRequest{Model: mod, Prompt: p, MaxTokens: 48})
				a := answer{latency: time.Since(start), err: err}
				if err == nil {
					a.text = out.Text
				}
				answers[i][j] = a
				done <- struct{}{}
			}()
		}
	}
	for range len(demoPrompts) * len(models) {
		<-done
	}
	var errs []error
	var misses []string // adapters whose output lacks what they were trained to say
	for i, p := range demoPrompts {
		fmt.Fprintf(stdout, "\n   prompt: %q\n", p)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "   model\tswitch\trequest\toutput")
		for j, mod := range models {
			a := answers[i][j]
			if a.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", mod, a.err))
				continue
			}
			sw := "-"
			if t, ok := switchTime[mod]; ok {
				sw = fmt.Sprintf("%.2fµs", float64(t.Nanoseconds())/1e3)
			}
			fmt.Fprintf(tw, "   %s\t%s\t%dms\t%s\n", mod, sw, a.latency.Milliseconds(), oneLine(a.text))
			if i := slices.IndexFunc(demoAdapters, func(d demoAdapter) bool { return d.name == mod }); i >= 0 &&
				!strings.Contains(strings.ToLower(a.text), demoAdapters[i].marker) {
				misses = append(misses, mod)
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(stdout, "\n   switch: acquiring a resident adapter for a request (mean of 10,000); request: wall time of the whole HTTP request\n")
	if len(misses) > 0 {
		errs = append(errs, fmt.Errorf("demo: these adapters did not change the story as trained: %s", strings.Join(misses, ", ")))
	}
	return errors.Join(errs...)
}

func names(ds []demoAdapter) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.name)
	}
	return out
}

// oneLine flattens generated text for a table cell.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found from the working directory up", rel)
		}
		dir = parent
	}
}
