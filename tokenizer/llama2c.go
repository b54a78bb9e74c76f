package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// FromLlama2C reads the tokenizer.bin of llama2.c (for example tok512.bin
// of stories260K): a little-endian int32 max_token_length, then for each of
// vocabSize tokens a float32 score, an int32 length and the piece's bytes.
// The pieces use spaces where SentencePiece writes "▁", and BOS/EOS are
// stored as "\n<s>\n" and "\n</s>\n"; both are converted back, so the
// result encodes exactly like the same vocabulary in GGUF form. Decoding
// removes the leading space of the first piece and of a piece after BOS,
// as llama2.c's decode does.
func FromLlama2C(data []byte, vocabSize int) (*Tokenizer, error) {
	t, err := fromLlama2C(data, vocabSize)
	if err != nil {
		return nil, &FormatError{Source: "tokenizer.bin", Err: err}
	}
	return t, nil
}

func fromLlama2C(data []byte, vocabSize int) (*Tokenizer, error) {
	if vocabSize <= 0 || vocabSize >= maxVocab {
		return nil, fmt.Errorf("vocabulary size %d", vocabSize)
	}
	if len(data) < 4 {
		return nil, errors.New("too short for max_token_length")
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen < 0 {
		return nil, fmt.Errorf("max_token_length %d", maxLen)
	}
	if vocabSize > (len(data)-4)/8 {
		return nil, fmt.Errorf("%d bytes cannot hold %d tokens", len(data), vocabSize)
	}
	v := GGUFVocab{
		Model:      "llama",
		Tokens:     make([]string, vocabSize),
		Scores:     make([]float32, vocabSize),
		TokenTypes: make([]int32, vocabSize),
		BOS:        1, EOS: 2, UNK: 0, PAD: -1,
	}
	off := 4
	for i := range vocabSize {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("token %d: truncated at byte %d", i, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || int64(n) > int64(len(data)-off) {
			return nil, fmt.Errorf("token %d: length %d at byte %d runs past the end", i, n, off-4)
		}
		p := string(data[off : off+int(n)])
		off += int(n)
		v.Scores[i] = score
		switch {
		case i == 0:
			v.TokenTypes[i] = ggufUnknown
		case i == 1 || i == 2:
			p = strings.TrimSpace(p) // "\n<s>\n" -> "<s>"
			v.TokenTypes[i] = ggufControl
		default:
			p = strings.ReplaceAll(p, " ", "▁")
			v.TokenTypes[i] = ggufNormal
			if _, ok := parseByteToken(p); ok {
				v.TokenTypes[i] = ggufByte
			}
		}
		v.Tokens[i] = p
	}
	t, err := fromGGUF(v)
	if err != nil {
		return nil, err
	}
	t.dec.first = firstSpaceLlama2C
	return t, nil
}
