package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// firstSpace says how the space in front of the first word, which
// SentencePiece adds when encoding, is removed when decoding.
type firstSpace uint8

const (
	firstSpaceKeep     firstSpace = iota
	firstSpaceLlamaCpp            // strip one space from the first id's piece unless that id is BOS
	firstSpaceLlama2C             // strip one space from a text piece that is first or follows BOS
)

// decodeSpec is everything decoding needs, precomputed per id.
type decodeSpec struct {
	rendered []string // id -> the text (bytes) the id decodes to
	byteVal  []int16  // id -> the byte of a byte token, or -1

	first firstSpace
	// perByteInvalid: bytes of byte tokens that do not form UTF-8 become
	// one U+FFFD each (Hugging Face ByteFallback); otherwise each maximal
	// invalid sequence becomes one U+FFFD, as String::from_utf8_lossy does.
	perByteInvalid bool
	// stripChar/stripStart: Hugging Face Strip decoder after Fuse: up to
	// stripStart leading stripChar characters of the output are removed.
	stripChar  rune
	stripStart int
	// joinSpace: no Hugging Face decoder; tokens are joined by spaces.
	joinSpace bool
	// chain renders the first token differently (Metaspace decoder).
	chain *hfChain
}

// byteOf returns the byte of byte token id, or -1.
func (s *decodeSpec) byteOf(id int) int {
	if s.byteVal == nil {
		return -1
	}
	return int(s.byteVal[id])
}

// newSPMDecodeSpec renders a SentencePiece vocabulary (GGUF llama,
// llama2.c) as llama.cpp's token_to_piece does: "▁" becomes a space, byte
// tokens their byte, special and user-defined tokens their text, unused
// tokens nothing.
func newSPMDecodeSpec(pieces []string, kinds []tokenKind, first firstSpace) *decodeSpec {
	s := &decodeSpec{rendered: make([]string, len(pieces)), byteVal: make([]int16, len(pieces)), first: first}
	for id, p := range pieces {
		s.byteVal[id] = -1
		switch kinds[id] {
		case kindNormal:
			s.rendered[id] = strings.ReplaceAll(p, "▁", " ")
		case kindByte:
			if b, ok := parseByteToken(p); ok {
				s.byteVal[id] = int16(b)
			} else {
				s.rendered[id] = p
			}
		case kindUnused:
		default:
			s.rendered[id] = p
		}
	}
	return s
}

// newBPEDecodeSpec renders a byte-level vocabulary (GGUF gpt2): normal
// tokens through the byte-level table, the others as their text.
func newBPEDecodeSpec(pieces []string, kinds []tokenKind) *decodeSpec {
	s := &decodeSpec{rendered: make([]string, len(pieces))}
	for id, p := range pieces {
		switch kinds[id] {
		case kindNormal, kindByte:
			s.rendered[id] = decodeByteLevel(p)
		case kindUnused:
		default:
			s.rendered[id] = p
		}
	}
	return s
}

// newHFDecodeSpec renders every id through a Hugging Face decoder chain.
func newHFDecodeSpec(pieces []string, chain *hfChain) *decodeSpec {
	s := &decodeSpec{rendered: make([]string, len(pieces))}
	if chain == nil {
		s.joinSpace = true
		copy(s.rendered, pieces)
		return s
	}
	s.stripChar, s.stripStart = chain.stripChar, chain.stripStart
	s.perByteInvalid = chain.byteFallback
	if chain.firstDiffers {
		s.chain = chain
	}
	if chain.byteFallback {
		s.byteVal = make([]int16, len(pieces))
	}
	for id, p := range pieces {
		text, b := chain.render(p, false)
		s.rendered[id] = text
		if s.byteVal != nil {
			s.byteVal[id] = int16(b)
		}
	}
	return s
}

// ---- Hugging Face decoders ----

type decOpKind uint8

const (
	decReplace decOpKind = iota + 1
	decMetaspace
	decStrip
	decByteFallback
	decByteLevel
)

// decOp is one per-token step of a decoder chain.
type decOp struct {
	kind         decOpKind
	from, to     string // decReplace
	char         rune   // decMetaspace replacement, decStrip content
	start, stop  int    // decStrip
	prependFirst bool   // decMetaspace: the first token loses its replacement characters
}

// hfChain is a Hugging Face decoder, flattened. Every supported decoder
// works token by token except Strip after Fuse, which trims the start of
// the whole output.
type hfChain struct {
	ops          []decOp
	byteFallback bool
	firstDiffers bool
	stripChar    rune
	stripStart   int
}

