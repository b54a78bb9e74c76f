package tokenizer

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpeModel is a byte-pair-encoding model driven by merge ranks: within a
// word, the adjacent pair whose merge comes first in the merge list is
// merged, leftmost first among equals, until no listed merge applies. This
// is both Hugging Face's BPE model and llama.cpp's llm_tokenizer_bpe.
type bpeModel struct {
	vocab  map[string]int // model vocabulary (Hugging Face: added tokens excluded)
	merges map[uint64]bpeMerge

	// ignoreMerges emits a word that is itself in the vocabulary as one
	// token without merging (Llama 3).
	ignoreMerges bool

	// What happens to a character that is not in the vocabulary:
	byteFallback bool       // Hugging Face byte_fallback: one <0xAB> token per byte
	byteIDs      [256]int32 // ids of <0xAB> tokens (byteFallback) or -1
	unk          int32      // Hugging Face unk_token, or -1: the character is dropped
	fuseUnk      bool       // consecutive unknown characters give one unk token
	llamaBytes   bool       // llama.cpp: look each byte up as a one-byte token, drop it if absent
}

// bpeMerge is what a listed pair of tokens merges into.
type bpeMerge struct {
	rank int32 // position in the merge list; lower merges first
	id   int32 // the merged token
}

func mergeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPEModel builds a model from its vocabulary and merge list. Merges are
// "left right" pairs; a merge whose parts or result are not in the
// vocabulary can never apply and is skipped. A repeated merge keeps its
// first rank, as in llama.cpp.
func newBPEModel(vocab map[string]int, merges [][2]string) *bpeModel {
	m := &bpeModel{
		vocab:  vocab,
		merges: make(map[uint64]bpeMerge, len(merges)),
		unk:    -1,
	}
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
	}
	// The vocabulary look-ups are most of the load time of a large model;
	// they only read the map, so they run in parallel.
	resolved := make([][3]int32, len(merges)) // left, right, merged; -1 if absent
	resolve := func(lo, hi int) {
		var buf []byte
		for i := lo; i < hi; i++ {
			mg := merges[i]
			r := [3]int32{-1, -1, -1}
			if id, ok := vocab[mg[0]]; ok {
				r[0] = int32(id)
			}
			if id, ok := vocab[mg[1]]; ok {
				r[1] = int32(id)
			}
			buf = append(append(buf[:0], mg[0]...), mg[1]...)
			if id, ok := vocab[string(buf)]; ok { // no allocation for the key
				r[2] = int32(id)
			}
			resolved[i] = r
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(merges)/20000+1)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := len(merges)*w/workers, len(merges)*(w+1)/workers
		wg.Go(func() { resolve(lo, hi) })
	}
	wg.Wait()
	for rank := len(resolved) - 1; rank >= 0; rank-- { // backwards: the first rank is written last
		r := resolved[rank]
		if r[0] >= 0 && r[1] >= 0 && r[2] >= 0 {
			m.merges[mergeKey(r[0], r[1])] = bpeMerge{rank: int32(rank), id: r[2]}
		}
	}
	return m
}

// splitMerge splits a "left right" merge line at its first space after
// the first byte, as llama.cpp does.
func splitMerge(s string) ([2]string, error) {
	if len(s) > 1 {
		if i := strings.IndexByte(s[1:], ' '); i >= 0 {
			return [2]string{s[:i+1], s[i+2:]}, nil
		}
	}
	return [2]string{}, fmt.Errorf("merge %q is not two tokens separated by a space", s)
}

// bpeSymbol is a run of the word that is currently one token.
type bpeSymbol struct {
	id         int32 // token id; -1: not in the vocabulary; symDead: merged away
	start, end int32 // byte range in the word
	prev, next int32 // neighbours, -1 at the ends
}

const symDead = -3

// bpeCandidate is a possible merge of the symbol at pos with its right
// neighbour. It is stale once either symbol changed.
type bpeCandidate struct {
	rank, pos   int32
	left, right int32 // the symbols' ids when the candidate was made
	merged      int32
}

