package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/model/testmodel"
	"github.com/switchyard-ai/switchyard/train"
)

// serveBenchRow is one line of the bench serve table.
type serveBenchRow struct {
	Streams   int     `json:"streams"` // concurrent streaming requests
	Mode      string  `json:"mode"`    // "base" or "adapters" (one distinct adapter per stream)
	Tokens    int     `json:"tokens"`  // completion tokens received
	Seconds   float64 `json:"seconds"` // wall time of the round
	TokPerS   float64 `json:"tokens_per_s"`
	TTFTp50MS float64 `json:"ttft_p50_ms"` // time to first token, median
	TTFTp99MS float64 `json:"ttft_p99_ms"`
}

// runBenchServe measures an HTTP server under load: N concurrent
// streaming completions on the base model, then N on N distinct
// adapters. Without --url it starts a server in this process on the
// SmolLM2-135M-shaped test model with random adapters, and drives it
// over real HTTP on the loopback interface.
func runBenchServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		urlFlag   = fs.String("url", "", "server to measure (default: start one in-process)")
		base      = fs.String("base", "", "with --url: the base model's name")
		names     = fs.String("adapters", "", "with --url: comma-separated adapter names, at least the largest N")
		modelPath = fs.String("model", "", "without --url: the model (default: a random SmolLM2-135M-shaped F16 GGUF, written once to the cache dir)")
		rank      = fs.Int("rank", 8, "without --url: rank of the random q_proj+v_proj adapters")
		levels    = fs.String("streams", "1,4,16,64", "comma-separated numbers of concurrent streams")
		prompt    = fs.Int("prompt-tokens", 64, "prompt tokens per request")
		maxTokens = fs.Int("max-tokens", 32, "tokens generated per request")
		format    = fs.String("format", "table", "output: table or json")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("bench serve: --format must be table or json, not %q", *format)
	}
	var ns []int
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bench serve: --streams: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	maxN := slices.Max(ns)
	vocab := 0
	var adapterNames []string
	if *urlFlag == "" {
		if *modelPath == "" {
			dir := filepath.Join(cacheDir(), "models")
			fmt.Fprintln(stderr, "bench serve: preparing the SmolLM2-135M-shaped test model in", dir)
			_, f16, _, err := testmodel.WriteSmolLM2Files(dir)
			if err != nil {
				return err
			}
			*modelPath = f16
		}
		cfg, err := modelConfig(*modelPath)
		if err != nil {
			return err
		}
		vocab = cfg.Vocab
		var specs []string
		for i := range maxN {
			dir, err := writeBenchAdapter(cfg, *rank, uint64(i+1), *modelPath)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("bench%d", i+1)
			adapterNames = append(adapterNames, name)
			specs = append(specs, name+"="+dir)
		}
		fmt.Fprintf(stderr, "bench serve: starting a server with %d adapters\n", maxN)
		rs, err := startServer(ctx, serveOptions{modelPath: *modelPath, name: "base", addr: "127.0.0.1:0", adapters: specs,
			sched: engine.SchedulerOptions{MaxSeqs: max(64, maxN), MaxQueue: 4 * maxN},
			tier0: 4 << 30, tier1: 1 << 30, log: slog.New(slog.DiscardHandler), maxRequestBytes: 8 << 20})
		if err != nil {
			return err
		}
		defer rs.shutdown(5 * time.Second)
		*urlFlag, *base = rs.URL, rs.Name
	} else {
		if *base == "" {
			return errors.New("bench serve: --url needs --base")
		}
		adapterNames = strings.Split(*names, ",")
		if *names == "" || len(adapterNames) < maxN {
			return fmt.Errorf("bench serve: --url needs --adapters with at least %d names", maxN)
		}
		vocab = 256 // token ids every vocabulary has
	}
	url := strings.TrimSuffix(*urlFlag, "/")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * maxN}}

	rng := rand.New(rand.NewPCG(1, 2))
	promptIDs := func() []int {
		p := make([]int, *prompt)
		for i := range p {
			p[i] = 1 + rng.IntN(vocab-1)
		}
		return p
	}
	// round runs n concurrent streams, on the base model or on n distinct
	// adapters.
	round := func(n int, mode string) (serveBenchRow, error) {
		prompts := make([][]int, n)
		for i := range prompts {
			prompts[i] = promptIDs()
		}
		ttfts := make([]time.Duration, n)
		tokens := make([]int, n)
		errs := make([]error, n)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			model := *base
			if mode == "adapters" {
				model = adapterNames[i]
			}
			wg.Go(func() {
				var r streamResult
				r, errs[i] = streamCompletion(ctx, client, url, model, prompts[i], *maxTokens)
				ttfts[i], tokens[i] = r.ttft, r.tokens
			})
		}
		wg.Wait()
		wall := time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return serveBenchRow{}, fmt.Errorf("bench serve: %d streams on %s: %w", n, mode, err)
		}
		row := serveBenchRow{Streams: n, Mode: mode, Seconds: wall.Seconds()}
		for _, t := range tokens {
			row.Tokens += t
		}
		row.TokPerS = float64(row.Tokens) / wall.Seconds()
		slices.Sort(ttfts)
		row.TTFTp50MS = percentile(ttfts, 0.50)
		row.TTFTp99MS = percentile(ttfts, 0.99)
		return row, nil
	}

	// Warm up, untimed: load every adapter, then run the largest round
	// once, so connections, adapters and KV cache memory are all in place
	// before the first measurement.
	for _, name := range adapterNames[:maxN] {
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/adapters/"+name+"/prefetch", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	fmt.Fprintf(stderr, "bench serve: warming up with %d streams\n", maxN)
	if _, err := round(maxN, "adapters"); err != nil {
		return fmt.Errorf("bench serve: warm-up: %w", err)
	}

	var rows []serveBenchRow
	for _, n := range ns {
		for _, mode := range []string{"base", "adapters"} {
			if err := ctx.Err(); err != nil {
				return err
			}
			row, err := round(n, mode)
			if err != nil {
				return err
			}
			rows = append(rows, row)
			fmt.Fprintf(stderr, "bench serve: %d streams, %s: %.1f tok/s\n", n, mode, row.TokPerS)
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"url": url, "prompt_tokens": *prompt, "max_tokens": *maxTokens, "rows": rows})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "streams\tmodel\ttokens\ttokens/s\tTTFT p50 ms\tTTFT p99 ms\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f\t%.1f\t%.1f\t\n", r.Streams, r.Mode, r.Tokens, r.TokPerS, r.TTFTp50MS, r.TTFTp99MS)
	}
	return tw.Flush()
}

