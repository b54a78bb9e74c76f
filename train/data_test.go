package train

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/tokenizer"
)

// byteTok is a tokenizer with one token per byte (id = byte + 3), BOS 1
// and EOS 2.
type byteTok struct{}

func (byteTok) EncodeWith(text string, _ tokenizer.EncodeOptions) []int {
	ids := make([]int, len(text))
	for i := range len(text) {
		ids[i] = int(text[i]) + 3
	}
	return ids
}
func (byteTok) BOS() int      { return 1 }
func (byteTok) EOS() int      { return 2 }
func (byteTok) AddsBOS() bool { return true }

func TestParseExamples(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxLen   int
		truncate bool
		lines    []int  // lines with errors, in order
		msg      string // part of the error text
		n        int    // examples on success
	}{
		{name: "prompt completion", in: `{"prompt":"ab","completion":"cd"}`, n: 1},
		{name: "lamini", in: "{\"input\":\"ab\",\"output\":\"cd\"}\n\n{\"input\":\"x\",\"output\":\"y\"}\n", n: 2},
		{name: "chat", in: `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`, n: 1},
		{name: "bad json", in: "{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\": \n", lines: []int{2}, msg: "bad JSON"},
		{name: "two values", in: `{"prompt":"a","completion":"b"} {}`, lines: []int{1}, msg: "more than one value"},
		{name: "missing completion", in: "\n\n{\"prompt\":\"a\"}", lines: []int{3}, msg: `missing "completion"`},
		{name: "missing input", in: `{"output":"a"}`, lines: []int{1}, msg: `missing "input"`},
		{name: "empty completion", in: `{"prompt":"a","completion":"  "}`, lines: []int{1}, msg: `empty "completion"`},
		{name: "unknown shape", in: `{"text":"a"}`, lines: []int{1}, msg: "no known fields"},
		{name: "mixed shapes", in: `{"prompt":"a","completion":"b","messages":[]}`, lines: []int{1}, msg: "mixes shapes"},
		{name: "not an object", in: `[1,2]`, lines: []int{1}, msg: "bad JSON"},
		{name: "wrong type", in: `{"prompt":1,"completion":"b"}`, lines: []int{1}, msg: "bad JSON"},
		{name: "no assistant", in: `{"messages":[{"role":"user","content":"hi"}]}`, lines: []int{1}, msg: "no assistant"},
		{name: "bad role", in: `{"messages":[{"role":"bot","content":"hi"}]}`, lines: []int{1}, msg: `unknown role "bot"`},
		{name: "content not string", in: `{"messages":[{"role":"assistant","content":[1]}]}`, lines: []int{1}, msg: "content must be a string"},
		{name: "empty messages", in: `{"messages":[]}`, lines: []int{1}, msg: `"messages" is empty`},
		{name: "too long", in: "{\"prompt\":\"ab\",\"completion\":\"cd\"}\n{\"prompt\":\"abcdef\",\"completion\":\"cd\"}", maxLen: 6, lines: []int{2}, msg: "more than the maximum sequence length 6"},
		{name: "truncated", in: `{"prompt":"ab","completion":"cdefgh"}`, maxLen: 6, truncate: true, n: 1},
		{name: "prompt fills context", in: `{"prompt":"abcdefgh","completion":"cd"}`, maxLen: 6, truncate: true, lines: []int{1}, msg: "prompt alone"},
		{name: "several bad lines", in: "x\n{\"prompt\":\"a\",\"completion\":\"b\"}\ny\n", lines: []int{1, 3}, msg: "bad JSON"},
		{name: "empty file", in: "\n \n", msg: "no examples"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, err := ParseExamples(strings.NewReader(tc.in), "data.jsonl", byteTok{}, DataOptions{MaxLen: tc.maxLen, Truncate: tc.truncate})
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(exs) != tc.n {
					t.Fatalf("%d examples, want %d", len(exs), tc.n)
				}
				for _, ex := range exs {
					checkExample(t, ex, tc.maxLen)
				}
				return
			}
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *DataError", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			var lines []int
			for _, l := range de.Lines {
				lines = append(lines, l.Line)
				if !strings.Contains(err.Error(), "data.jsonl:"+strconv.Itoa(l.Line)+": ") {
					t.Errorf("error %q does not name data.jsonl:%d", err, l.Line)
				}
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("bad lines %v, want %v", lines, tc.lines)
			}
		})
	}
}

// checkExample verifies the invariants of a parsed example.
func checkExample(t testing.TB, ex Example, maxLen int) {
	t.Helper()
	if len(ex.Tokens) != len(ex.Target) || ex.Targets() == 0 || ex.Target[0] {
		t.Fatalf("malformed example %+v", ex)
	}
	if maxLen > 0 && len(ex.Tokens) > maxLen {
		t.Fatalf("example of %d tokens exceeds %d", len(ex.Tokens), maxLen)
	}
}

func TestTokenizeMasks(t *testing.T) {
	exs, err := ParseExamples(strings.NewReader(`{"prompt":"ab","completion":"c"}`+"\n"+
		`{"messages":[{"role":"user","content":"u"},{"role":"assistant","content":"v"}]}`), "x", byteTok{}, DataOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// BOS a b | c EOS
	if want := []int{1, 'a' + 3, 'b' + 3, 'c' + 3, 2}; !slices.Equal(exs[0].Tokens, want) {
		t.Errorf("tokens %v, want %v", exs[0].Tokens, want)
	}
	if want := []bool{false, false, false, true, true}; !slices.Equal(exs[0].Target, want) {
		t.Errorf("targets %v, want %v", exs[0].Target, want)
	}
	// "user: u\nassistant: " is context; "v\n" and EOS are targets.
	ex := exs[1]
	if got := ex.Targets(); got != 3 {
		t.Errorf("chat example has %d targets, want 3 (v, newline, EOS): %v", got, ex.Target)
	}
	if ex.Line != 2 {
		t.Errorf("line %d, want 2", ex.Line)
	}
}

func FuzzParseExamples(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"ab","completion":"cd"}`,
		`{"input":"ab","output":"cd"}`,
		`{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`,
		"{\"prompt\":\"a\"}\n{bad",
		`{"prompt":"abcdefghij","completion":"k"}`,
	} {
		f.Add(s, 8, true)
		f.Add(s, 0, false)
	}
	f.Fuzz(func(t *testing.T, in string, maxLen int, truncate bool) {
		maxLen = max(0, maxLen%64)
		exs, err := ParseExamples(strings.NewReader(in), "fuzz.jsonl", byteTok{}, DataOptions{MaxLen: maxLen, Truncate: truncate})
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DataError", err)
			}
			return
		}
		for _, ex := range exs {
			checkExample(t, ex, maxLen)
		}
	})
}
