package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// loraParam is the trainable state of one projection's LoRA pair, in
// PEFT's layout: the projection's output gains scale·(x·Aᵀ)·Bᵀ.
type loraParam struct {
	layer   int
	mod     model.Module
	r       int     // rank
	in, out int     // the projection's input and output widths
	scale   float32 // alpha/r, or alpha/sqrt(r) with rsLoRA

	a, b   []float32 // lora_A [r, in], lora_B [out, r]
	da, db []float32 // their gradients, same shapes
	ma, va []float32 // AdamW first and second moments of a
	mb, vb []float32 // and of b
}

// params is every loraParam of a run, with an index by layer and module.
type params struct {
	list []*loraParam
	at   [][model.NumModules]*loraParam // [layer][module], nil where untouched
}

// newParam allocates a pair with zero weights.
func newParam(layer int, mod model.Module, r, in, out int, scale float32) *loraParam {
	return &loraParam{layer: layer, mod: mod, r: r, in: in, out: out, scale: scale,
		a: make([]float32, r*in), b: make([]float32, out*r),
		da: make([]float32, r*in), db: make([]float32, out*r),
		ma: make([]float32, r*in), va: make([]float32, r*in),
		mb: make([]float32, out*r), vb: make([]float32, out*r)}
}

// initParams builds the trainable pairs: from opts.Init when set, else as
// PEFT initializes a fresh LoRA (init_lora_weights=True): A is
// kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)), and B
// is zero, drawn in layer then module order from the seed.
func initParams(cfg *model.Config, opts *Options) (*params, error) {
	ps := &params{at: make([][model.NumModules]*loraParam, cfg.Layers)}
	if a := opts.Init; a != nil {
		if err := a.Validate(cfg); err != nil {
			return nil, err
		}
		for l := range cfg.Layers {
			for mod := range model.NumModules {
				pr := a.Pair(l, mod)
				if pr == nil {
					continue
				}
				p := newParam(l, mod, pr.Rank, cfg.InDim(mod), cfg.OutDim(mod), pr.Scale)
				bt := make([]float32, p.out)
				for k := range p.r {
					pr.A.Row(k, p.a[k*p.in:(k+1)*p.in])
					pr.BT.Row(k, bt)
					for o, v := range bt {
						p.b[o*p.r+k] = v
					}
				}
				ps.add(p)
			}
		}
		if len(ps.list) == 0 {
			return nil, fmt.Errorf("train: the initial adapter %s has no LoRA pairs", a.Path)
		}
		return ps, nil
	}
	mods, err := targetModules(opts.Targets)
	if err != nil {
		return nil, err
	}
	scale := opts.Alpha / float64(opts.Rank)
	if opts.RSLoRA {
		scale = opts.Alpha / math.Sqrt(float64(opts.Rank))
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6c6f7261)) // "lora"
	for l := range cfg.Layers {
		for m := range model.NumModules {
			if !containsModule(mods, m) {
				continue
			}
			p := newParam(l, m, opts.Rank, cfg.InDim(m), cfg.OutDim(m), float32(scale))
			bound := 1 / math.Sqrt(float64(p.in))
			for i := range p.a {
				p.a[i] = float32((2*rng.Float64() - 1) * bound)
			}
			ps.add(p)
		}
	}
	return ps, nil
}

func containsModule(ms []model.Module, m model.Module) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func (ps *params) add(p *loraParam) {
	ps.list = append(ps.list, p)
	ps.at[p.layer][p.mod] = p
}

// count returns the number of trainable values.
func (ps *params) count() int {
	n := 0
	for _, p := range ps.list {
		n += len(p.a) + len(p.b)
	}
	return n
}

// zeroGrad clears every gradient.
func (ps *params) zeroGrad() {
	for _, p := range ps.list {
		clear(p.da)
		clear(p.db)
	}
}

// gradNorm returns the global L2 norm of all gradients.
func (ps *params) gradNorm() float64 {
	var ss float64
	for _, p := range ps.list {
		for _, g := range p.da {
			ss += float64(g) * float64(g)
		}
		for _, g := range p.db {
			ss += float64(g) * float64(g)
		}
	}
	return math.Sqrt(ss)
}

// scaleGrad multiplies every gradient by s.
func (ps *params) scaleGrad(s float32) {
	for _, p := range ps.list {
		kernels.Scale(p.da, s)
		kernels.Scale(p.db, s)
	}
}

// adamW takes one torch.optim.AdamW step (decoupled weight decay,
// bias-corrected moments) with learning rate lr; t is the 1-based step
// number.
func (ps *params) adamW(o *Options, lr float64, t int) {
	bc1 := 1 - math.Pow(o.Beta1, float64(t))
	bc2 := 1 - math.Pow(o.Beta2, float64(t))
	step := func(w, g, m, v []float32) {
		for i := range w {
			gi := float64(g[i])
			mi := o.Beta1*float64(m[i]) + (1-o.Beta1)*gi
			vi := o.Beta2*float64(v[i]) + (1-o.Beta2)*gi*gi
			m[i], v[i] = float32(mi), float32(vi)
			wi := float64(w[i]) * (1 - lr*o.WeightDecay)
			wi -= lr / bc1 * mi / (math.Sqrt(vi)/math.Sqrt(bc2) + o.Eps)
			w[i] = float32(wi)
		}
	}
	for _, p := range ps.list {
		step(p.a, p.da, p.ma, p.va)
		step(p.b, p.db, p.mb, p.vb)
	}
}

// adapter returns a copy of the weights as a lora.Adapter ready to serve,
// with conf as its configuration.
func (ps *params) adapter(cfg *model.Config, conf *peft.Config, name string) *lora.Adapter {
	ad := &lora.Adapter{Name: name, Layers: make([][model.NumModules]*lora.Pair, cfg.Layers), Config: conf}
	for _, p := range ps.list {
		a := append([]float32(nil), p.a...)
		bt := make([]float32, p.r*p.out)
		for o := range p.out {
			for k := range p.r {
				bt[k*p.out+o] = p.b[o*p.r+k]
			}
		}
		ad.Layers[p.layer][p.mod] = &lora.Pair{
			A:     kernels.NewF32Matrix(p.r, p.in, a),
			BT:    kernels.NewF32Matrix(p.r, p.out, bt),
			Rank:  p.r,
			Scale: p.scale,
		}
		ad.MaxRank = max(ad.MaxRank, p.r)
		ad.Bytes += int64(4 * (len(a) + len(bt)))
	}
	return ad
}

// peftName returns the PEFT key prefix of a pair, e.g.
// "base_model.model.model.layers.0.self_attn.q_proj".
func peftName(layer int, m model.Module) string {
	return fmt.Sprintf("base_model.model.model.layers.%d.%s", layer, m.Path())
}
