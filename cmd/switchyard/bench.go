package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/switchyard-ai/switchyard/internal/hugepages"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/model/testmodel"
)

// benchRow is one line of the bench table.
type benchRow struct {
	Phase    string  `json:"phase"`    // prefill or decode
	Seqs     int     `json:"seqs"`     // sequences in the batch
	Adapters string  `json:"adapters"` // none, one (shared) or distinct (one per sequence)
	Tokens   int     `json:"tokens"`   // tokens processed
	TokPerS  float64 `json:"tokens_per_s"`
	GBPerS   float64 `json:"weight_gb_per_s"`       // weight bytes read per second (one pass per step)
	KVGBPerS float64 `json:"kv_gb_per_s,omitempty"` // decode: KV cache bytes attention reads per second
	GFLOPS   float64 `json:"gflop_per_s"`           // 2·params per token, attention excluded
}

// benchReport is the whole result of switchyard bench.
type benchReport struct {
	Model        string  `json:"model"`
	WeightBytes  int64   `json:"weight_bytes"`          // read by one decode step (Weights.StepBytes)
	KVBytes      int64   `json:"kv_bytes_per_position"` // keys and values of one position, all layers
	Kernels      string  `json:"kernels"`
	KVCache      string  `json:"kv_cache_dtype"`
	Threads      int     `json:"threads"`
	StreamGBPerS float64 `json:"machine_stream_read_gb_per_s"`
	// StreamHugePages is whether the read's buffer, like the weights
	// model.Load copies, is mapped in huge pages (hugepages.Region.Huge).
	StreamHugePages bool       `json:"machine_stream_read_huge_pages"`
	PeakGFLOPS      float64    `json:"machine_f32_matmul_gflop_per_s"`
	Rows            []benchRow `json:"rows"`
	// InTurn is one-sequence decode against the streaming read, the two
	// measured in turn (see decodeInTurn).
	InTurn inTurn `json:"decode_in_turn_with_stream"`
	// Distinct is 8 sequences on 8 adapters against the same 8 on the
	// base model, the two measured in turn (see distinctInTurn).
	Distinct distinctTurns `json:"distinct_adapters_in_turn_with_base"`
}

// distinctTurns is the median, over pairs of a few decode steps of 8
// sequences on the base model and as many on 8 distinct adapters, of the
// adapters' tokens/s over the base's.
type distinctTurns struct {
	Pairs int     `json:"pairs"`
	Steps int     `json:"steps_per_pair"`
	Ratio float64 `json:"ratio"`
}

