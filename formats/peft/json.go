package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// member is one key/value pair of a JSON object, in file order.
type member struct {
	key string
	val json.RawMessage
}

// decodeObject splits a JSON object into its members in file order. A key
// that appears twice keeps its first position and its last value, as
// Python's json module builds a dict. Anything after the object is an
// error.
func decodeObject(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, found %s", describe(tok))
	}
	var ms []member
	index := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("want an object key, found %s", describe(tok))
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		if i, ok := index[key]; ok {
			ms[i].val = val
			continue
		}
		index[key] = len(ms)
		ms = append(ms, member{key, val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level object")
		}
		return nil, err
	}
	return ms, nil
}

func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return "'" + t.String() + "'"
	case string:
		return strconv.Quote(t)
	case nil:
		return "null"
	}
	return fmt.Sprint(tok)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind returns the first significant byte of a JSON value: '{', '[',
// '"', 'n', 't', 'f' or a digit or '-'.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func decodeString(field string, raw json.RawMessage) (string, error) {
	var s string
	if jsonKind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", invalid(field, "want a string, found %s", raw)
	}
	return s, nil
}

// decodeOptString decodes a string that may be null ("").
func decodeOptString(field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	return decodeString(field, raw)
}

func decodeBool(field string, raw json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, invalid(field, "want true or false, found %s", raw)
	}
	return b, nil
}

// decodeOptBool decodes a boolean that may be null (false).
func decodeOptBool(field string, raw json.RawMessage) (bool, error) {
	if isNull(raw) {
		return false, nil
	}
	return decodeBool(field, raw)
}

// decodeFloat decodes a finite JSON number.
func decodeFloat(field string, raw json.RawMessage) (float64, error) {
	var n json.Number
	if k := jsonKind(raw); k != '-' && (k < '0' || k > '9') || json.Unmarshal(raw, &n) != nil {
		return 0, invalid(field, "want a number, found %s", raw)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, invalid(field, "want a finite number, found %s", raw)
	}
	return f, nil
}

// decodeInt decodes a JSON number with an integral value (16 or 16.0).
func decodeInt(field string, raw json.RawMessage) (int, error) {
	f, err := decodeFloat(field, raw)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<40 {
		return 0, invalid(field, "want an integer, found %s", raw)
	}
	return int(f), nil
}

// decodeStrings decodes a list of strings; null gives nil.
func decodeStrings(field string, raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, invalid(field, "want a list of strings, found %s", raw)
	}
	if ss == nil {
		ss = []string{}
	}
	return ss, nil
}

// decodeInts decodes an integer or a list of integers; null gives nil.
func decodeInts(field string, raw json.RawMessage) ([]int, error) {
	if isNull(raw) {
		return nil, nil
	}
	if jsonKind(raw) != '[' {
		i, err := decodeInt(field, raw)
		if err != nil {
			return nil, invalid(field, "want an integer or a list of integers, found %s", raw)
		}
		return []int{i}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(field, "want an integer or a list of integers, found %s", raw)
	}
	out := make([]int, 0, len(items))
	for _, it := range items {
		i, err := decodeInt(field, it)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// decodePatterns decodes rank_pattern or alpha_pattern, keeping the keys in
// file order; null and {} give nil.
func decodePatterns(field string, raw json.RawMessage) ([]Pattern, error) {
	if isNull(raw) {
		return nil, nil
	}
	if jsonKind(raw) != '{' {
		return nil, invalid(field, "want an object mapping module patterns to numbers, found %s", raw)
	}
	ms, err := decodeObject(raw)
	if err != nil {
		return nil, invalid(field, "%v", err)
	}
	var ps []Pattern
	for _, m := range ms {
		v, err := decodeFloat(field, m.val)
		if err != nil {
			return nil, invalid(field, "key %q: want a number, found %s", m.key, m.val)
		}
		ps = append(ps, Pattern{Key: m.key, Value: v})
	}
	return ps, nil
}
