package tokenizer

import "math"

// spmModel is SentencePiece BPE as llama.cpp's llm_tokenizer_spm runs it:
// the text is split into UTF-8 characters, then the adjacent pair whose
// concatenation is the vocabulary piece with the highest score is merged,
// leftmost first among equal scores, until no concatenation is in the
// vocabulary. A remaining symbol that is not a piece is written as byte
// tokens <0xAB>. llama2.c's encoder gives the same result.
type spmModel struct {
	vocab   map[string]int // every piece, special ones included, as llama.cpp looks them up
	scores  []float32
	byteIDs [256]int // ids of the <0xAB> tokens, -1 when absent
	unk     int      // used for a byte without a byte token; -1 drops it
}

type spmSymbol struct {
	start, n   int // byte range text[start:start+n]; n == 0 once merged away
	prev, next int
}

type spmBigram struct {
	left, right int32
	score       float32
	size        int32
}

// before orders the work queue: higher score first, then leftmost.
func (a spmBigram) before(b spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// bigramHeap is a binary min-heap of bigrams, best score first.
type bigramHeap = minHeap[spmBigram]

// utf8SeqLen is llama.cpp's unicode_len_utf8: the length a lead byte
// announces, 1 for a byte that cannot lead.
func utf8SeqLen(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// spmSession holds the state of one encode call.
type spmSession struct {
	m       *spmModel
	text    string
	symbols []spmSymbol
	queue   bigramHeap
}

// encode appends the ids of text, whose spaces are already escaped as "▁".
func (m *spmModel) encode(dst []int, text string) []int {
	if text == "" {
		return dst
	}
	if len(text) >= math.MaxInt32 {
		return dst // a bigram's size would overflow; no tokenizer input is this long
	}
	s := &spmSession{m: m, text: text, symbols: make([]spmSymbol, 0, len(text)), queue: make(bigramHeap, 0, len(text))}
	for off := 0; off < len(text); {
		n := min(utf8SeqLen(text[off]), len(text)-off)
		i := len(s.symbols)
		next := i + 1
		if off+n == len(text) {
			next = -1
		}
		s.symbols = append(s.symbols, spmSymbol{start: off, n: n, prev: i - 1, next: next})
		off += n
	}
	for i := 1; i < len(s.symbols); i++ {
		s.tryAddBigram(i-1, i)
	}
	for len(s.queue) > 0 {
		bg := s.queue.pop()
		li, ri := int(bg.left), int(bg.right)
		left, right := &s.symbols[li], &s.symbols[ri]
		if left.n == 0 || right.n == 0 || left.n+right.n != int(bg.size) {
			continue // one of them was merged since
		}
		left.n += right.n
		right.n = 0
		left.next = right.next
		if right.next >= 0 {
			s.symbols[right.next].prev = li
		}
		s.tryAddBigram(left.prev, li)
		s.tryAddBigram(li, left.next)
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		dst = s.resegment(dst, s.symbols[i])
	}
	return dst
}

func (s *spmSession) piece(sym spmSymbol) string { return s.text[sym.start : sym.start+sym.n] }

func (s *spmSession) tryAddBigram(left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	text := s.text[l.start : l.start+l.n+r.n]
	id, ok := s.m.vocab[text]
	if !ok || id >= len(s.m.scores) {
		return
	}
	s.queue.push(spmBigram{left: int32(left), right: int32(right), score: s.m.scores[id], size: int32(len(text))})
}

// resegment writes a final symbol: its piece if it has one, else its
// bytes. (llama.cpp also keeps a map to split a merged symbol that is not a
// piece back into its halves, but a merge only happens when the merged
// text is a piece, so only unmerged characters can miss.)
func (s *spmSession) resegment(dst []int, sym spmSymbol) []int {
	text := s.piece(sym)
	if id, ok := s.m.vocab[text]; ok {
		return append(dst, id)
	}
	for i := 0; i < len(text); i++ {
		if id := s.m.byteIDs[text[i]]; id >= 0 {
			dst = append(dst, id)
		} else if s.m.unk >= 0 {
			dst = append(dst, s.m.unk)
		}
	}
	return dst
}