// inTurn is the median, over pairs of a few decode steps and a streaming
// read right after them, of decode's bytes per second over the read's.
type inTurn struct {
	Pairs       int     `json:"pairs"`
	Steps       int     `json:"steps_per_pair"`
	WeightShare float64 `json:"weight_share"`  // weight bytes
	WithKVShare float64 `json:"with_kv_share"` // weight and KV cache bytes
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		modelPath = fs.String("model", "", "model to measure (default: a random SmolLM2-135M-shaped F16 GGUF, written once to the cache dir)")
		prompt    = fs.Int("prompt-tokens", 512, "prefill tokens per sequence")
		steps     = fs.Int("decode-steps", 32, "decode steps to time")
		rank      = fs.Int("rank", 8, "rank of the q_proj+v_proj adapters")
		threads   = fs.Int("threads", 0, "worker threads (0: one per core)")
		format    = fs.String("format", "table", "output: table or json")
		reps      = fs.Int("reps", 3, "measure every row this many times, in turn, and keep the best")
		profile   = fs.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
		kvDType   kvCacheDType
	)
	fs.Var(&kvDType, "kv-cache-dtype", kvCacheDTypeUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("bench: --format must be table or json, not %q", *format)
	}
	if *prompt < 1 || *steps < 1 || *rank < 1 || *reps < 1 {
		return fmt.Errorf("bench: --prompt-tokens, --decode-steps, --rank and --reps must be positive")
	}
	if *modelPath == "" {
		dir := filepath.Join(cacheDir(), "models")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "bench: preparing the SmolLM2-135M-shaped test model in", dir)
		_, f16, _, err := testmodel.WriteSmolLM2Files(dir)
		if err != nil {
			return err
		}
		*modelPath = f16
	}
	pool := kernels.NewPool(*threads)
	defer pool.Close()
	m, err := model.Load(*modelPath, pool)
	if err != nil {
		return err
	}
	defer m.Close()
	kvDType.apply(m)
	c := &m.Config
	if c.MaxPositions > 0 && *prompt+*steps > c.MaxPositions {
		return fmt.Errorf("bench: %d prompt + %d decode tokens exceed the context (%d)", *prompt, *steps, c.MaxPositions)
	}

	rep := benchReport{Model: *modelPath, WeightBytes: m.Weights.StepBytes(), KVBytes: m.KVBlockBytes(1), Kernels: kernels.Impl(),
		Threads: pool.Threads(), KVCache: strings.ToLower(m.KVDType.String())}
	rep.PeakGFLOPS = measurePeak(pool)
	stream := newStreamRead(pool)
	defer stream.Close()
	rep.StreamHugePages = stream.mem.Huge()
	params := float64(c.Layers)*float64(c.Hidden*(2*c.Heads*c.HeadDim+2*c.KVHeads*c.HeadDim)+3*c.Hidden*c.Intermediate) + float64(c.Vocab*c.Hidden)

	adapters := make([]*lora.Adapter, 8)
	for i := range adapters {
		adapters[i] = lora.Random(c, *rank, []model.Module{model.ModQ, model.ModV}, kernels.BF16, uint64(i+1))
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Every row is measured reps times, the rows taking turns, and the
	// best of each is kept: noise from other work on the machine only
	// ever slows a run down, and taking turns exposes every row to the
	// same drift. The streaming read takes its turn too, so that the
	// bandwidth the decode rows are compared with is the best of the same
	// stretch of time, and it reads for as long as the one-sequence
	// decode row took, as that row's rate is an average over its steps
	// (the best single 13 ms pass ran 6-15% above a 2 s average here).
	batch := lora.NewBatch(pool)
	for r := range *reps {
		var window time.Duration // the one-sequence decode row's time
		row := 0
		for _, seqs := range []int{1, 8} {
			for _, mode := range []string{"none", "one", "distinct"} {
				if seqs == 1 && mode == "distinct" {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				prefill, decode, err := benchOnce(m, batch, seqs, adapterFunc(mode, adapters), *prompt, *steps)
				if err != nil {
					return err
				}
				if seqs == 1 && mode == "none" {
					window = time.Duration(decode * float64(time.Second))
				}
				pn, dn := seqs**prompt, seqs**steps
				// Decode step s attends over prompt+s+1 positions of
				// each sequence.
				kvRead := float64(seqs) * float64(*steps*(*prompt+1)+*steps*(*steps-1)/2) * float64(rep.KVBytes)
				rows := []benchRow{
					{Phase: "prefill", Seqs: seqs, Adapters: mode, Tokens: pn, TokPerS: float64(pn) / prefill,
						GBPerS: float64(rep.WeightBytes) / prefill / 1e9, GFLOPS: 2 * params * float64(pn) / prefill / 1e9},
					{Phase: "decode", Seqs: seqs, Adapters: mode, Tokens: dn, TokPerS: float64(dn) / decode,
						GBPerS: float64(rep.WeightBytes) * float64(*steps) / decode / 1e9, KVGBPerS: kvRead / decode / 1e9,
						GFLOPS: 2 * params * float64(dn) / decode / 1e9},
				}
				for _, b := range rows {
					if r == 0 {
						rep.Rows = append(rep.Rows, b)
					} else if b.TokPerS > rep.Rows[row].TokPerS {
						rep.Rows[row] = b
					}
					row++
				}
			}
		}
		rep.StreamGBPerS = max(rep.StreamGBPerS, stream.measure(window))
	}
	if rep.InTurn, err = decodeInTurn(ctx, m, stream, *prompt, min(*steps, 8), 8*(*reps)); err != nil {
		return err
	}
	if rep.Distinct, err = distinctInTurn(ctx, m, batch, adapters, *prompt, min(*steps, 8), 8*(*reps)); err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "model %s: %.1f MB of weights read per decode step, %s kernels, %d threads, %s KV cache\n",
		rep.Model, float64(rep.WeightBytes)/1e6, rep.Kernels, rep.Threads, rep.KVCache)
	pages := "ordinary pages"
	if rep.StreamHugePages {
		pages = "huge pages"
	}
	fmt.Fprintf(stdout, "machine: streaming read %.1f GB/s (%s), f32 matmul %.1f GFLOP/s\n\n", rep.StreamGBPerS, pages, rep.PeakGFLOPS)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tseqs\tadapters\ttokens\ttok/s\tweight GB/s\tof stream\tKV GB/s\twith KV\tGFLOP/s\tof peak\t")
	for _, r := range rep.Rows {
		kv, withKV := "-", "-"
		if r.Phase == "decode" {
			kv, withKV = fmt.Sprintf("%.2f", r.KVGBPerS), fmt.Sprintf("%.0f%%", 100*(r.GBPerS+r.KVGBPerS)/rep.StreamGBPerS)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.1f\t%.2f\t%.0f%%\t%s\t%s\t%.1f\t%.0f%%\t\n", r.Phase, r.Seqs, r.Adapters, r.Tokens, r.TokPerS,
			r.GBPerS, 100*r.GBPerS/rep.StreamGBPerS, kv, withKV, r.GFLOPS, 100*r.GFLOPS/rep.PeakGFLOPS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\none sequence, %d decode steps and then the streaming read, %d times in turn: the steps read\n"+
		"the weights at %.0f%% of the read's rate (median), weights and KV cache at %.0f%%\n",
		rep.InTurn.Steps, rep.InTurn.Pairs, 100*rep.InTurn.WeightShare, 100*rep.InTurn.WithKVShare)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "8 sequences, %d decode steps on 8 distinct adapters and as many on the base model, %d times in\n"+
		"turn: %.2fx the base model's tokens/s (median)\n", rep.Distinct.Steps, rep.Distinct.Pairs, rep.Distinct.Ratio)
	return err
}

