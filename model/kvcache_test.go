package model_test

import (
	"math"
	"slices"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// TestPagedCache prefills every prompt of a case in chunks, all prompts
// side by side in each Forward, from one pool of 3-position blocks handed
// out in turn, so every cache's blocks are scattered; the logits must be
// the reference's at every position of prompt 0 and at the last of each,
// with an F32 pool and with an F16 one.
func TestPagedCache(t *testing.T) {
	fx := testshared.LoadFixture(t, "llama3_rope")
	m, err := model.Load(testshared.Path(t, "fixtures", "llama3_rope", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.KVDType != kernels.F16 {
		t.Errorf("a BF16 model's caches store %v, want F16", m.KVDType)
	}
	top := 0.0
	for _, l := range fx.Base.LastLogits {
		for _, v := range l {
			top = max(top, math.Abs(float64(v)))
		}
	}
	for _, tc := range []struct {
		dt  kernels.DType
		tol float64
	}{{kernels.F32, logitTol}, {kernels.F16, f16CacheTol * top}} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			m.KVDType = tc.dt
			checkPagedCache(t, m, fx, tc.tol)
		})
	}
}

func checkPagedCache(t *testing.T, m *model.Model, fx *testshared.Fixture, logitTol float64) {
	const chunk = 4
	pool := m.NewKVPool(3, 100)
	if pool.DType() != m.KVDType {
		t.Errorf("pool stores %v, the model asks for %v", pool.DType(), m.KVDType)
	}
	caches := make([]*model.Cache, len(fx.Prompts))
	for i := range caches {
		caches[i] = pool.NewCache()
	}
	last := make([][]float32, len(fx.Prompts))
	var all []float32 // prompt 0, every position
	for {
		var seqs []model.Seq
		var who []int
		for i, p := range fx.Prompts {
			c := caches[i]
			if c.Len == len(p) {
				continue
			}
			n := min(chunk, len(p)-c.Len)
			if !c.Grow(c.Len + n) {
				t.Fatalf("pool of %d blocks ran out", pool.Blocks())
			}
			seqs = append(seqs, model.Seq{Cache: c, Tokens: p[c.Len : c.Len+n], AllLogits: i == 0})
			who = append(who, i)
		}
		if len(seqs) == 0 {
			break
		}
		logits, err := m.Forward(seqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range who {
			if i == 0 {
				all = append(all, logits[j]...)
			}
			last[i] = slices.Clone(logits[j][len(logits[j])-m.Config.Vocab:])
		}
	}
	v := m.Config.Vocab
	for pos, want := range fx.AllPositions {
		if d := testshared.MaxAbsDiff(all[pos*v:(pos+1)*v], want); d > logitTol {
			t.Errorf("prompt 0 position %d: max |logit diff| = %g", pos, d)
		}
	}
	for i := range fx.Prompts {
		if d := testshared.MaxAbsDiff(last[i], fx.Base.LastLogits[i]); d > logitTol {
			t.Errorf("prompt %d: max |last logit diff| = %g", i, d)
		}
	}

	used := 0
	for _, c := range caches {
		used += c.Blocks()
	}
	if free := pool.FreeBlocks(); free+used != pool.Blocks() {
		t.Errorf("%d free + %d held blocks, pool has %d", free, used, pool.Blocks())
	}
	for _, c := range caches {
		c.Free()
	}
	if free := pool.FreeBlocks(); free != pool.Blocks() {
		t.Errorf("after Free: %d of %d blocks free", free, pool.Blocks())
	}
}

// TestCacheGrow checks that Grow takes whole blocks, and nothing when the
// pool cannot cover the request.
func TestCacheGrow(t *testing.T) {
	m, err := model.Load(testshared.Path(t, "fixtures", "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := m.NewKVPool(4, 3)
	a, b := pool.NewCache(), pool.NewCache()
	if !a.Grow(5) || a.Blocks() != 2 || a.Cap != 8 {
		t.Fatalf("Grow(5): %d blocks, Cap %d; want 2, 8", a.Blocks(), a.Cap)
	}
	if b.Grow(5) || b.Blocks() != 0 || pool.FreeBlocks() != 1 {
		t.Fatalf("Grow(5) past the pool: %d blocks, %d free; want 0, 1", b.Blocks(), pool.FreeBlocks())
	}
	if !b.Grow(4) || pool.FreeBlocks() != 0 {
		t.Fatalf("Grow(4): %d free blocks, want 0", pool.FreeBlocks())
	}
	a.Free()
	if a.Cap != 0 || a.Len != 0 || pool.FreeBlocks() != 2 {
		t.Fatalf("after Free: Cap %d, Len %d, %d free; want 0, 0, 2", a.Cap, a.Len, pool.FreeBlocks())
	}
	if m.KVDType != kernels.F32 {
		t.Errorf("an F32 model's caches store %v, want F32", m.KVDType)
	}
	if got := m.KVBlockBytes(4); got != int64(2*m.Config.Layers*4*m.Config.KVHeads*m.Config.HeadDim*4) {
		t.Errorf("KVBlockBytes(4) = %d", got)
	}
	m.KVDType = kernels.F16
	if got := m.KVBlockBytes(4); got != int64(2*m.Config.Layers*4*m.Config.KVHeads*m.Config.HeadDim*2) {
		t.Errorf("F16: KVBlockBytes(4) = %d", got)
	}
	m.KVDType = kernels.BF16
	defer func() {
		if recover() == nil {
			t.Errorf("NewKVPool made a BF16 pool")
		}
	}()
	m.NewKVPool(4, 1)
}

// TestNewCacheCapacity checks that a cache from NewCache holds exactly the
// capacity asked for, though its last 16-position block has room for
// more, before and after Free.
func TestNewCacheCapacity(t *testing.T) {
	m, err := model.Load(testshared.Path(t, "fixtures", "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.NewCache(20)
	for round := range 2 {
		if c.Cap != 20 {
			t.Fatalf("round %d: Cap %d, want 20", round, c.Cap)
		}
		if c.Grow(21) {
			t.Errorf("round %d: Grow(21) beyond the capacity succeeded", round)
		}
		if !c.Grow(20) || c.Cap != 20 {
			t.Errorf("round %d: Grow(20) failed or changed Cap to %d", round, c.Cap)
		}
		if _, err := m.Forward([]model.Seq{{Cache: c, Tokens: make([]int, 21)}}, nil); err == nil {
			t.Errorf("round %d: 21 tokens fit a cache of 20", round)
		}
		c.Free()
		if !c.Grow(20) {
			t.Fatalf("round %d: Grow(20) after Free failed", round)
		}
	}
}
