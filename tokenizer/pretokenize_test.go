package tokenizer

import (
	"slices"
	"testing"
)

func TestSplitters(t *testing.T) {
	for _, tc := range []struct {
		sp   splitter
		text string
		want []string
	}{
		{splitGPT2, "Hello world", []string{"Hello", " world"}},
		{splitGPT2, "I'm don't 'RE", []string{"I", "'m", " don", "'t", " '", "RE"}},
		{splitGPT2, "  Hello", []string{" ", " Hello"}},
		{splitGPT2, "a  \n b", []string{"a", "  \n", " b"}},
		{splitGPT2, "x   ", []string{"x", "   "}},
		{splitGPT2, "123456 (a)", []string{"123456", " (", "a", ")"}},
		{splitGPT2, "\tword", []string{"\t", "word"}},
		{splitLlama3, "I'M 'Ve", []string{"I", "'M", " '", "Ve"}},
		{splitLlama3, "1234567", []string{"123", "456", "7"}},
		{splitLlama3, "(normal) 😶‍🌫️", []string{"(normal", ")", " 😶‍🌫️"}},
		{splitLlama3, "\tword", []string{"\tword"}},
		{splitLlama3, "a  \n\n  b", []string{"a", "  \n\n", " ", " b"}},
		{splitLlama3, "!!!\n\nx", []string{"!!!\n\n", "x"}},
		{splitLlama3, "   ", []string{"   "}},
		{splitLlama3, "Cửa Việt", []string{"Cửa", " Việt"}},
		{splitQwen2, "1234 ab", []string{"1", "2", "3", "4", " ab"}},
		{splitLlama3, "a\xff\xffb", []string{"a", "\xff\xff", "b"}}, // invalid bytes are "other"
		{splitGPT2, "", nil},
	} {
		if got := tc.sp.split(nil, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("splitter %d %q: got %q, want %q", tc.sp, tc.text, got, tc.want)
		}
	}
}

func TestSplitterForPattern(t *testing.T) {
	llamaCpp := `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	for _, tc := range []struct {
		pattern string
		want    splitter
	}{
		{patternGPT2, splitGPT2},
		{patternLlama3, splitLlama3},
		{patternQwen2, splitQwen2},
		{llamaCpp, splitLlama3},
		{`\w+`, 0},
	} {
		if got, _ := splitterForPattern(tc.pattern); got != tc.want {
			t.Errorf("splitterForPattern(%q) = %d, want %d", tc.pattern, got, tc.want)
		}
	}
}

func TestSplitSpans(t *testing.T) {
	spans := func() []span { return literalSpans("a-b--c", "-") }
	for _, tc := range []struct {
		b    splitBehavior
		want []string
	}{
		{behaviorRemoved, []string{"a", "b", "c"}},
		{behaviorIsolated, []string{"a", "-", "b", "-", "-", "c"}},
		{behaviorMergedWithPrevious, []string{"a-", "b-", "-", "c"}},
		{behaviorMergedWithNext, []string{"a", "-b", "-", "-c"}},
		{behaviorContiguous, []string{"a", "-", "b", "--", "c"}},
	} {
		var got []string
		for _, p := range splitSpans(nil, piece{s: "a-b--c"}, spans(), tc.b, false) {
			got = append(got, p.s)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("behavior %d: got %q, want %q", tc.b, got, tc.want)
		}
	}
}
