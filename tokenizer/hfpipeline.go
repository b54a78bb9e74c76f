package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hfEncoder runs the Hugging Face encoding pipeline: split out added
// tokens, normalize, pre-tokenize, then the BPE model on each word.
type hfEncoder struct {
	added     *addedMatcher // added tokens matched on the raw text
	addedNorm *addedMatcher // added tokens with normalized: true, matched after normalizing
	norm      []normOp
	pre       []preStep
	model     *bpeModel
}

func (e *hfEncoder) encode(dst []int, text string, parseSpecial bool) []int {
	var sc bpeScratch
	var words []piece
	for _, sg := range e.added.split(nil, text, 0, parseSpecial) {
		if sg.id >= 0 {
			dst = append(dst, sg.id)
			continue
		}
		if sg.text == "" {
			continue
		}
		normalized := sg.text
		for _, op := range e.norm {
			normalized = op.apply(normalized)
		}
		for _, sub := range e.addedNorm.split(nil, normalized, 0, parseSpecial) {
			if sub.id >= 0 {
				dst = append(dst, sub.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			atStart := sg.off == 0 && sub.off == 0
			words = e.pretokenize(words[:0], sub.text, atStart)
			for _, w := range words {
				dst = e.model.encodeWord(dst, w.s, &sc)
			}
		}
	}
	return dst
}

// ---- normalizers ----

type normKind uint8

const (
	normPrepend normKind = iota + 1
	normReplace
	normNFC
)

// normOp is one normalizer of the supported set: Prepend, Replace with a
// literal pattern, and NFC.
type normOp struct {
	kind     normKind
	from, to string
}

func (op normOp) apply(s string) string {
	switch op.kind {
	case normPrepend:
		if s != "" {
			return op.to + s
		}
	case normReplace:
		return strings.ReplaceAll(s, op.from, op.to)
	case normNFC:
		return nfc(s)
	}
	return s
}

// hfComponent holds the fields of any normalizer, pre-tokenizer, decoder
// or post-processor object; Type says which apply.
type hfComponent struct {
	Type string `json:"type"`

	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	Processors    []json.RawMessage `json:"processors"`

	Prepend  string     `json:"prepend"`
	Pattern  *hfPattern `json:"pattern"`
	Content  string     `json:"content"`
	Behavior string     `json:"behavior"`
	Invert   bool       `json:"invert"`

	AddPrefixSpace *bool  `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
	Replacement    string `json:"replacement"`
	PrependScheme  string `json:"prepend_scheme"`
	Split          *bool  `json:"split"`

	Start            int  `json:"start"`
	Stop             int  `json:"stop"`
	IndividualDigits bool `json:"individual_digits"`

	Single        []json.RawMessage         `json:"single"`
	SpecialTokens map[string]hfTemplateSpec `json:"special_tokens"`
	Sep           []json.RawMessage         `json:"sep"`
	Cls           []json.RawMessage         `json:"cls"`
}

// hfPattern is a Split or Replace pattern: a literal or a regex.
type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type hfTemplateSpec struct {
	ID  string `json:"id"`
	IDs []int  `json:"ids"`
}

// parseComponent decodes a component object; ok is false for JSON null.
func parseComponent(raw json.RawMessage, what string) (c hfComponent, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return c, false, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w", what, err)
	}
	return c, true, nil
}

func parseNormalizer(raw json.RawMessage, depth int) ([]normOp, error) {
	c, ok, err := parseComponent(raw, "normalizer")
	if err != nil || !ok {
		return nil, err
	}
	if depth > 8 {
		return nil, fmt.Errorf("normalizer: Sequence nested too deep")
	}
	switch c.Type {
	case "Sequence":
		var ops []normOp
		for _, r := range c.Normalizers {
			sub, err := parseNormalizer(r, depth+1)
			if err != nil {
				return nil, err
			}
			ops = append(ops, sub...)
		}
		return ops, nil
	case "Prepend":
		return []normOp{{kind: normPrepend, to: c.Prepend}}, nil
	case "Replace":
		if c.Pattern == nil || c.Pattern.String == nil {
			return nil, fmt.Errorf("normalizer: Replace with a regex pattern is not supported")
		}
		if *c.Pattern.String == "" {
			return nil, fmt.Errorf("normalizer: Replace with an empty pattern")
		}
		return []normOp{{kind: normReplace, from: *c.Pattern.String, to: c.Content}}, nil
	case "NFC":
		return []normOp{{kind: normNFC}}, nil
	}
	return nil, fmt.Errorf("normalizer: type %q is not supported", c.Type)
}

// ---- pre-tokenizers ----

// piece is a pre-tokenized word; atStart reports whether it begins at
// offset 0 of the input (Metaspace's prepend_scheme "first" needs it).
type piece struct {
	s       string
	atStart bool
}

type preKind uint8

const (
	preSplitRegex preKind = iota + 1
	preSplitString
	preByteLevel
	preMetaspace
	preDigits
)

type splitBehavior uint8

const (
	behaviorRemoved splitBehavior = iota + 1
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

var behaviors = map[string]splitBehavior{
	"Removed":            behaviorRemoved,
	"Isolated":           behaviorIsolated,
	"MergedWithPrevious": behaviorMergedWithPrevious,
	"MergedWithNext":     behaviorMergedWithNext,
	"Contiguous":         behaviorContiguous,
}

type prependScheme uint8

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// preStep is one pre-tokenizer of the supported set.
type preStep struct {
	kind     preKind
	splitter splitter      // preSplitRegex, and preByteLevel with use_regex
	literal  string        // preSplitString
	behavior splitBehavior // preSplitRegex, preSplitString
	invert   bool

	addPrefixSpace bool // preByteLevel

	replacement string // preMetaspace
	prepend     prependScheme
	metaSplit   bool

	individualDigits bool // preDigits
}

func parsePreTokenizer(raw json.RawMessage, depth int) ([]preStep, error) {
	c, ok, err := parseComponent(raw, "pre_tokenizer")
	if err != nil || !ok {
		return nil, err
	}
	if depth > 8 {
		return nil, fmt.Errorf("pre_tokenizer: Sequence nested too deep")
	}
	switch c.Type {
	case "Sequence":
		var steps []preStep
		for _, r := range c.Pretokenizers {
			sub, err := parsePreTokenizer(r, depth+1)
			if err != nil {
				return nil, err
			}
			steps = append(steps, sub...)
		}
		return steps, nil
	case "Split":
		b, ok := behaviors[c.Behavior]
		if !ok {
			return nil, fmt.Errorf("pre_tokenizer: Split behavior %q is not supported", c.Behavior)
		}
		st := preStep{behavior: b, invert: c.Invert}
		switch {
		case c.Pattern != nil && c.Pattern.Regex != nil:
			sp, ok := splitterForPattern(*c.Pattern.Regex)
			if !ok {
				return nil, fmt.Errorf("pre_tokenizer: Split regex %q is not one of the known patterns (GPT-2, Llama 3, Qwen2)", *c.Pattern.Regex)
			}
			st.kind, st.splitter = preSplitRegex, sp
		case c.Pattern != nil && c.Pattern.String != nil && *c.Pattern.String != "":
			st.kind, st.literal = preSplitString, *c.Pattern.String
		default:
			return nil, fmt.Errorf("pre_tokenizer: Split without a pattern")
		}
		return []preStep{st}, nil
	case "ByteLevel":
		st := preStep{kind: preByteLevel, addPrefixSpace: c.AddPrefixSpace == nil || *c.AddPrefixSpace}
		if c.UseRegex == nil || *c.UseRegex {
			st.splitter = splitGPT2
		}
		return []preStep{st}, nil
	case "Metaspace":
		st := preStep{kind: preMetaspace, replacement: c.Replacement, metaSplit: c.Split == nil || *c.Split}
		if utf8.RuneCountInString(st.replacement) != 1 {
			return nil, fmt.Errorf("pre_tokenizer: Metaspace replacement %q is not one character", c.Replacement)
		}
		st.prepend, err = metaspacePrepend(c)
		if err != nil {
			return nil, fmt.Errorf("pre_tokenizer: %w", err)
		}
		return []preStep{st}, nil
	case "Digits":
		return []preStep{{kind: preDigits, individualDigits: c.IndividualDigits}}, nil
	}
	return nil, fmt.Errorf("pre_tokenizer: type %q is not supported", c.Type)
}

// metaspacePrepend reads prepend_scheme, or the older add_prefix_space.
func metaspacePrepend(c hfComponent) (prependScheme, error) {
	switch c.PrependScheme {
	case "always":
		return prependAlways, nil
	case "first":
		return prependFirst, nil
	case "never":
		return prependNever, nil
	case "":
		if c.AddPrefixSpace == nil || *c.AddPrefixSpace {
			return prependAlways, nil
		}
		return prependNever, nil
	}
	return 0, fmt.Errorf("Metaspace prepend_scheme %q is not known", c.PrependScheme)
}

// pretokenize appends the words of s to dst.
func (e *hfEncoder) pretokenize(dst []piece, s string, atStart bool) []piece {
	dst = append(dst, piece{s: s, atStart: atStart})
	var next []piece
	var scratch []string
	for _, st := range e.pre {
		next = next[:0]
		for _, p := range dst {
			next = st.apply(next, p, &scratch)
		}
		dst, next = next, dst
	}
	return dst
}

// apply appends the pieces that step st makes of p.
func (st *preStep) apply(dst []piece, p piece, scratch *[]string) []piece {
	switch st.kind {
	case preSplitRegex:
		words := st.splitter.split((*scratch)[:0], p.s)
		*scratch = words
		spans := make([]span, 0, 2*len(words)+1)
		off := 0
		for _, w := range words { // the known patterns match every character
			spans = append(spans, span{off, off + len(w), true})
			off += len(w)
		}
		return splitSpans(dst, p, spans, st.behavior, st.invert)
	case preSplitString:
		return splitSpans(dst, p, literalSpans(p.s, st.literal), st.behavior, st.invert)
	case preByteLevel:
		s := p.s
		if st.addPrefixSpace && s != "" && !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		if st.splitter == 0 {
			return append(dst, piece{s: string(appendByteLevel(nil, s)), atStart: p.atStart})
		}
		words := st.splitter.split((*scratch)[:0], s)
		*scratch = words
		for i, w := range words {
			dst = append(dst, piece{s: string(appendByteLevel(nil, w)), atStart: p.atStart && i == 0})
		}
		return dst
	case preMetaspace:
		s := strings.ReplaceAll(p.s, " ", st.replacement)
		if s != "" && !strings.HasPrefix(s, st.replacement) &&
			(st.prepend == prependAlways || (st.prepend == prependFirst && p.atStart)) {
			s = st.replacement + s
		}
		q := piece{s: s, atStart: p.atStart}
		if !st.metaSplit {
			return append(dst, q)
		}
		return splitSpans(dst, q, literalSpans(s, st.replacement), behaviorMergedWithNext, false)
	case preDigits:
		var spans []span
		for i := 0; i < len(p.s); {
			r, n := utf8.DecodeRuneInString(p.s[i:]) // an invalid byte is one non-digit
			spans = appendSpan(spans, i, i+n, unicode.IsNumber(r))
			i += n
		}
		b := behaviorContiguous
		if st.individualDigits {
			b = behaviorIsolated
		}
		return splitSpans(dst, p, spans, b, false)
	}
	return append(dst, p)
}

// span is a byte range of a piece; match reports whether the pattern
// matched it.
type span struct {
	start, end int
	match      bool
}

// appendSpan adds a one-character span, merging neighbouring non-matches
// as a regex gap would be.
func appendSpan(spans []span, start, end int, match bool) []span {
	if n := len(spans); n > 0 && !match && !spans[n-1].match {
		spans[n-1].end = end
		return spans
	}
	return append(spans, span{start, end, match})
}

// literalSpans covers s with the occurrences of lit and the gaps between.
func literalSpans(s, lit string) []span {
	var spans []span
	off := 0
	for {
		i := strings.Index(s[off:], lit)
		if i < 0 {
			break
		}
		if i > 0 {
			spans = append(spans, span{off, off + i, false})
		}
		spans = append(spans, span{off + i, off + i + len(lit), true})
		off += i + len(lit)
	}
	if off < len(s) {
		spans = append(spans, span{off, len(s), false})
	}
	return spans
}

// splitSpans cuts p at the spans as Hugging Face's NormalizedString.split
// does for the given behavior.
func splitSpans(dst []piece, p piece, spans []span, b splitBehavior, invert bool) []piece {
	if invert {
		for i := range spans {
			spans[i].match = !spans[i].match
		}
	}
	var out []span
	switch b {
	case behaviorRemoved, behaviorIsolated:
		out = spans
	case behaviorContiguous:
		prev := false
		for i, sp := range spans {
			if i > 0 && sp.match == prev {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prev = sp.match
		}
	case behaviorMergedWithPrevious:
		prev := false
		for _, sp := range spans {
			if sp.match && !prev && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prev = sp.match
		}
	case behaviorMergedWithNext:
		prev := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !prev && len(out) > 0 {
				out[len(out)-1].start = sp.start
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prev = sp.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	for _, sp := range out {
		if sp.end <= sp.start || (b == behaviorRemoved && sp.match) {
			continue
		}
		dst = append(dst, piece{s: p.s[sp.start:sp.end], atStart: p.atStart && sp.start == 0})
	}
	return dst
}