// percentile returns the q-quantile of sorted durations in milliseconds
// (nearest rank).
func percentile(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// streamResult is what one streaming request measured.
type streamResult struct {
	ttft   time.Duration // from sending the request to the first token
	tokens int
}

// streamCompletion sends one greedy streaming completion and reads its
// events to the end.
func streamCompletion(ctx context.Context, client *http.Client, url, model string, prompt []int, maxTokens int) (streamResult, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens, "temperature": 0,
		"stream": true, "ignore_eos": true, "stream_options": map[string]bool{"include_usage": true}})
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return streamResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return streamResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return streamResult{}, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	var r streamResult
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return r, nil
		}
		var chunk struct {
			Choices []struct {
				TokenIDs []int `json:"token_ids"`
			} `json:"choices"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return r, err
		}
		if chunk.Error != nil {
			return r, errors.New(chunk.Error.Message)
		}
		for _, c := range chunk.Choices {
			if len(c.TokenIDs) > 0 && r.tokens == 0 {
				r.ttft = time.Since(start)
			}
			r.tokens += len(c.TokenIDs)
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	return r, errors.New("the stream ended without [DONE]")
}

// modelConfig reads a model's configuration without keeping it loaded.
func modelConfig(path string) (*model.Config, error) {
	m, err := model.Load(path, nil)
	if err != nil {
		return nil, err
	}
	cfg := m.Config
	m.Close()
	return &cfg, nil
}

// writeBenchAdapter writes (once, into the cache dir) a random PEFT
// adapter (lora.Random) of the given rank on q_proj and v_proj for the
// model at modelPath, and returns its directory.
func writeBenchAdapter(cfg *model.Config, rank int, seed uint64, modelPath string) (string, error) {
	dir := filepath.Join(cacheDir(), "adapters", fmt.Sprintf("%s-r%d-%d", modelName(modelPath), rank, seed))
	// SavePEFT writes the config last, so a directory with it is complete
	// (and with the weights too: an older version wrote them last).
	_, errConf := os.Stat(filepath.Join(dir, peft.ConfigFile))
	_, errWeights := os.Stat(filepath.Join(dir, "adapter_model.safetensors"))
	if errConf == nil && errWeights == nil {
		return dir, nil
	}
	a := lora.Random(cfg, rank, []model.Module{model.ModQ, model.ModV}, kernels.F32, seed)
	return dir, train.SavePEFT(dir, a, train.Options{Rank: rank}, modelName(modelPath))
}
