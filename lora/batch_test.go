package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// seq is one sequence of a test batch: an adapter (nil: base) and its
// tokens.
type seq struct {
	a *Adapter
	n int
}

// naiveDelta returns y0 plus the LoRA delta of every sequence, computed in
// float64 straight from the definition s·(x·Aᵀ)·Bᵀ with A and B decoded
// from the Pair (B as BTᵀ).
//
// It also returns, per output, how far a kernel may be off beyond float
// rounding: a Q8_0 lora_a may take x quantized to int8 in blocks of 32
// (see kernels/q8act.go), each value within d/2, d = max|x|/127 over its
// block, which moves (xA)_k by up to Σ_i |a_ki|·d_i/2.
func naiveDelta(y0, x []float32, seqs []seq, layer int, m model.Module, in, out int) (y, slack []float64) {
	slack = make([]float64, len(y0))
	y = make([]float64, len(y0))
	for i, v := range y0 {
		y[i] = float64(v)
	}
	tok := 0
	for _, s := range seqs {
		var p *Pair
		if s.a != nil {
			p = s.a.Pair(layer, m)
		}
		if p == nil {
			tok += s.n
			continue
		}
		a, bt := matrix64(p.A), matrix64(p.BT)
		half := make([]float64, in) // per value: half its block's int8 step, d/2
		for t := tok; t < tok+s.n; t++ {
			clear(half)
			if p.A.DType == kernels.Q8_0 {
				for b := 0; b < in; b += 32 {
					var amax float64
					for _, v := range x[t*in+b : t*in+b+32] {
						amax = max(amax, math.Abs(float64(v)))
					}
					for i := b; i < b+32; i++ {
						half[i] = amax / 127 / 2
					}
				}
			}
			for k := range p.Rank {
				var xa, xaSlack float64
				for i := range in {
					xa += float64(x[t*in+i]) * a[k][i]
					xaSlack += math.Abs(a[k][i]) * half[i]
				}
				for j := range out {
					y[t*out+j] += float64(p.Scale) * xa * bt[k][j]
					slack[t*out+j] += math.Abs(float64(p.Scale)*bt[k][j]) * xaSlack
				}
			}
		}
		tok += s.n
	}
	return y, slack
}

// checkBatch runs AddDelta for every layer and projection of cfg over the
// sequences and compares with naiveDelta; rows of tokens without a delta
// must be bit-for-bit unchanged.
func checkBatch(t *testing.T, pool *kernels.Pool, cfg *model.Config, seqs []seq, rng *rand.Rand) {
	t.Helper()
	b := NewBatch(pool)
	tokens := 0
	for _, s := range seqs {
		b.Add(s.a, s.n)
		tokens += s.n
	}
	if b.Tokens() != tokens {
		t.Fatalf("Tokens() = %d, want %d", b.Tokens(), tokens)
	}
	for layer := range cfg.Layers {
		for m := range model.NumModules {
			in, out := cfg.InDim(m), cfg.OutDim(m)
			x := randomVector(rng, tokens*in)
			y0 := randomVector(rng, tokens*out)
			y := append([]float32(nil), y0...)
			want, slack := naiveDelta(y0, x, seqs, layer, m, in, out)
			xCopy := append([]float32(nil), x...)
			b.AddDelta(y, x, layer, m)
			for i := range x {
				if x[i] != xCopy[i] {
					t.Fatalf("layer %d %v: AddDelta changed x", layer, m)
				}
			}
			tok := 0
			for si, s := range seqs {
				touched := s.a != nil && s.a.Pair(layer, m) != nil
				for t2 := tok; t2 < tok+s.n; t2++ {
					for j := range out {
						i := t2*out + j
						if !touched {
							if y[i] != y0[i] {
								t.Fatalf("layer %d %v: sequence %d (no delta) token %d changed: %v -> %v", layer, m, si, t2, y0[i], y[i])
							}
							continue
						}
						if d := math.Abs(float64(y[i]) - want[i]); d > 1e-5*(1+math.Abs(want[i]))+slack[i] {
							t.Fatalf("layer %d %v: sequence %d token %d col %d: got %v, want %v (diff %g)", layer, m, si, t2, j, y[i], want[i], d)
						}
					}
				}
				tok += s.n
			}
		}
	}
}

// TestBatchFixtures mixes the three llama3_rope adapters (BF16 r8 q/v, F16
// r4 all projections, F32 r16 with o_proj at r4) with base-model tokens in
// one batch, including adjacent sequences that share an adapter.
func TestBatchFixtures(t *testing.T) {
	cfg := readConfig(t, "llama3_rope")
	r8, _ := loadFixture(t, "llama3_rope", "r8_qv")
	r4, _ := loadFixture(t, "llama3_rope", "r4_all_rslora")
	r16, _ := loadFixture(t, "llama3_rope", "r16_qkvo_patterns")
	seqs := []seq{{r8, 3}, {nil, 2}, {r4, 5}, {r4, 1}, {r16, 4}, {nil, 1}, {r8, 2}, {r16, 1}, {nil, 3}}
	for _, threads := range []int{1, 3} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			pool := kernels.NewPool(threads)
			defer pool.Close()
			checkBatch(t, pool, cfg, seqs, rand.New(rand.NewPCG(1, uint64(threads))))
		})
	}
}

