package server

import (
	"strings"
	"testing"

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
