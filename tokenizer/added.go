package tokenizer

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Added and special tokens are split out of the text before the model
// runs. Hugging Face and llama.cpp do this differently, and both ways are
// here: addedMatcher for tokenizer.json, partitioner for GGUF.

// segment is a piece of the input: text for the model, or one token.
type segment struct {
	text string
	id   int // the token, or -1 for text
	off  int // byte offset of the piece in the text it was split from
}

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens the way Hugging Face's AddedVocabulary
// does: leftmost-longest matching (an Aho-Corasick automaton there), with
// the single_word, lstrip and rstrip options.
type addedMatcher struct {
	toks    []addedToken
	byFirst [256][]int32 // indices into toks by first byte, longest first
}

func newAddedMatcher(toks []addedToken) *addedMatcher {
	m := &addedMatcher{}
	for _, t := range toks {
		if t.Content != "" {
			m.toks = append(m.toks, t)
		}
	}
	for i, t := range m.toks {
		b := t.Content[0]
		m.byFirst[b] = append(m.byFirst[b], int32(i))
	}
	for b := range m.byFirst {
		slices.SortStableFunc(m.byFirst[b], func(x, y int32) int {
			return len(m.toks[y].Content) - len(m.toks[x].Content)
		})
	}
	return m
}

func (m *addedMatcher) empty() bool { return m == nil || len(m.toks) == 0 }

// find returns the leftmost, then longest, token occurring in s at or
// after from: its start and index in m.toks, or -1, -1.
func (m *addedMatcher) find(s string, from int) (int, int) {
	for i := from; i < len(s); i++ {
		for _, k := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], m.toks[k].Content) {
				return i, int(k)
			}
		}
	}
	return -1, -1
}

// split appends the pieces of s to dst; off is the offset of s in the
// input. Special tokens are skipped (left in the text) unless
// parseSpecial is set; their text still cannot be matched by another
// token, as in Hugging Face's split_special_tokens mode.
func (m *addedMatcher) split(dst []segment, s string, off int, parseSpecial bool) []segment {
	if m.empty() {
		return append(dst, segment{text: s, id: -1, off: off})
	}
	done := 0 // s[:done] has been written out
	for pos := 0; pos < len(s); {
		start, k := m.find(s, pos)
		if start < 0 {
			break
		}
		t := &m.toks[k]
		stop := start + len(t.Content)
		pos = stop // the automaton resumes after the match, whatever happens to it
		if !parseSpecial && t.Special {
			continue
		}
		if t.SingleWord {
			startOK := start == 0 || !endsWithWordChar(s[:start])
			stopOK := stop == len(s) || !startsWithWordChar(s[stop:])
			if !startOK || !stopOK {
				continue
			}
		}
		if start < done {
			continue // overlaps white space a previous token stripped
		}
		if t.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), done)
		}
		if t.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if done < start {
			dst = append(dst, segment{text: s[done:start], id: -1, off: off + done})
		}
		dst = append(dst, segment{text: s[start:stop], id: t.ID, off: off + start})
		done = stop
	}
	if done < len(s) || len(s) == 0 {
		dst = append(dst, segment{text: s[done:], id: -1, off: off + done})
	}
	return dst
}

// isWordChar is \w of Rust's regex crate: alphabetic, mark, decimal digit,
// connector punctuation or join control.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Other_Alphabetic, r) || r == 0x200C || r == 0x200D
}

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}

// specialToken is a token llama.cpp splits out of the text: a control,
// unknown or user-defined entry of a GGUF vocabulary.
type specialToken struct {
	id             int
	text           string
	needsParse     bool // control or unknown: split only when parsing special tokens
	lstrip, rstrip bool // eat ASCII white space on that side (llama.cpp token attributes)
}

// partitioner splits special tokens out of the text as llama.cpp's
// tokenizer_st_partition does: one token at a time, longest token first,
// each splitting every text fragment left by the tokens before it.
type partitioner struct {
	toks []specialToken // longest first
}

func newPartitioner(toks []specialToken) *partitioner {
	p := &partitioner{}
	for _, t := range toks {
		if t.text != "" {
			p.toks = append(p.toks, t)
		}
	}
	slices.SortStableFunc(p.toks, func(a, b specialToken) int { return len(b.text) - len(a.text) })
	return p
}

func (p *partitioner) split(text string, parseSpecial bool) []segment {
	frags := []segment{{text: text, id: -1}}
	var next []segment
	for _, tok := range p.toks {
		if tok.needsParse && !parseSpecial {
			continue
		}
		next = next[:0]
		for _, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, tok.text) {
				next = append(next, f)
				continue
			}
			rest, off := f.text, f.off
			for rest != "" {
				i := strings.Index(rest, tok.text)
				if i < 0 {
					next = append(next, segment{text: rest, id: -1, off: off})
					break
				}
				left := rest[:i]
				if tok.lstrip {
					left = strings.TrimRight(left, cSpaces)
				}
				if left != "" {
					next = append(next, segment{text: left, id: -1, off: off})
				}
				next = append(next, segment{text: tok.text, id: tok.id, off: off + i})
				right := rest[i+len(tok.text):]
				if tok.rstrip {
					right = strings.TrimLeft(right, cSpaces)
				}
				off += len(rest) - len(right)
				rest = right
			}
		}
		frags, next = next, frags
	}
	return frags
}

// cSpaces are the characters C's isspace accepts.
const cSpaces = " \t\n\v\f\r"
