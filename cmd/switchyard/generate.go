package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// kvCacheDType is the --kv-cache-dtype flag: auto (the type Load picks,
// see model.Model.KVDType), f32 or f16.
type kvCacheDType string

const kvCacheDTypeUsage = "KV cache storage: auto (f32 for F32 models, f16 for the rest), f32 or f16"

func (k *kvCacheDType) String() string { return string(*k) }

func (k *kvCacheDType) Set(v string) error {
	switch v {
	case "auto", "f32", "f16":
		*k = kvCacheDType(v)
		return nil
	}
	return fmt.Errorf("must be auto, f32 or f16, not %q", v)
}

// apply sets m's KV cache type, unless the flag is auto (or unset).
func (k kvCacheDType) apply(m *model.Model) {
	switch k {
	case "f32":
		m.KVDType = kernels.F32
	case "f16":
		m.KVDType = kernels.F16
	}
}

// generateOutput is one result of --format json (and one --batch line).
type generateOutput struct {
	PromptIDs    []int     `json:"prompt_ids"`
	GeneratedIDs []int     `json:"generated_ids"`
	Text         string    `json:"text"`
	FinishReason string    `json:"finish_reason"`
	LastLogits   []float32 `json:"last_logits,omitempty"`
}

// batchLine is one line of a --batch file.
type batchLine struct {
	PromptIDs   []int    `json:"prompt_ids"`
	Prompt      *string  `json:"prompt"`
	Adapter     *string  `json:"adapter"`
	MaxTokens   *int     `json:"max_tokens"`
	Temperature *float32 `json:"temperature"`
	Seed        *uint64  `json:"seed"`
}

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		modelPath   = fs.String("model", "", "Hugging Face model dir or .gguf file (default: TinyStories 260K from ../shared, or $SWITCHYARD_MODEL)")
		adapterPath = fs.String("adapter", "", "LoRA adapter: a PEFT dir or a GGUF LoRA file")
		prompt      = fs.String("prompt", "", "prompt text, tokenized as the model's tokenizer says (BOS included where it says so)")
		promptIDs   = fs.String("prompt-ids", "", "prompt as comma-separated token ids, used as given")
		batchFile   = fs.String("batch", "", "JSONL file: one request per line, all run together as one batch")
		maxTokens   = fs.Int("max-tokens", 256, "tokens to generate at most")
		temperature = fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
		topK        = fs.Int("top-k", 0, "sample from the k most likely tokens (0: off)")
		topP        = fs.Float64("top-p", 1, "nucleus sampling probability mass (1: off)")
		minP        = fs.Float64("min-p", 0, "drop tokens below min-p times the top probability (0: off)")
		repeat      = fs.Float64("repeat-penalty", 1, "repetition penalty (1: off)")
		freq        = fs.Float64("frequency-penalty", 0, "OpenAI frequency penalty")
		presence    = fs.Float64("presence-penalty", 0, "OpenAI presence penalty")
		seed        = fs.Uint64("seed", 0, "random seed: the same seed gives the same output")
		logits      = fs.Bool("logits", false, "include the raw logits at the last prompt position (json only)")
		format      = fs.String("format", "text", "output format: text or json")
		ignoreEOS   = fs.Bool("ignore-eos", false, "keep generating past end-of-sequence tokens")
		kvDType     kvCacheDType
		merge       = fs.Bool("merge", false, "fold --adapter into the base weights (a dedicated model) instead of applying it per token")
		stops       stringList
	)
	fs.Var(&stops, "stop", "stop string (repeatable)")
	fs.Var(&kvDType, "kv-cache-dtype", kvCacheDTypeUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("generate: unexpected argument %q", fs.Arg(0))
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("generate: --format must be text or json, not %q", *format)
	}
	params := engine.SamplingParams{
		Temperature: float32(*temperature), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
		RepetitionPenalty: float32(*repeat), FrequencyPenalty: float32(*freq), PresencePenalty: float32(*presence),
		Seed: *seed, MaxTokens: *maxTokens, Stop: stops,
	}
	if err := params.Validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if *modelPath == "" {
		p, err := defaultModel()
		if err != nil {
			return err
		}
		*modelPath = p
	}
	m, err := model.Load(*modelPath, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	kvDType.apply(m)
	tok, err := engine.LoadTokenizer(m, *modelPath)
	if err != nil {
		return err
	}
	e := &engine.Engine{Model: m, Tokenizer: tok}
	adapters := map[string]*lora.Adapter{}
	loadAdapter := func(path string) (*lora.Adapter, error) {
		if path == "" {
			return nil, nil
		}
		if a, ok := adapters[path]; ok {
			return a, nil
		}
		a, err := lora.Load(path, &m.Config)
		if err != nil {
			return nil, err
		}
		adapters[path] = a
		return a, nil
	}
	encode := func(text string) ([]int, error) {
		if tok == nil {
			return nil, fmt.Errorf("model %s has no tokenizer: use --prompt-ids", *modelPath)
		}
		return tok.Encode(text, true), nil
	}

	var reqs []engine.Request
	if *batchFile != "" {
		if *prompt != "" || *promptIDs != "" || *adapterPath != "" {
			return errors.New("generate: --batch takes prompts and adapters from the file, not from --prompt, --prompt-ids or --adapter")
		}
		if reqs, err = readBatch(*batchFile, params, *ignoreEOS, loadAdapter, encode); err != nil {
			return err
		}
	} else {
		req := engine.Request{Params: params, IgnoreEOS: *ignoreEOS}
		switch {
		case *prompt != "" && *promptIDs != "":
			return errors.New("generate: give --prompt or --prompt-ids, not both")
		case *promptIDs != "":
			if req.Prompt, err = parseIDs(*promptIDs); err != nil {
				return fmt.Errorf("generate: --prompt-ids: %w", err)
			}
		default:
			if *prompt == "" {
				*prompt = "Once upon a time"
			}
			if req.Prompt, err = encode(*prompt); err != nil {
				return err
			}
		}
		if req.Adapter, err = loadAdapter(*adapterPath); err != nil {
			return err
		}
		if *merge && req.Adapter != nil {
			if err := lora.Merge(m, req.Adapter); err != nil {
				return err
			}
			req.Adapter = nil
		}
		reqs = []engine.Request{req}
	}

	results, err := e.Generate(ctx, reqs)
	if err != nil {
		return err
	}
	if *format == "text" && *batchFile == "" {
		// A text prompt is printed with its continuation, as a story
		// reads; token-id prompts print only what was generated.
		fmt.Fprintln(stdout, *prompt+results[0].Text)
		return nil
	}
	enc := json.NewEncoder(stdout)
	for _, r := range results {
		out := generateOutput{PromptIDs: r.PromptIDs, GeneratedIDs: r.Generated, Text: r.Text, FinishReason: r.FinishReason}
		if out.GeneratedIDs == nil {
			out.GeneratedIDs = []int{}
		}
		if *logits {
			out.LastLogits = r.LastLogits
			for _, v := range out.LastLogits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return errors.New("generate: the model produced non-finite logits")
				}
			}
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}

