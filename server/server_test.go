package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestCompletionsMatchGenerate checks greedy completions, streaming and
// not, on the base model and on an adapter against the fixture's
// expectations and engine.Generate.
func TestCompletionsMatchGenerate(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	steps := e.fixture.GreedySteps
	for _, name := range []string{baseName, "r8"} {
		want := e.fixture.Base.Greedy
		if name == "r8" {
			want = e.fixture.Adapters["r8_qv"].Greedy
		}
		for i, prompt := range e.fixture.Prompts {
			ref := e.generate(name, prompt, steps, true)
			if !slices.Equal(ref.Generated, want[i]) {
				t.Fatalf("%s prompt %d: engine.Generate disagrees with the fixture", name, i)
			}
			params := openai.CompletionNewParams{
				Model:       openai.CompletionNewParamsModel(name),
				Prompt:      openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(prompt)},
				MaxTokens:   openai.Int(int64(steps)),
				Temperature: openai.Float(0),
			}
			ignoreEOS := option.WithJSONSet("ignore_eos", true)
			resp, err := e.client.Completions.New(ctx, params, ignoreEOS)
			if err != nil {
				t.Fatalf("%s prompt %d: %v", name, i, err)
			}
			c := resp.Choices[0]
			if got := tokenIDs(t, c.JSON.ExtraFields); !slices.Equal(got, want[i]) {
				t.Errorf("%s prompt %d: token ids\n got %v\nwant %v", name, i, got, want[i])
			}
			if c.Text != ref.Text || string(c.FinishReason) != ref.FinishReason {
				t.Errorf("%s prompt %d: text %q (%s), want %q (%s)", name, i, c.Text, c.FinishReason, ref.Text, ref.FinishReason)
			}
			if resp.Usage.PromptTokens != int64(len(prompt)) || resp.Usage.CompletionTokens != int64(steps) ||
				resp.Usage.TotalTokens != int64(len(prompt)+steps) {
				t.Errorf("%s prompt %d: usage %+v", name, i, resp.Usage)
			}

			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := e.client.Completions.NewStreaming(ctx, params, ignoreEOS)
			var text string
			var ids []int
			var finish string
			var usage openai.CompletionUsage
			for stream.Next() {
				ch := stream.Current()
				if len(ch.Choices) == 0 {
					usage = ch.Usage
					continue
				}
				text += ch.Choices[0].Text
				ids = append(ids, tokenIDs(t, ch.Choices[0].JSON.ExtraFields)...)
				if ch.Choices[0].FinishReason != "" {
					finish = string(ch.Choices[0].FinishReason)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("%s prompt %d stream: %v", name, i, err)
			}
			if text != ref.Text || !slices.Equal(ids, want[i]) || finish != ref.FinishReason {
				t.Errorf("%s prompt %d stream: %q %v (%s), want %q %v (%s)", name, i, text, ids, finish, ref.Text, want[i], ref.FinishReason)
			}
			if usage.CompletionTokens != int64(steps) || usage.PromptTokens != int64(len(prompt)) {
				t.Errorf("%s prompt %d stream usage: %+v", name, i, usage)
			}
		}
	}
}

// TestTextPrompt checks a text prompt, tokenized with BOS as `switchyard
// generate --prompt` does.
func TestTextPrompt(t *testing.T) {
	e := newEnv(t, envOptions{})
	prompt := "Once upon a time"
	ref := e.generate("r8", e.tok.Encode(prompt, true), 40, false)
	resp, err := e.client.Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "r8", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens: openai.Int(40), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != ref.Text {
		t.Errorf("text %q, want %q", resp.Choices[0].Text, ref.Text)
	}
}

// TestChat checks chat completions, streaming and not, on the base model
// and an adapter: a model without a chat template gets the plain format.
func TestChat(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	msgs := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("You tell stories."),
		openai.UserMessage("Tell me about a cat."),
	}
	prompt := e.tok.Encode("system: You tell stories.\nuser: Tell me about a cat.\nassistant:", true)
	for _, name := range []string{baseName, "r8"} {
		ref := e.generate(name, prompt, 48, false)
		params := openai.ChatCompletionNewParams{Model: name, Messages: msgs, MaxTokens: openai.Int(48), Temperature: openai.Float(0)}
		resp, err := e.client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != ref.Text {
			t.Errorf("%s: %q, want %q", name, got, ref.Text)
		}
		if resp.Usage.PromptTokens != int64(len(prompt)) || resp.Usage.CompletionTokens != int64(len(ref.Generated)) {
			t.Errorf("%s usage %+v, want %d + %d", name, resp.Usage, len(prompt), len(ref.Generated))
		}
		if string(resp.Choices[0].FinishReason) != ref.FinishReason {
			t.Errorf("%s finish %s, want %s", name, resp.Choices[0].FinishReason, ref.FinishReason)
		}

		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != ref.Text {
			t.Errorf("%s stream: %q, want %q", name, got, ref.Text)
		}
		if acc.Usage.CompletionTokens != int64(len(ref.Generated)) {
			t.Errorf("%s stream usage %+v", name, acc.Usage)
		}
	}
}

