package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchyard-ai/switchyard/tokenizer"
)

// Example is one tokenized training example.
type Example struct {
	Tokens []int  // the whole text: prompt and completion, BOS first when the tokenizer adds one
	Target []bool // Target[t]: token t is a completion token, predicted from t-1 and counted in the loss; Target[0] is false
	Line   int    // the line of the JSONL file it came from (1-based)
}

// Targets returns the number of tokens that count in the loss.
func (e *Example) Targets() int {
	n := 0
	for t := 1; t < len(e.Target); t++ {
		if e.Target[t] {
			n++
		}
	}
	return n
}

// Tokenizer is what ReadExamples needs of a tokenizer;
// *tokenizer.Tokenizer has it.
type Tokenizer interface {
	EncodeWith(text string, o tokenizer.EncodeOptions) []int
	BOS() int
	EOS() int
	AddsBOS() bool
}

// LineError is what is wrong with one line of a data file.
type LineError struct {
	Line int
	Msg  string
}

// DataError lists the bad lines of a data file (at most maxLineErrors of
// them, and how many more there were).
type DataError struct {
	Path  string
	Lines []LineError
	More  int    // bad lines beyond Lines
	Msg   string // a problem with the file as a whole, when Lines is empty
}

const maxLineErrors = 20

func (e *DataError) Error() string {
	var b strings.Builder
	if e.Msg != "" {
		fmt.Fprintf(&b, "train: %s: %s", e.Path, e.Msg)
	}
	for i, l := range e.Lines {
		if i > 0 || e.Msg != "" {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "train: %s:%d: %s", e.Path, l.Line, l.Msg)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\ntrain: %s: %d more bad lines", e.Path, e.More)
	}
	return b.String()
}

// DataOptions control how examples are read.
type DataOptions struct {
	MaxLen   int  // the most tokens an example may have (the context length); 0: no limit
	Truncate bool // cut longer examples to MaxLen instead of refusing them
}

// ReadExamples reads and tokenizes a JSONL file of training examples, one
// JSON object per line (blank lines are skipped), in any of these shapes:
//
//	{"prompt": "...", "completion": "..."}
//	{"input": "...", "output": "..."}              (Lamini)
//	{"messages": [{"role": "user", "content": "..."}, ...]} (OpenAI chat)
//
// The loss covers the completion (output, assistant messages) and the EOS
// token appended after it; the prompt is context only. Chat messages are
// rendered as "role: content" lines. Examples longer than maxLen tokens
// (0: no limit) are cut to maxLen with truncate, refused otherwise.
// Every bad line is reported, with its number, in one *DataError.
func ReadExamples(path string, tok Tokenizer, maxLen int, truncate bool) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	return ParseExamples(f, path, tok, DataOptions{MaxLen: maxLen, Truncate: truncate})
}