// readBatch parses a --batch JSONL file into requests.
func readBatch(path string, defaults engine.SamplingParams, ignoreEOS bool,
	loadAdapter func(string) (*lora.Adapter, error), encode func(string) ([]int, error)) ([]engine.Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer f.Close()
	return parseBatch(f, path, defaults, ignoreEOS, loadAdapter, encode)
}

// parseBatch reads JSONL requests from r; name labels errors.
func parseBatch(r io.Reader, path string, defaults engine.SamplingParams, ignoreEOS bool,
	loadAdapter func(string) (*lora.Adapter, error), encode func(string) ([]int, error)) ([]engine.Request, error) {
	var reqs []engine.Request
	var err error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var bl batchLine
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&bl); err != nil {
			return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
		}
		req := engine.Request{Prompt: bl.PromptIDs, Params: defaults, IgnoreEOS: ignoreEOS}
		switch {
		case bl.Prompt != nil && bl.PromptIDs != nil:
			return nil, fmt.Errorf("generate: %s:%d: give prompt or prompt_ids, not both", path, line)
		case bl.Prompt != nil:
			if req.Prompt, err = encode(*bl.Prompt); err != nil {
				return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
			}
		case len(bl.PromptIDs) == 0:
			return nil, fmt.Errorf("generate: %s:%d: prompt_ids is missing or empty", path, line)
		}
		if bl.MaxTokens != nil {
			req.Params.MaxTokens = *bl.MaxTokens
		}
		if bl.Temperature != nil {
			req.Params.Temperature = *bl.Temperature
		}
		if bl.Seed != nil {
			req.Params.Seed = *bl.Seed
		}
		if err := req.Params.Validate(); err != nil {
			return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
		}
		if bl.Adapter != nil {
			if req.Adapter, err = loadAdapter(*bl.Adapter); err != nil {
				return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
			}
		}
		reqs = append(reqs, req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("generate: %s: %w", path, err)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("generate: %s has no requests", path)
	}
	return reqs, nil
}

// parseIDs parses "1,2,3" into token ids.
func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errors.New("no token ids")
	}
	return ids, nil
}
