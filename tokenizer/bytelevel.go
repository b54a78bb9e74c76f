package tokenizer

// GPT-2's byte-level encoding gives every byte a printable character: the
// printable Latin-1 bytes stand for themselves and the other 68 bytes map,
// in order, to U+0100 onwards (so a space is "Ġ" U+0120 and "\n" is "Ċ").
// Byte-level BPE vocabularies are written in these characters.

// byteLevelMaxRune is one past the largest character the encoding uses.
const byteLevelMaxRune = 256 + 68

var (
	// byteLevelEnc[b] is the UTF-8 encoding of byte b's character.
	byteLevelEnc [256]string
	// byteLevelDec[r] is the byte that character r stands for, or -1.
	byteLevelDec [byteLevelMaxRune]int16
)

func init() {
	for i := range byteLevelDec {
		byteLevelDec[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if !printable {
			r = rune(256 + n)
			n++
		}
		byteLevelEnc[b] = string(r)
		byteLevelDec[r] = int16(b)
	}
}

// appendByteLevel appends the byte-level encoding of s to dst.
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteLevelEnc[s[i]]...)
	}
	return dst
}

// decodeByteLevel turns a byte-level piece back into the bytes it stands
// for. Like Hugging Face's ByteLevel decoder, a piece holding any character
// outside the encoding (an added token such as "<|im_start|>" is fine, a
// space is not) is returned as its own UTF-8 bytes.
func decodeByteLevel(piece string) string {
	buf := make([]byte, 0, len(piece))
	for _, r := range piece { // invalid UTF-8 reads as U+FFFD, outside the encoding
		if r < 0 || r >= byteLevelMaxRune || byteLevelDec[r] < 0 {
			return piece
		}
		buf = append(buf, byte(byteLevelDec[r]))
	}
	return string(buf)
}
