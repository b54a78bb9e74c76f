package tokenizer

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Unicode Normalization Form C, for the NFC normalizer of Qwen2 and other
// tokenizer.json files. The standard library has no normalization, so the
// tables are generated (nfc_tables.go); the algorithm is UAX #15:
// canonical decomposition, canonical ordering, canonical composition.

//go:generate sh -c "cd internal/nfcgen && python3 gen.py > ../../nfc_tables.go && gofmt -w ../../nfc_tables.go"

// nfcData is built once from the generated tables and only read after.
type nfcData struct {
	decomp  map[rune][]rune // full canonical decomposition
	compose map[uint64]rune // primary composites by their two parts
	second  map[rune]bool   // characters that can be the second part of a composite
}

var nfcTables = buildNFCData()

func buildNFCData() *nfcData {
	d := &nfcData{
		decomp:  make(map[rune][]rune, len(canonicalDecomps)),
		compose: make(map[uint64]rune, len(canonicalDecomps)),
		second:  make(map[rune]bool),
	}
	single := make(map[rune][]rune, len(canonicalDecomps))
	for _, e := range canonicalDecomps {
		parts := []rune{rune(e[1])}
		if e[2] != 0 {
			parts = append(parts, rune(e[2]))
		}
		single[rune(e[0])] = parts
		if e[3] == 1 {
			d.compose[pairKey(rune(e[1]), rune(e[2]))] = rune(e[0])
			d.second[rune(e[2])] = true
		}
	}
	var full func(r rune) []rune
	full = func(r rune) []rune {
		parts, ok := single[r]
		if !ok {
			return []rune{r}
		}
		var out []rune
		for _, p := range parts {
			out = append(out, full(p)...)
		}
		return out
	}
	for r := range single {
		d.decomp[r] = full(r)
	}
	return d
}

func pairKey(a, b rune) uint64 { return uint64(a)<<32 | uint64(uint32(b)) }

// Hangul syllable arithmetic (Unicode chapter 3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(cccRanges), func(i int) bool { return cccRanges[i][1] >= uint32(r) })
	if i < len(cccRanges) && cccRanges[i][0] <= uint32(r) {
		return uint8(cccRanges[i][2])
	}
	return 0
}

// nfcAffects reports whether r may change under NFC or make its
// neighbours change.
func nfcAffects(r rune) bool {
	if r < 0x300 {
		return false
	}
	if combiningClass(r) != 0 || nfcTables.second[r] {
		return true
	}
	if _, ok := nfcTables.decomp[r]; ok {
		return true
	}
	return (r >= hangulVBase && r < hangulVBase+hangulVCount) ||
		(r > hangulTBase && r < hangulTBase+hangulTCount)
}

// nfc returns s in Normalization Form C. Bytes that are not valid UTF-8
// are kept as they are and block composition across them.
//
// The text is cut before every character that NFC leaves alone and that
// nothing can combine with (an inert character); only the pieces that hold
// another character are normalized.
func nfc(s string) string {
	first := -1 // start of the first piece that needs work
	prev := 0   // start of the last inert character seen
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if nfcAffects(r) && !(r == utf8.RuneError && n == 1) {
			first = prev
			break
		}
		prev = i
		i += n
	}
	if first < 0 {
		return s // the common case: nothing to do
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:first])
	for i := first; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i]) // invalid: kept, and a boundary
			i++
			continue
		}
		// The piece is this character and the non-inert ones after it.
		end, work := i+n, nfcAffects(r)
		for end < len(s) {
			r, n := utf8.DecodeRuneInString(s[end:])
			if !nfcAffects(r) || (r == utf8.RuneError && n == 1) {
				break
			}
			end += n
			work = true
		}
		if work {
			b.WriteString(nfcValid(s[i:end]))
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	return b.String()
}

// nfcValid normalizes valid UTF-8.
func nfcValid(s string) string {
	// Decompose.
	runes := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r >= hangulSBase && r < hangulSBase+hangulSCount:
			si := r - hangulSBase
			runes = append(runes, hangulLBase+si/hangulNCount, hangulVBase+(si%hangulNCount)/hangulTCount)
			if t := si % hangulTCount; t != 0 {
				runes = append(runes, hangulTBase+t)
			}
		default:
			if d, ok := nfcTables.decomp[r]; ok {
				runes = append(runes, d...)
			} else {
				runes = append(runes, r)
			}
		}
	}
	// Order each run of non-starters by combining class (stable).
	for i := 1; i < len(runes); i++ {
		c := combiningClass(runes[i])
		if c == 0 {
			continue
		}
		for j := i; j > 0; j-- {
			p := combiningClass(runes[j-1])
			if p <= c {
				break
			}
			runes[j-1], runes[j] = runes[j], runes[j-1]
		}
	}
	// Compose.
	out := runes[:0]
	starter := -1
	var last uint8 // class of the last character kept after the starter
	for _, r := range runes {
		c := combiningClass(r)
		if starter >= 0 {
			adjacent := len(out)-1 == starter
			if adjacent || (last != 0 && last < c) {
				if comp, ok := composePair(out[starter], r); ok {
					out[starter] = comp
					continue
				}
			}
		}
		if c == 0 {
			starter = len(out)
		}
		last = c
		out = append(out, r)
	}
	return string(out)
}

func composePair(a, b rune) (rune, bool) {
	if a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount {
		return hangulSBase + ((a-hangulLBase)*hangulVCount+(b-hangulVBase))*hangulTCount, true
	}
	if a >= hangulSBase && a < hangulSBase+hangulSCount && (a-hangulSBase)%hangulTCount == 0 &&
		b > hangulTBase && b < hangulTBase+hangulTCount {
		return a + (b - hangulTBase), true
	}
	r, ok := nfcTables.compose[pairKey(a, b)]
	return r, ok
}
