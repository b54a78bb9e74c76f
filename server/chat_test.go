package server

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/tokenizer"
)

// TestChatTemplates renders real models' chat templates.
func TestChatTemplates(t *testing.T) {
	msgs := []message{{"system", "Be brief."}, {"user", "Hi there"}, {"assistant", "Hello."}, {"user", "Bye"}}
	tests := []struct {
		name string
		want []string
	}{
		{"llama3", []string{"<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n"}},
		{"mistral", []string{"[INST]", "Hi there", "Hello.", "Bye"}},
		{"qwen3", []string{"<|im_start|>user\nHi there<|im_end|>", "<|im_start|>assistant\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tokenizer.LoadHF(testshared.Path(t, "tokenizers", "hf", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if tok.ChatTemplate() == "" {
				t.Skip("no chat template")
			}
			ct, err := newChatTemplate(tok.ChatTemplate(), tok)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ct.render(msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("rendered %q lacks %q", out, w)
				}
			}
		})
	}
	if got := renderPlain(msgs[:2]); got != "system: Be brief.\nuser: Hi there\nassistant:" {
		t.Errorf("plain: %q", got)
	}
}

// TestChatWithTemplate checks that chat requests are rendered with the
// model's template, special tokens written by the template itself.
func TestChatWithTemplate(t *testing.T) {
	tmpl := "{{ bos_token }}{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}" +
		"{% if add_generation_prompt %}[ASSISTANT]{% endif %}"
	e := newEnv(t, envOptions{chatTemplate: tmpl})
	prompt := e.tok.Encode(e.tok.TokenString(e.tok.BOS())+"[USER] Tell me about a dog.\n[ASSISTANT]", false)
	if prompt[0] != e.tok.BOS() {
		t.Fatalf("the rendered BOS was not tokenized as the BOS token: %v", prompt[:3])
	}
	ref := e.generate("r8", prompt, 24, false)
	resp, err := e.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "r8",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about a dog.")},
		MaxTokens: openai.Int(24), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != ref.Text || resp.Usage.PromptTokens != int64(len(prompt)) {
		t.Errorf("%q (%d prompt tokens), want %q (%d)", got, resp.Usage.PromptTokens, ref.Text, len(prompt))
	}
}