// syntheticAdapter builds an adapter with random weights of the given
// dtype and rank on every projection of every layer (rank 0: none).
func syntheticAdapter(rng *rand.Rand, cfg *model.Config, dt kernels.DType, rank func(layer int, m model.Module) int) *Adapter {
	a := &Adapter{Name: "synthetic", Layers: make([][model.NumModules]*Pair, cfg.Layers)}
	for i := range cfg.Layers {
		for m := range model.NumModules {
			r := rank(i, m)
			if r == 0 {
				continue
			}
			a.Layers[i][m] = &Pair{
				A:     randomMatrix(rng, dt, r, cfg.InDim(m), 0.2),
				BT:    randomMatrix(rng, dt, r, cfg.OutDim(m), 0.2),
				Rank:  r,
				Scale: 0.5 + rng.Float32(),
			}
			a.MaxRank = max(a.MaxRank, r)
		}
	}
	return a
}

// TestBatchSweep compares AddDelta with the naive delta over odd widths,
// ranks, dtypes and run lengths, large enough for the expand step to be
// split over the workers (the vLLM punica test's sweep, in small).
func TestBatchSweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	cfgs := []*model.Config{
		{Hidden: 96, Intermediate: 224, Layers: 1, Heads: 6, KVHeads: 2, HeadDim: 16},
		{Hidden: 520, Intermediate: 1400, Layers: 1, Heads: 5, KVHeads: 1, HeadDim: 104},
	}
	pool := kernels.NewPool(4)
	defer pool.Close()
	for ci, cfg := range cfgs {
		for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16} {
			a1 := syntheticAdapter(rng, cfg, dt, func(int, model.Module) int { return 1 })
			a7 := syntheticAdapter(rng, cfg, dt, func(_ int, m model.Module) int { return 7 + int(m)%3 })
			a32 := syntheticAdapter(rng, cfg, dt, func(_ int, m model.Module) int {
				if m == model.ModK {
					return 0
				}
				return 32
			})
			seqs := []seq{{a32, 17}, {a1, 1}, {nil, 5}, {a7, 9}, {a32, 1}, {a7, 2}, {nil, 1}, {a1, 30}}
			t.Run(fmt.Sprintf("cfg%d/%v", ci, dt), func(t *testing.T) {
				checkBatch(t, pool, cfg, seqs, rng)
			})
		}
	}
}

// TestBatchReuse checks Reset, runs that merge, empty adds, and that a
// steady-state AddDelta allocates nothing of its own.
func TestBatchReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	cfg := &model.Config{Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16}
	a := syntheticAdapter(rng, cfg, kernels.F32, func(int, model.Module) int { return 8 })
	c := syntheticAdapter(rng, cfg, kernels.BF16, func(int, model.Module) int { return 4 })
	pool := kernels.NewPool(2)
	defer pool.Close()
	b := NewBatch(pool)

	b.Add(a, 2)
	b.Add(a, 0)
	b.Add(a, 3)
	b.Add(nil, 4)
	if len(b.runs) != 2 || b.runs[0].n != 5 || b.runs[1].start != 5 {
		t.Fatalf("runs %+v, want a 5-token run then a base run at 5", b.runs)
	}
	b.Reset()
	if b.Tokens() != 0 || len(b.runs) != 0 {
		t.Fatalf("after Reset: %d tokens, %d runs", b.Tokens(), len(b.runs))
	}
	checkBatch(t, pool, cfg, []seq{{c, 2}, {a, 3}, {nil, 1}}, rng)

	// Steady state: the same batch shape again and again.
	b.Reset()
	b.Add(a, 6)
	b.Add(nil, 2)
	b.Add(c, 3)
	x := randomVector(rng, 11*cfg.Hidden)
	y := make([]float32, 11*cfg.Intermediate)
	b.AddDelta(y, x, 1, model.ModUp)
	allocs := testing.AllocsPerRun(20, func() { b.AddDelta(y, x, 1, model.ModUp) })
	if allocs != 0 {
		t.Errorf("steady-state AddDelta allocates %v times per call (here or in kernels.Pool), want 0", allocs)
	}
}

func BenchmarkAddDelta(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cfg := &model.Config{Hidden: 2048, Intermediate: 5632, Layers: 1, Heads: 32, KVHeads: 4, HeadDim: 64}
	for _, tokens := range []int{8, 256} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			pool := kernels.NewPool(0)
			defer pool.Close()
			batch := NewBatch(pool)
			for i := range 4 {
				a := syntheticAdapter(rng, cfg, kernels.BF16, func(int, model.Module) int { return 8 << (i % 3) })
				batch.Add(a, tokens/4)
			}
			x := randomVector(rng, tokens*cfg.Hidden)
			y := make([]float32, tokens*cfg.Intermediate)
			b.ResetTimer()
			for b.Loop() {
				batch.AddDelta(y, x, 0, model.ModUp)
			}
		})
	}
}