// render applies the per-token steps to one piece. It returns the text, or
// the byte when ByteFallback recognises a <0xAB> token.
func (c *hfChain) render(p string, first bool) (string, int) {
	for _, op := range c.ops {
		switch op.kind {
		case decReplace:
			p = strings.ReplaceAll(p, op.from, op.to)
		case decMetaspace:
			repl := " "
			if first && op.prependFirst {
				repl = ""
			}
			p = strings.ReplaceAll(p, string(op.char), repl)
		case decStrip:
			p = stripChars(p, op.char, op.start, op.stop)
		case decByteFallback:
			if b, ok := parseByteToken(p); ok {
				return "", int(b)
			}
		case decByteLevel:
			p = decodeByteLevel(p)
		}
	}
	return p, -1
}

// stripChars removes up to start leading and stop trailing c characters,
// as Hugging Face's Strip decoder does to each token.
func stripChars(s string, c rune, start, stop int) string {
	for ; start > 0; start-- {
		r, n := utf8.DecodeRuneInString(s)
		if n == 0 || r != c {
			break
		}
		s = s[n:]
	}
	for ; stop > 0; stop-- {
		r, n := utf8.DecodeLastRuneInString(s)
		if n == 0 || r != c {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

// parseDecoder compiles a tokenizer.json decoder; nil for JSON null.
func parseDecoder(raw json.RawMessage) (*hfChain, error) {
	c := &hfChain{}
	fused := false
	var walk func(raw json.RawMessage, depth int) error
	walk = func(raw json.RawMessage, depth int) error {
		d, ok, err := parseComponent(raw, "decoder")
		if err != nil || !ok {
			return err
		}
		if depth > 8 {
			return fmt.Errorf("decoder: Sequence nested too deep")
		}
		switch d.Type {
		case "Sequence":
			for _, r := range d.Decoders {
				if err := walk(r, depth+1); err != nil {
					return err
				}
			}
		case "Replace":
			if d.Pattern == nil || d.Pattern.String == nil || *d.Pattern.String == "" {
				return fmt.Errorf("decoder: Replace needs a non-empty literal pattern")
			}
			from := *d.Pattern.String
			if fused && utf8.RuneCountInString(from) != 1 {
				return fmt.Errorf("decoder: Replace of %q after Fuse is not supported", from)
			}
			c.ops = append(c.ops, decOp{kind: decReplace, from: from, to: d.Content})
		case "ByteFallback":
			if fused {
				return fmt.Errorf("decoder: ByteFallback after Fuse is not supported")
			}
			c.ops = append(c.ops, decOp{kind: decByteFallback})
			c.byteFallback = true
		case "Fuse":
			fused = true
		case "Strip":
			ch, n := utf8.DecodeRuneInString(d.Content)
			if n == 0 || n != len(d.Content) || d.Start < 0 || d.Stop < 0 {
				return fmt.Errorf("decoder: Strip content %q start %d stop %d is not valid", d.Content, d.Start, d.Stop)
			}
			if !fused {
				c.ops = append(c.ops, decOp{kind: decStrip, char: ch, start: d.Start, stop: d.Stop})
				break
			}
			if d.Stop != 0 || c.stripStart != 0 {
				return fmt.Errorf("decoder: Strip of the end of the output is not supported")
			}
			c.stripChar, c.stripStart = ch, d.Start
		case "ByteLevel":
			c.ops = append(c.ops, decOp{kind: decByteLevel})
			fused = true
		case "Metaspace":
			ch, n := utf8.DecodeRuneInString(d.Replacement)
			if n == 0 || n != len(d.Replacement) {
				return fmt.Errorf("decoder: Metaspace replacement %q is not one character", d.Replacement)
			}
			if fused {
				return fmt.Errorf("decoder: Metaspace after Fuse is not supported")
			}
			scheme, err := metaspacePrepend(d)
			if err != nil {
				return fmt.Errorf("decoder: %w", err)
			}
			op := decOp{kind: decMetaspace, char: ch, prependFirst: scheme != prependNever}
			c.ops = append(c.ops, op)
			c.firstDiffers = c.firstDiffers || op.prependFirst
		default:
			return fmt.Errorf("decoder: type %q is not supported", d.Type)
		}
		return nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if err := walk(raw, 0); err != nil {
		return nil, err
	}
	return c, nil
}