// adapterFunc returns the adapter of sequence i in a bench mode: none,
// one shared by all, or a distinct one per sequence.
func adapterFunc(mode string, adapters []*lora.Adapter) func(i int) *lora.Adapter {
	return func(i int) *lora.Adapter {
		switch mode {
		case "one":
			return adapters[0]
		case "distinct":
			return adapters[i]
		}
		return nil
	}
}

// benchOnce prefills seqs sequences of prompt tokens in one batch, then
// decodes steps tokens for all of them, one batch per step, and returns
// the seconds each phase took.
func benchOnce(m *model.Model, batch *lora.Batch, seqs int, adapterOf func(int) *lora.Adapter, prompt, steps int) (prefill, decode float64, err error) {
	c := &m.Config
	seqList := make([]model.Seq, seqs)
	batch.Reset()
	for i := range seqList {
		p := benchPrompt(c, i, prompt)
		seqList[i] = model.Seq{Cache: m.NewCache(prompt + steps), Tokens: p}
		batch.Add(adapterOf(i), len(p))
	}
	start := time.Now()
	if _, err := m.Forward(seqList, batch); err != nil {
		return 0, 0, err
	}
	prefill = time.Since(start).Seconds()
	start = time.Now()
	for s := range steps {
		batch.Reset()
		for i := range seqList {
			seqList[i].Tokens = []int{(s*7 + i) % c.Vocab}
			batch.Add(adapterOf(i), 1)
		}
		if _, err := m.Forward(seqList, batch); err != nil {
			return 0, 0, err
		}
	}
	return prefill, time.Since(start).Seconds(), nil
}

// benchPrompt returns the made-up prompt of n tokens of sequence i.
func benchPrompt(c *model.Config, i, n int) []int {
	p := make([]int, n)
	for j := range p {
		p[j] = (i*131 + j*31 + 1) % c.Vocab
	}
	return p
}

// decodeInTurn measures one sequence's decode against the streaming read
// with the two in turn: pairs times, steps decode steps at a context of
// prompt to prompt+steps positions, then one read (two passes), each
// pair giving the decode's rates over the read's. The table's "of
// stream" sets the best decode row against the best read, which this
// shared machine moves by up to 10-20% between runs; a drift slows both
// halves of a pair alike, so the pairs' median moves less.
func decodeInTurn(ctx context.Context, m *model.Model, stream *streamRead, prompt, steps, pairs int) (inTurn, error) {
	c := &m.Config
	seq := []model.Seq{{Cache: m.NewCache(prompt + steps), Tokens: benchPrompt(c, 0, prompt)}}
	if _, err := m.Forward(seq, nil); err != nil {
		return inTurn{}, err
	}
	kvBytes, weightBytes := float64(m.KVBlockBytes(1)), float64(m.Weights.StepBytes())
	weight, withKV := make([]float64, pairs), make([]float64, pairs)
	for i := range pairs {
		if err := ctx.Err(); err != nil {
			return inTurn{}, err
		}
		seq[0].Cache.Truncate(prompt)
		positions := 0 // attended over by the steps
		start := time.Now()
		for s := range steps {
			positions += seq[0].Cache.Len + 1
			seq[0].Tokens = []int{(i*7 + s) % c.Vocab}
			if _, err := m.Forward(seq, nil); err != nil {
				return inTurn{}, err
			}
		}
		sec := time.Since(start).Seconds()
		read := stream.measure(0) * 1e9
		weight[i] = float64(steps) * weightBytes / sec / read
		withKV[i] = (float64(steps)*weightBytes + float64(positions)*kvBytes) / sec / read
	}
	slices.Sort(weight)
	slices.Sort(withKV)
	return inTurn{Pairs: pairs, Steps: steps, WeightShare: weight[pairs/2], WithKVShare: withKV[pairs/2]}, nil
}