// TestConcurrentStreams runs 32 streaming requests over 8 adapters and
// the base model at once: each must get the greedy tokens it gets alone.
func TestConcurrentStreams(t *testing.T) {
	e := newEnv(t, envOptions{randomAdapter: 7})
	models := []string{baseName, "r8"}
	for i := range 7 {
		models = append(models, fmt.Sprintf("rand%d", i+1))
	}
	prompts := e.fixture.Prompts
	const maxTokens = 32
	type key struct{ model, prompt int }
	want := map[key][]int{}
	distinct := map[string]bool{}
	for mi, m := range models {
		for pi, p := range prompts {
			r := e.generate(m, p, maxTokens, true)
			want[key{mi, pi}] = r.Generated
			if pi == 1 {
				distinct[fmt.Sprint(r.Generated)] = true
			}
		}
	}
	if len(distinct) < len(models)-1 {
		t.Fatalf("only %d distinct outputs from %d models: the random adapters do not change the output", len(distinct), len(models))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		k := key{i % len(models), i % len(prompts)}
		wg.Go(func() {
			stream := e.client.Completions.NewStreaming(context.Background(), openai.CompletionNewParams{
				Model:       openai.CompletionNewParamsModel(models[k.model]),
				Prompt:      openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(prompts[k.prompt])},
				MaxTokens:   openai.Int(maxTokens),
				Temperature: openai.Float(0),
			}, option.WithJSONSet("ignore_eos", true))
			var ids []int
			for stream.Next() {
				if ch := stream.Current(); len(ch.Choices) > 0 {
					ids = append(ids, tokenIDs(t, ch.Choices[0].JSON.ExtraFields)...)
				}
			}
			if err := stream.Err(); err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			if !slices.Equal(ids, want[k]) {
				errs <- fmt.Errorf("request %d (%s, prompt %d): %v, want %v", i, models[k.model], k.prompt, ids, want[k])
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSamplingOptions checks that n, seed, stop and logprobs reach the
// engine.
func TestSamplingOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	prompt := openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(e.fixture.Prompts[1])}
	params := openai.CompletionNewParams{Model: baseName, Prompt: prompt, MaxTokens: openai.Int(20),
		Temperature: openai.Float(0.9), Seed: openai.Int(42), N: openai.Int(3), Logprobs: openai.Int(2)}
	a, err := e.client.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.client.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Choices) != 3 {
		t.Fatalf("%d choices, want 3", len(a.Choices))
	}
	for i := range a.Choices {
		if a.Choices[i].Text != b.Choices[i].Text {
			t.Errorf("choice %d: the same seed gave %q and %q", i, a.Choices[i].Text, b.Choices[i].Text)
		}
		lp := a.Choices[i].Logprobs
		if len(lp.Tokens) != 20 || len(lp.TokenLogprobs) != 20 || len(lp.TopLogprobs) != 20 {
			t.Errorf("choice %d logprobs: %d tokens, %d logprobs, %d top", i, len(lp.Tokens), len(lp.TokenLogprobs), len(lp.TopLogprobs))
		}
		for _, l := range lp.TokenLogprobs {
			if l > 0 {
				t.Errorf("choice %d: log-probability %v > 0", i, l)
			}
		}
	}

	// A stop string ends the text before it.
	ref := e.generate(baseName, e.fixture.Prompts[1], 40, true)
	if len(ref.Text) < 10 {
		t.Skip("reference text too short for a stop string")
	}
	stop := ref.Text[6:9]
	resp, err := e.client.Completions.New(ctx, openai.CompletionNewParams{Model: baseName, Prompt: prompt, MaxTokens: openai.Int(40),
		Temperature: openai.Float(0), Stop: openai.CompletionNewParamsStopUnion{OfString: openai.String(stop)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Text; got != ref.Text[:6] || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("stop %q: %q (%s), want %q", stop, got, resp.Choices[0].FinishReason, ref.Text[:6])
	}

	// Chat logprobs with top alternatives.
	chat, err := e.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "r8",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")}, MaxTokens: openai.Int(5),
		Temperature: openai.Float(0), Logprobs: openai.Bool(true), TopLogprobs: openai.Int(3)})
	if err != nil {
		t.Fatal(err)
	}
	content := chat.Choices[0].Logprobs.Content
	if len(content) != int(chat.Usage.CompletionTokens) || len(content) == 0 || len(content[0].TopLogprobs) != 3 {
		t.Errorf("chat logprobs: %+v", content)
	} else if content[0].TopLogprobs[0].Logprob != content[0].Logprob {
		t.Errorf("greedy token's logprob %v is not the top one %v", content[0].Logprob, content[0].TopLogprobs[0].Logprob)
	}
}
