package tokenizer

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The model section of a large tokenizer.json (Llama 3: 128k vocabulary
// entries, 280k merges) is read with this small scanner instead of
// encoding/json, which validates and decodes the same bytes several times
// and takes most of a second. It follows JSON's grammar for the strings,
// integers, objects and arrays it decodes (numbers it only skips are read
// loosely) and decodes strings as encoding/json does: invalid UTF-8 and
// lone surrogates become U+FFFD.

type jsonScanner struct {
	b []byte
	i int
	// shared, when set, is string(b): strings without escapes are sliced
	// from it instead of allocated one by one.
	shared string
}

var errJSONSyntax = errors.New("invalid JSON")

func (s *jsonScanner) errorf(what string) error {
	return fmt.Errorf("%s at byte %d: %w", what, s.i, errJSONSyntax)
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a string value.
func (s *jsonScanner) str() (string, error) {
	raw, simple, err := s.scanString()
	if err != nil {
		return "", err
	}
	if simple && utf8.Valid(raw) {
		if s.shared != "" {
			end := s.i - 1
			return s.shared[end-len(raw) : end], nil
		}
		return string(raw), nil
	}
	return unquoteJSON(raw)
}

// scanString passes over a string value and returns its body; simple
// reports that it has no escapes.
func (s *jsonScanner) scanString() (raw []byte, simple bool, err error) {
	if !s.consume('"') {
		return nil, false, s.errorf("expected a string")
	}
	start := s.i
	simple = true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, simple, nil
		case c == '\\':
			simple = false
			s.i += 2
		case c < 0x20:
			return nil, false, s.errorf("control character in string")
		default:
			s.i++
		}
	}
	return nil, false, s.errorf("unterminated string")
}

// unquoteJSON decodes the body of a JSON string that has escapes or
// invalid UTF-8.
func unquoteJSON(raw []byte) (string, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+n]...)
			}
			i += n
			continue
		}
		if i+1 >= len(raw) {
			return "", errJSONSyntax
		}
		esc := raw[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw, i)
			if !ok {
				return "", errJSONSyntax
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2, ok := hex4(raw, i+2); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errJSONSyntax
		}
	}
	return string(out), nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		d, ok := hexDigit(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// integer reads a number that must be an integer.
func (s *jsonScanner) integer() (int, error) {
	s.ws()
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if n > maxVocab {
			return 0, s.errorf("number too large")
		}
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, s.errorf("expected an integer")
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, s.errorf("expected an integer")
		}
	}
	if neg {
		n = -n
	}
	return n, nil
}

// skip passes over any value.
func (s *jsonScanner) skip(depth int) error {
	if depth > 64 {
		return s.errorf("nesting too deep")
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.scanString()
		return err
	case c == '{':
		return s.object(func(string) error { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() error { return s.skip(depth + 1) })
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s.i++
		for s.i < len(s.b) {
			c := s.b[s.i]
			if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				s.i++
				continue
			}
			break
		}
		return nil
	}
	return s.errorf("expected a value")
}

func (s *jsonScanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.errorf("expected " + lit)
	}
	s.i += len(lit)
	return nil
}

// object reads an object, calling member for each key with the scanner
// positioned at the value, which member must consume.
func (s *jsonScanner) object(member func(key string) error) error {
	if !s.consume('{') {
		return s.errorf("expected an object")
	}
	if s.consume('}') {
		return nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		if !s.consume(':') {
			return s.errorf("expected ':'")
		}
		if err := member(k); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return nil
		}
		return s.errorf("expected ',' or '}'")
	}
}

// array reads an array, calling elem with the scanner at each element.
func (s *jsonScanner) array(elem func() error) error {
	if !s.consume('[') {
		return s.errorf("expected an array")
	}
	if s.consume(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if s.consume(']') {
			return nil
		}
		return s.errorf("expected ',' or ']'")
	}
}

// rawValue returns the bytes of the next value.
func (s *jsonScanner) rawValue() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// scanVocab reads a BPE vocabulary object {"piece": id, ...}.
func scanVocab(raw []byte) (map[string]int, error) {
	s := &jsonScanner{b: raw, shared: string(raw)}
	vocab := make(map[string]int, len(raw)/16)
	err := s.object(func(k string) error {
		id, err := s.integer()
		vocab[k] = id
		return err
	})
	if err != nil {
		return nil, err
	}
	return vocab, s.end()
}

// scanMerges reads merges written as "a b" strings or as [a, b] pairs.
func scanMerges(raw []byte) ([][2]string, error) {
	s := &jsonScanner{b: raw, shared: string(raw)}
	if s.peek() == 'n' {
		return nil, s.literal("null")
	}
	merges := make([][2]string, 0, len(raw)/12)
	err := s.array(func() error {
		if s.peek() == '"' {
			line, err := s.str()
			if err != nil {
				return err
			}
			m, err := splitMerge(line)
			merges = append(merges, m)
			return err
		}
		var m [2]string
		n := 0
		err := s.array(func() error {
			p, err := s.str()
			if n < 2 {
				m[n] = p
			}
			n++
			return err
		})
		if err == nil && n != 2 {
			err = fmt.Errorf("merge %d has %d parts, want 2", len(merges), n)
		}
		merges = append(merges, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	return merges, s.end()
}

// members returns the raw values of an object's members; a repeated key
// keeps its last value, as in encoding/json.
func members(raw []byte) (map[string][]byte, error) {
	s := &jsonScanner{b: raw}
	m := make(map[string][]byte)
	err := s.object(func(k string) error {
		v, err := s.rawValue()
		m[k] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, s.end()
}

func (s *jsonScanner) end() error {
	if s.peek() != 0 {
		return s.errorf("unexpected data after the value")
	}
	return nil
}