// distinctInTurn measures 8 sequences decoding on 8 distinct adapters
// against the same 8 on the base model with the two in turn: pairs
// times, steps decode steps of each at a context of prompt to
// prompt+steps positions, each pair giving the adapters' tokens/s over
// the base's. The table's rows are each the best of a few runs, and
// their ratio moved between 0.87x and 1.18x from run to run on a shared
// 2-core machine; a drift slows both halves of a pair alike.
func distinctInTurn(ctx context.Context, m *model.Model, batch *lora.Batch, adapters []*lora.Adapter, prompt, steps, pairs int) (distinctTurns, error) {
	c := &m.Config
	seqs := make([]model.Seq, len(adapters))
	for i := range seqs {
		seqs[i] = model.Seq{Cache: m.NewCache(prompt + steps), Tokens: benchPrompt(c, i, prompt)}
	}
	if _, err := m.Forward(seqs, nil); err != nil {
		return distinctTurns{}, err
	}
	run := func(pair int, adapterOf func(int) *lora.Adapter) (float64, error) {
		for i := range seqs {
			seqs[i].Cache.Truncate(prompt)
		}
		start := time.Now()
		for s := range steps {
			batch.Reset()
			for i := range seqs {
				seqs[i].Tokens = []int{(pair*7 + s + i) % c.Vocab}
				batch.Add(adapterOf(i), 1)
			}
			if _, err := m.Forward(seqs, batch); err != nil {
				return 0, err
			}
		}
		return time.Since(start).Seconds(), nil
	}
	ratios := make([]float64, pairs)
	for i := range pairs {
		if err := ctx.Err(); err != nil {
			return distinctTurns{}, err
		}
		// The two take turns going first, so that neither always
		// follows the other.
		var base, distinct float64
		for k := range 2 {
			var err error
			if (i+k)%2 == 0 {
				base, err = run(i, adapterFunc("none", adapters))
			} else {
				distinct, err = run(i, adapterFunc("distinct", adapters))
			}
			if err != nil {
				return distinctTurns{}, err
			}
		}
		ratios[i] = base / distinct // seconds for the same tokens: the adapters' tokens/s over the base's
	}
	slices.Sort(ratios)
	return distinctTurns{Pairs: pairs, Steps: steps, Ratio: ratios[pairs/2]}, nil
}

// streamRead is a plain read of 256 MiB split over a pool's workers: the
// ceiling for a memory-bound decode step. Its buffer is mapped as
// model.Load maps the weights it copies, in huge pages where the OS
// allows, so that the two are read through pages of one size: with 4 KiB
// pages the read ran 8% slower than with 2 MiB ones (both buffers taking
// turns in one process).
type streamRead struct {
	pool *kernels.Pool
	mem  *hugepages.Region
	buf  []float32
	sums []float32
}

func newStreamRead(p *kernels.Pool) *streamRead {
	const size = 256 << 20
	mem := hugepages.New(size)
	s := &streamRead{pool: p, mem: mem, buf: unsafe.Slice((*float32)(unsafe.Pointer(&mem.Take(size)[0])), size/4),
		sums: make([]float32, p.Threads())}
	for i := range s.buf {
		s.buf[i] = float32(i & 7) // faults the pages in
	}
	return s
}

// Close unmaps the buffer.
func (s *streamRead) Close() error { return s.mem.Close() }

// measure reads the buffer over and over for at least window (and at
// least twice) and returns the average rate in GB/s.
func (s *streamRead) measure(window time.Duration) float64 {
	read := func(w, lo, hi int) { s.sums[w] += kernels.Dot(s.buf[lo:hi], s.buf[lo:hi]) }
	start := time.Now()
	passes := 0
	for passes < 2 || time.Since(start) < window {
		s.pool.Parallel(len(s.buf), 4096, read)
		passes++
	}
	return float64(4*len(s.buf)) * float64(passes) / time.Since(start).Seconds() / 1e9
}

// measurePeak returns the GFLOP/s of an F32 MatMul whose operands stay in
// cache: the compute ceiling for prefill on these kernels.
func measurePeak(p *kernels.Pool) float64 {
	const rows, cols, n = 512, 512, 256
	w := make([]float32, rows*cols)
	x := make([]float32, n*cols)
	for i := range w {
		w[i] = float32(i%13) * 0.01
	}
	for i := range x {
		x[i] = float32(i%7) * 0.01
	}
	y := make([]float32, n*rows)
	mat := kernels.NewF32Matrix(rows, cols, w)
	best := 0.0
	for range 10 {
		start := time.Now()
		p.MatMul(y, x, mat, n)
		best = max(best, 2*rows*cols*n/time.Since(start).Seconds()/1e9)
	}
	return best
}

// cacheDir is where generated files are kept between runs:
// $SWITCHYARD_CACHE, or ~/.cache/switchyard.
func cacheDir() string {
	if d := os.Getenv("SWITCHYARD_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "switchyard")
	}
	return filepath.Join(os.TempDir(), "switchyard-cache")
}