// record is one line of a data file, in every supported shape.
type record struct {
	Prompt     *string   `json:"prompt"`
	Completion *string   `json:"completion"`
	Input      *string   `json:"input"`
	Output     *string   `json:"output"`
	Messages   []message `json:"messages"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// ParseExamples is ReadExamples on a reader; name is used in errors.
func ParseExamples(r io.Reader, name string, tok Tokenizer, o DataOptions) ([]Example, error) {
	de := &DataError{Path: name}
	bad := func(line int, format string, args ...any) {
		if len(de.Lines) < maxLineErrors {
			de.Lines = append(de.Lines, LineError{Line: line, Msg: fmt.Sprintf(format, args...)})
		} else {
			de.More++
		}
	}
	var exs []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec record
		dec := json.NewDecoder(bytes.NewReader(text))
		if err := dec.Decode(&rec); err != nil {
			bad(line, "bad JSON: %v", err)
			continue
		}
		if dec.More() {
			bad(line, "bad JSON: more than one value on the line")
			continue
		}
		segs, msg := recordSegments(&rec)
		if msg != "" {
			bad(line, "%s", msg)
			continue
		}
		ex := tokenize(tok, segs)
		ex.Line = line
		if ex.Targets() == 0 {
			bad(line, "the completion has no tokens")
			continue
		}
		if o.MaxLen > 0 && len(ex.Tokens) > o.MaxLen {
			if !o.Truncate {
				bad(line, "example has %d tokens, more than the maximum sequence length %d (shorten it, or enable truncation)", len(ex.Tokens), o.MaxLen)
				continue
			}
			ex.Tokens, ex.Target = ex.Tokens[:o.MaxLen], ex.Target[:o.MaxLen]
			if ex.Targets() == 0 {
				bad(line, "the prompt alone fills the maximum sequence length %d: nothing of the completion is left after truncation", o.MaxLen)
				continue
			}
		}
		exs = append(exs, ex)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			bad(line+1, "line longer than 64 MiB")
		} else {
			return nil, fmt.Errorf("train: %s: %w", name, err)
		}
	}
	if len(de.Lines) > 0 {
		return nil, de
	}
	if len(exs) == 0 {
		de.Msg = "no examples"
		return nil, de
	}
	return exs, nil
}

// segment is a piece of an example's text and whether it is completion.
type segment struct {
	text   string
	target bool
}

// recordSegments renders a record as text segments, or says what is wrong.
func recordSegments(rec *record) ([]segment, string) {
	shapes := 0
	if rec.Prompt != nil || rec.Completion != nil {
		shapes++
	}
	if rec.Input != nil || rec.Output != nil {
		shapes++
	}
	if rec.Messages != nil {
		shapes++
	}
	switch {
	case shapes == 0:
		return nil, `no known fields: want "prompt" and "completion", "input" and "output", or "messages"`
	case shapes > 1:
		return nil, `mixes shapes: use one of "prompt"/"completion", "input"/"output" or "messages"`
	case rec.Prompt != nil || rec.Completion != nil:
		return pair("prompt", "completion", rec.Prompt, rec.Completion)
	case rec.Input != nil || rec.Output != nil:
		return pair("input", "output", rec.Input, rec.Output)
	}
	if len(rec.Messages) == 0 {
		return nil, `"messages" is empty`
	}
	var segs []segment
	answered := false
	for i, m := range rec.Messages {
		var content string
		if err := json.Unmarshal(m.Content, &content); err != nil {
			return nil, fmt.Sprintf("messages[%d]: content must be a string", i)
		}
		switch m.Role {
		case "system", "user", "assistant", "tool":
		case "":
			return nil, fmt.Sprintf("messages[%d]: missing role", i)
		default:
			return nil, fmt.Sprintf("messages[%d]: unknown role %q (want system, user, assistant or tool)", i, m.Role)
		}
		segs = append(segs, segment{text: m.Role + ": "})
		if m.Role == "assistant" {
			if strings.TrimSpace(content) == "" {
				return nil, fmt.Sprintf("messages[%d]: empty assistant message", i)
			}
			answered = true
			segs = append(segs, segment{text: content + "\n", target: true})
		} else {
			segs = append(segs, segment{text: content + "\n"})
		}
	}
	if !answered {
		return nil, `"messages" has no assistant message to learn from`
	}
	return segs, ""
}

// pair checks a prompt/completion-like pair of fields.
func pair(pname, cname string, p, c *string) ([]segment, string) {
	switch {
	case p == nil:
		return nil, fmt.Sprintf("missing %q", pname)
	case c == nil:
		return nil, fmt.Sprintf("missing %q", cname)
	case strings.TrimSpace(*c) == "":
		return nil, fmt.Sprintf("empty %q", cname)
	}
	return []segment{{text: *p}, {text: *c, target: true}}, ""
}

// tokenize encodes the segments as one text, so that tokens across a
// boundary come out as the tokenizer makes them: each segment's tokens
// are those that the text up to its end adds to the longest common
// prefix with the text before it. BOS goes first when the tokenizer adds
// one, EOS last (as a target) when the last segment is a target. Special
// tokens written in the text are not recognised.
func tokenize(tok Tokenizer, segs []segment) Example {
	var ex Example
	opt := tokenizer.EncodeOptions{}
	var prev []int
	if tok.AddsBOS() && tok.BOS() >= 0 {
		ex.Tokens = append(ex.Tokens, tok.BOS())
		ex.Target = append(ex.Target, false)
	}
	base := len(ex.Tokens)
	text := ""
	for _, s := range segs {
		text += s.text
		ids := tok.EncodeWith(text, opt)
		common := 0
		for common < len(prev) && common < len(ids) && prev[common] == ids[common] {
			common++
		}
		// Tokens past the common prefix are (re)assigned to this segment.
		ex.Tokens, ex.Target = ex.Tokens[:base+common], ex.Target[:base+common]
		for _, id := range ids[common:] {
			ex.Tokens = append(ex.Tokens, id)
			ex.Target = append(ex.Target, s.target)
		}
		prev = ids
	}
	if len(segs) > 0 && segs[len(segs)-1].target && tok.EOS() >= 0 {
		ex.Tokens = append(ex.Tokens, tok.EOS())
		ex.Target = append(ex.Target, true)
	}
	if len(ex.Target) > 0 {
		ex.Target[0] = false
	}
	return ex
}