func (a bpeCandidate) before(b bpeCandidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// candidateHeap is a binary min-heap of merge candidates.
type candidateHeap = minHeap[bpeCandidate]

// bpeScratch holds the buffers of one encode call.
type bpeScratch struct {
	syms []bpeSymbol
	heap candidateHeap
}

// encodeWord appends the ids of one pre-tokenized word to dst.
func (m *bpeModel) encodeWord(dst []int, word string, sc *bpeScratch) []int {
	if word == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, id)
		}
	}
	syms := sc.syms[:0]
	add := func(id int32, start, end int) {
		n := int32(len(syms))
		syms = append(syms, bpeSymbol{id: id, start: int32(start), end: int32(end), prev: n - 1, next: n + 1})
	}
	unkStart, unkEnd := -1, -1
	flushUnk := func() {
		if unkStart >= 0 {
			add(m.unk, unkStart, unkEnd)
			unkStart = -1
		}
	}
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+size]
		if id, ok := m.vocab[ch]; ok {
			flushUnk()
			add(int32(id), i, i+size)
		} else if m.llamaBytes {
			add(-1, i, i+size)
		} else if m.byteFallback && m.hasByteTokens(ch) {
			flushUnk()
			for j := 0; j < size; j++ {
				add(m.byteIDs[ch[j]], i+j, i+j+1)
			}
		} else if m.unk >= 0 {
			if unkStart >= 0 && !m.fuseUnk {
				flushUnk()
			}
			if unkStart < 0 {
				unkStart = i
			}
			unkEnd = i + size
		}
		i += size
	}
	flushUnk()
	if len(syms) == 0 {
		sc.syms = syms
		return dst
	}
	syms[len(syms)-1].next = -1

	if len(syms) <= smallWord {
		m.mergeSmall(syms)
	} else {
		sc.heap = m.mergeHeap(syms, sc.heap[:0])
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		if s.id >= 0 {
			dst = append(dst, int(s.id))
			continue
		}
		// llama.cpp: a symbol outside the vocabulary becomes its bytes,
		// each looked up as a one-byte token.
		for j := s.start; j < s.end; j++ {
			if id, ok := m.vocab[word[j:j+1]]; ok {
				dst = append(dst, id)
			}
		}
	}
	sc.syms = syms
	return dst
}

// smallWord is the symbol count up to which a linear scan for the best
// pair beats the heap.
const smallWord = 12

// mergeSmall merges by repeatedly scanning the adjacent pairs for the
// lowest rank (leftmost among equals), each pair's merge looked up once and
// cached: quadratic, but cheaper than a heap for the short words most text
// is made of.
func (m *bpeModel) mergeSmall(syms []bpeSymbol) {
	var pairs [smallWord]bpeMerge // pairs[i]: merge of i with its right neighbour; rank -1 if none
	lookup := func(i int32) {
		pairs[i].rank = -1
		if nx := syms[i].next; nx >= 0 && syms[i].id >= 0 && syms[nx].id >= 0 {
			if mg, ok := m.merges[mergeKey(syms[i].id, syms[nx].id)]; ok {
				pairs[i] = mg
			}
		}
	}
	for i := range syms {
		lookup(int32(i))
	}
	for {
		best := int32(-1)
		for i := int32(0); i >= 0; i = syms[i].next {
			if r := pairs[i].rank; r >= 0 && (best < 0 || r < pairs[best].rank) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		s := &syms[best]
		r := &syms[s.next]
		s.id, s.end, s.next = pairs[best].id, r.end, r.next
		if r.next >= 0 {
			syms[r.next].prev = best
		}
		r.id = symDead
		lookup(best)
		if s.prev >= 0 {
			lookup(s.prev)
		}
	}
}

// mergeHeap merges with a priority queue of candidate pairs, which go
// stale when a neighbour changes; h is scratch space, returned for reuse.
func (m *bpeModel) mergeHeap(syms []bpeSymbol, h candidateHeap) candidateHeap {
	consider := func(pos int32) {
		if pos < 0 {
			return
		}
		nx := syms[pos].next
		if nx < 0 {
			return
		}
		a, b := syms[pos].id, syms[nx].id
		if a < 0 || b < 0 {
			return
		}
		if mg, ok := m.merges[mergeKey(a, b)]; ok {
			h.push(bpeCandidate{rank: mg.rank, pos: pos, left: a, right: b, merged: mg.id})
		}
	}
	for i := range syms {
		consider(int32(i))
	}
	for len(h) > 0 {
		c := h.pop()
		s := &syms[c.pos]
		if s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue
		}
		r := &syms[s.next]
		s.id = c.merged
		s.end = r.end
		s.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.pos
		}
		r.id = symDead
		consider(s.prev)
		consider(c.pos)
	}
	return h
}

func (m *bpeModel) hasByteTokens(ch string) bool {
	for i := 0; i < len(ch); i++ {
		if m.byteIDs[ch[i]] < 0 {
			return false
		}
	}
	return true
}

// setByteTokens finds the <0xAB> tokens of the vocabulary.
func (m *bpeModel) setByteTokens() {
	for b := range m.byteIDs {
		if id, ok := m.vocab[byteTokenName(byte(b))]; ok {
			m.byteIDs[b] = int32(id)
		} else {
			m.byteIDs[b] = -1
		}
	}
}

// byteTokenName returns the SentencePiece name of a byte token, "<0x0A>".
func byteTokenName(b byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
}

// parseByteToken returns the byte a "<0xAB>" token stands for. Like
// Hugging Face's ByteFallback decoder it accepts either case of hex digit.
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(s[3])
	lo, ok2 := hexDigit(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
