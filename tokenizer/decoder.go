package tokenizer

import "unicode/utf8"

// DecodeOptions controls DecodeWith and NewDecoderWith.
type DecodeOptions struct {
	// KeepSpecial renders special tokens (BOS, EOS, <|im_start|>, ...) as
	// their text instead of skipping them.
	KeepSpecial bool
	// Continuation says the ids continue text that was decoded before, such
	// as generated ids after a prompt: the leading space that decoding the
	// start of a SentencePiece text removes is kept.
	Continuation bool
}

// Decode returns the text of ids. Special tokens are skipped and ids out
// of range ignored. Bytes that do not form valid UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	return t.DecodeWith(ids, DecodeOptions{})
}

// DecodeWith returns the text of ids under the given options.
func (t *Tokenizer) DecodeWith(ids []int, o DecodeOptions) string {
	d := t.NewDecoderWith(o)
	d.out = make([]byte, 0, len(ids)*4)
	for _, id := range ids {
		d.feed(id)
	}
	d.flush()
	return string(d.out)
}

// Decoder decodes a stream of ids incrementally. It never returns half a
// UTF-8 character: the bytes of an incomplete character are held until it
// completes, and a sequence that can no longer complete becomes U+FFFD
// (one per invalid sequence, or one per byte for the byte tokens of a
// Hugging Face ByteFallback decoder). The concatenation of everything Next
// and Flush return equals Decode of the whole sequence. A Decoder is not
// safe for concurrent use; each stream needs its own.
type Decoder struct {
	t    *Tokenizer
	spec *decodeSpec
	keep bool // render special tokens

	n        int  // ids fed so far
	rendered int  // ids that reached the output so far
	prevBOS  bool // the previous id was BOS
	strip    int  // leading strip characters still to remove

	pend  [utf8.UTFMax]byte // start of an incomplete character
	npend int
	need  int // length of the pending character

	out []byte
}

// NewDecoder returns a Decoder that decodes as Decode does.
func (t *Tokenizer) NewDecoder() *Decoder { return t.NewDecoderWith(DecodeOptions{}) }

// NewDecoderWith returns a Decoder that decodes as DecodeWith does.
func (t *Tokenizer) NewDecoderWith(o DecodeOptions) *Decoder {
	d := &Decoder{t: t, spec: t.dec, keep: o.KeepSpecial}
	if o.Continuation {
		d.n, d.rendered = 1, 1
	} else {
		d.strip = t.dec.stripStart
	}
	return d
}

// Next feeds one id and returns the text that is now complete.
func (d *Decoder) Next(id int) string {
	d.out = d.out[:0]
	d.feed(id)
	return string(d.out)
}

// Flush returns the held bytes of an incomplete character as U+FFFD and
// resets the character state; the Decoder may be fed further.
func (d *Decoder) Flush() string {
	d.out = d.out[:0]
	d.flush()
	return string(d.out)
}

func (d *Decoder) flush() {
	if d.npend > 0 {
		d.invalidPending()
	}
}

func (d *Decoder) feed(id int) {
	s := d.spec
	index := d.n
	d.n++
	afterBOS := d.prevBOS
	d.prevBOS = id >= 0 && id == d.t.bos
	if id < 0 || id >= len(s.rendered) {
		return
	}
	if k := d.t.kinds[id]; (k.isSpecial() || k == kindUnused) && !d.keep {
		return
	}
	text, b := s.rendered[id], s.byteOf(id)
	first := d.rendered == 0
	d.rendered++
	if first && s.chain != nil {
		text, b = s.chain.render(d.t.pieces[id], true)
	}
	if s.joinSpace && !first {
		d.text(" ")
	}
	switch s.first {
	case firstSpaceLlamaCpp:
		if index == 0 && id != d.t.bos {
			if b == ' ' {
				return
			}
			text = trimOneSpace(text)
		}
	case firstSpaceLlama2C:
		if index == 0 || afterBOS {
			text = trimOneSpace(text)
		}
	}
	if b >= 0 {
		d.byte(byte(b))
		return
	}
	d.text(text)
}

func trimOneSpace(s string) string {
	if len(s) > 0 && s[0] == ' ' {
		return s[1:]
	}
	return s
}

// text outputs the bytes of a text piece.
func (d *Decoder) text(s string) {
	if d.spec.perByteInvalid && d.npend > 0 {
		d.invalidPending() // a run of byte tokens ended incomplete
	}
	if d.npend == 0 && d.strip == 0 && utf8.ValidString(s) {
		d.out = append(d.out, s...)
		return
	}
	for i := 0; i < len(s); i++ {
		d.byte(s[i])
	}
}

// byte outputs one byte, assembling UTF-8 characters.
func (d *Decoder) byte(c byte) {
	if d.npend > 0 {
		if continues(d.pend[0], d.npend, c) {
			d.pend[d.npend] = c
			d.npend++
			if d.npend == d.need {
				d.emit(d.pend[:d.npend])
				d.npend = 0
			}
			return
		}
		d.invalidPending()
	}
	switch n := utf8SeqNeed(c); n {
	case 1:
		d.emit([]byte{c})
	case 0:
		d.emit(replacementChar)
	default:
		d.pend[0], d.npend, d.need = c, 1, n
	}
}

var replacementChar = []byte(string(utf8.RuneError))

// invalidPending replaces the pending bytes, which cannot complete a
// character, by U+FFFD.
func (d *Decoder) invalidPending() {
	n := 1
	if d.spec.perByteInvalid {
		n = d.npend
	}
	d.npend = 0
	for ; n > 0; n-- {
		d.emit(replacementChar)
	}
}

// emit outputs one complete character, removing the leading characters a
// Strip decoder asks for.
func (d *Decoder) emit(ch []byte) {
	if d.strip > 0 {
		if r, _ := utf8.DecodeRune(ch); r == d.spec.stripChar {
			d.strip--
			return
		}
		d.strip = 0
	}
	d.out = append(d.out, ch...)
}

// utf8SeqNeed returns the length of the UTF-8 sequence lead byte c starts:
// 1 for ASCII, 2 to 4 for a lead byte, 0 for a byte that cannot start one.
func utf8SeqNeed(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// continues reports whether c can be byte number n (from 0) of a sequence
// led by lead, excluding overlong forms, surrogates and values past
// U+10FFFF as UTF-8 does.
func continues(lead byte, n int, c byte) bool {
	lo, hi := byte(0x80), byte(0xBF)
	if n == 1 {
		switch lead {
		case 0xE0:
			lo = 0xA0
		case 0xED:
			hi = 0x9F
		case 0xF0:
			lo = 0x90
		case 0xF4:
			hi = 0x8F
		}
	}
	return c >= lo && c <= hi
}
