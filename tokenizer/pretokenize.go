package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The byte-level BPE models split text into words with a regular
// expression before merging. The expressions of GPT-2, Llama 3 and Qwen2
// need look-ahead (\s+(?!\S)) and Unicode classes, which Go's regexp does
// not have, so each is hand-coded below as a scan over code points. The
// scans follow llama.cpp's unicode_regex_split_custom_gpt2 and
// unicode_regex_split_custom_llama3, which reproduce the expressions'
// backtracking exactly; a code point that is neither letter, number nor
// white space counts as "other" even when it is unassigned, as in the
// regular expression.

// Pattern strings as they appear in tokenizer.json Split pre-tokenizers.
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

	// llama.cpp spells the case-insensitive contractions without (?i:...).
	contractionsCI      = `(?i:'s|'t|'re|'ve|'m|'ll|'d)`
	contractionsSpelled = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`
)

// splitter is one of the hand-coded pre-tokenizer expressions.
type splitter uint8

const (
	splitGPT2   splitter = iota + 1 // GPT-2: contractions, ` ?\p{L}+`, ` ?\p{N}+`, ...
	splitLlama3                     // Llama 3: case-insensitive contractions, numbers in threes
	splitQwen2                      // Qwen2: as Llama 3 but one digit per word
)

// splitterForPattern returns the splitter whose expression is pattern.
func splitterForPattern(pattern string) (splitter, bool) {
	p := strings.Replace(pattern, contractionsSpelled, contractionsCI, 1)
	switch p {
	case patternGPT2:
		return splitGPT2, true
	case patternLlama3:
		return splitLlama3, true
	case patternQwen2:
		return splitQwen2, true
	}
	return 0, false
}

// cpClass is the class of a code point as the expressions see it.
type cpClass uint8

const (
	clsNone   cpClass = iota // outside the text
	clsOther                 // [^\s\p{L}\p{N}], including bytes of invalid UTF-8
	clsLetter                // \p{L}
	clsNumber                // \p{N}
	clsSpace                 // \s (Unicode White_Space)
)

// asciiClass holds the classes of the ASCII code points.
var asciiClass = func() (t [utf8.RuneSelf]cpClass) {
	for c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = clsLetter
		case c >= '0' && c <= '9':
			t[c] = clsNumber
		case c == ' ', c >= '\t' && c <= '\r':
			t[c] = clsSpace
		default:
			t[c] = clsOther
		}
	}
	return t
}()

func classify(r rune) cpClass {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case unicode.IsSpace(r):
		return clsSpace
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	}
	return clsOther
}

// cpText is a string decoded into code points. A byte that is not valid
// UTF-8 is a code point of its own, of class other, so splitting never
// loses or changes bytes.
type cpText struct {
	s   string
	off []int // off[i] is the byte offset of code point i; off[n] == len(s)
	r   []rune
	cls []cpClass
}

func newCPText(s string) *cpText {
	t := &cpText{
		s:   s,
		off: make([]int, 0, len(s)+1),
		r:   make([]rune, 0, len(s)),
		cls: make([]cpClass, 0, len(s)),
	}
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		c := clsOther
		if r < utf8.RuneSelf {
			c = asciiClass[r]
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				r = -1 // matches no literal in the expressions
			} else {
				c = classify(r)
			}
		}
		t.off = append(t.off, i)
		t.r = append(t.r, r)
		t.cls = append(t.cls, c)
		i += size
	}
	t.off = append(t.off, len(s))
	return t
}

func (t *cpText) len() int { return len(t.r) }

func (t *cpText) class(i int) cpClass {
	if i < 0 || i >= len(t.cls) {
		return clsNone
	}
	return t.cls[i]
}

func (t *cpText) at(i int) rune {
	if i < 0 || i >= len(t.r) {
		return -1
	}
	return t.r[i]
}

// words collects the words of a split; add ends the current word at a code
// point index.
type words struct {
	t    *cpText
	dst  []string
	prev int
}

func (w *words) add(end int) {
	if end > w.prev {
		w.dst = append(w.dst, w.t.s[w.t.off[w.prev]:w.t.off[end]])
	}
	w.prev = end
}

// split appends the words of s to dst.
func (sp splitter) split(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	t := newCPText(s)
	w := &words{t: t, dst: dst}
	switch sp {
	case splitGPT2:
		splitGPT2Words(w)
	case splitLlama3:
		splitLlama3Words(w, 3)
	case splitQwen2:
		splitLlama3Words(w, 1)
	default:
		w.add(t.len())
	}
	return w.dst
}

// contraction returns the length in code points of an English contraction
// ('s 't 're 've 'm 'll 'd) starting at pos, or 0.
func contraction(t *cpText, pos int, foldCase bool) int {
	if t.at(pos) != '\'' || pos+1 >= t.len() {
		return 0
	}
	lower := func(r rune) rune {
		if foldCase && r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	c1 := lower(t.at(pos + 1))
	switch c1 {
	case 's', 't', 'm', 'd':
		return 2
	}
	if pos+2 >= t.len() {
		return 0
	}
	c2 := lower(t.at(pos + 2))
	if (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') {
		return 3
	}
	return 0
}

// splitGPT2Words splits by
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2Words(w *words) {
	t := w.t
	n := t.len()
	for pos := 0; pos < n; {
		if k := contraction(t, pos, false); k > 0 {
			pos += k
			w.add(pos)
			continue
		}
		c := t.at(pos)
		f := t.class(pos)
		if c == ' ' {
			f = t.class(pos + 1)
		}
		// ` ?\p{L}+`, ` ?\p{N}+` and ` ?[^\s\p{L}\p{N}]+`.
		if f == clsLetter || f == clsNumber || f == clsOther {
			if c == ' ' {
				pos++
			}
			for t.class(pos) == f {
				pos++
			}
			w.add(pos)
			continue
		}
		pos = splitSpaces(w, pos, false)
	}
}

// splitLlama3Words splits by
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3Words(w *words, maxDigits int) {
	t := w.t
	n := t.len()
	for pos := 0; pos < n; {
		if k := contraction(t, pos, true); k > 0 {
			pos += k
			w.add(pos)
			continue
		}
		c := t.at(pos)
		f := t.class(pos)
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if c != '\r' && c != '\n' && f != clsNumber && (f == clsLetter || t.class(pos+1) == clsLetter) {
			pos++
			for t.class(pos) == clsLetter {
				pos++
			}
			w.add(pos)
			continue
		}
		// \p{N}{1,maxDigits}
		if f == clsNumber {
			start := pos
			for t.class(pos) == clsNumber {
				pos++
				if pos-start >= maxDigits {
					w.add(pos)
					start = pos
				}
			}
			w.add(pos)
			continue
		}
		// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		f2 := f
		if c == ' ' {
			f2 = t.class(pos + 1)
		}
		if f2 == clsOther {
			if c == ' ' {
				pos++
			}
			for t.class(pos) == clsOther {
				pos++
			}
			for r := t.at(pos); r == '\r' || r == '\n'; r = t.at(pos) {
				pos++
			}
			w.add(pos)
			continue
		}
		pos = splitSpaces(w, pos, true)
	}
}

// splitSpaces handles the white-space alternatives at pos: \s*[\r\n]+ when
// newlines is set, then \s+(?!\S) and \s+. A code point that matches none of
// them becomes a word of its own. It returns the new position.
func splitSpaces(w *words, pos int, newlines bool) int {
	t := w.t
	nws, lastNL := 0, 0
	for t.class(pos+nws) == clsSpace {
		if r := t.at(pos + nws); r == '\r' || r == '\n' {
			lastNL = pos + nws + 1
		}
		nws++
	}
	switch {
	case newlines && lastNL > 0: // \s*[\r\n]+
		pos = lastNL
	case nws > 1 && pos+nws < t.len(): // \s+(?!\S): leave the last space to the next word
		pos += nws - 1
	case nws > 0: // \s+
		pos += nws
	default:
		pos++
	}
	w.add(pos)
	return pos
}
