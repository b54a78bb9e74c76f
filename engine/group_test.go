package engine

import (
	"slices"
	"testing"

	"github.com/switchyard-ai/switchyard/lora"
)

// TestGroupByAdapter checks that sequences on one adapter end up side by
// side, groups in order of first appearance, each in its own order.
func TestGroupByAdapter(t *testing.T) {
	a, b, c := &lora.Adapter{}, &lora.Adapter{}, &lora.Adapter{}
	var base *lora.Adapter
	for _, tc := range []struct {
		in, want string // adapter of each sequence, by letter (n: the base model)
	}{
		{"", ""},
		{"a", "a"},
		{"abab", "aabb"},
		{"anbnacb", "aannbbc"},
		{"ccba", "ccba"},
		{"nbnbn", "nnnbb"},
	} {
		names := map[byte]*lora.Adapter{'a': a, 'b': b, 'c': c, 'n': base}
		var qs []*schedSeq
		for i := range len(tc.in) {
			qs = append(qs, &schedSeq{req: &Request{Adapter: names[tc.in[i]]}, nPrompt: i})
		}
		groupByAdapter(qs)
		var got []byte
		var order []int // sequence numbers within each adapter must stay increasing
		for _, q := range qs {
			for k, v := range names {
				if v == q.req.Adapter {
					got = append(got, k)
				}
			}
			order = append(order, q.nPrompt)
		}
		if string(got) != tc.want {
			t.Errorf("%q grouped as %q, want %q", tc.in, got, tc.want)
		}
		for k := range names {
			var seqs []int
			for i, q := range qs {
				if names[k] == q.req.Adapter {
					seqs = append(seqs, order[i])
				}
			}
			if !slices.IsSorted(seqs) {
				t.Errorf("%q: adapter %c's sequences reordered: %v", tc.in, k, seqs)
			}
		}
	}
}
