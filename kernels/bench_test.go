package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Weight shapes of SmolLM2-135M (rows x cols): q/o projections, MLP
// gate/up, MLP down, and the tied embedding as the LM head.
var benchShapes = [][2]int{{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}, {32000, 2048}}

var benchTokens = []int{1, 8, 64, 512}

// benchMatrices caches the random weights, which take a while to encode.
var benchMatrices = map[string]Matrix{}

func benchMatrix(dt DType, rows, cols int) Matrix {
	key := fmt.Sprint(dt, rows, cols)
	if m, ok := benchMatrices[key]; ok {
		return m
	}
	m := randMatrix(rand.New(rand.NewPCG(9, 9)), dt, rows, cols)
	benchMatrices[key] = m
	return m
}

// BenchmarkMatMul runs every implementation on every dtype and shape:
// BenchmarkMatMul/avx2/BF16/1536x576/n=1. GFLOP/s counts 2 per
// multiply-add; GB/s counts the weight bytes read once per call.
func BenchmarkMatMul(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			saved := active
			active = im
			defer func() { active = saved }()
			for _, dt := range []DType{F32, F16, BF16, Q8_0, Q4_K, Q6_K} {
				for _, shape := range benchShapes {
					if shape[1]%dt.BlockSize() != 0 {
						continue
					}
					for _, n := range benchTokens {
						name := fmt.Sprintf("%v/%dx%d/n=%d", dt, shape[0], shape[1], n)
						b.Run(name, func(b *testing.B) { benchMatMul(b, p, benchMatrix(dt, shape[0], shape[1]), n) })
					}
				}
			}
		})
	}
}

func benchMatMul(b *testing.B, p *Pool, w Matrix, n int) {
	rng := rand.New(rand.NewPCG(10, 10))
	x := randFloats(rng, n*w.Cols)
	y := make([]float32, n*w.Rows)
	p.MatMul(y, x, w, n)
	b.ResetTimer()
	for b.Loop() {
		p.MatMul(y, x, w, n)
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(2*float64(n*w.Rows*w.Cols)/sec/1e9, "GFLOP/s")
	b.ReportMetric(float64(len(w.Data))/sec/1e9, "GB/s")
}

// BenchmarkStreamRead is the ceiling for decode: every worker of the pool
// sums its share of a 256 MiB buffer with the active Dot, so each byte
// comes from memory once.
func BenchmarkStreamRead(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	buf := make([]float32, 256<<20/4)
	for i := range buf {
		buf[i] = float32(i & 7)
	}
	sums := make([]float32, p.Threads())
	read := func(worker, lo, hi int) { sums[worker] += Dot(buf[lo:hi], buf[lo:hi]) }
	p.Parallel(len(buf), 4096, read)
	b.ResetTimer()
	for b.Loop() {
		p.Parallel(len(buf), 4096, read)
	}
	b.ReportMetric(float64(4*len(buf))/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GB/s")
}

func BenchmarkOps(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 11))
	x, y, w := randFloats(rng, 4096), randFloats(rng, 4096), randFloats(rng, 4096)
	bf := randMatrix(rng, BF16, 1, 4096)
	bf4 := randMatrix(rng, BF16, 4, 4096)
	ibf := Interleave(bf4)
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			saved := active
			active = im
			defer func() { active = saved }()
			b.Run("Dot/4096", func(b *testing.B) {
				for b.Loop() {
					Dot(x, y)
				}
			})
			b.Run("Axpy/4096", func(b *testing.B) {
				for b.Loop() {
					Axpy(1e-3, x, y)
				}
			})
			b.Run("AxpyRow/BF16/4096", func(b *testing.B) {
				for b.Loop() {
					AxpyRow(y, 1e-3, bf, 0)
				}
			})
			// A row of an interleaved matrix is 128 runs of 32 values.
			b.Run("AxpyRow/BF16/4096/interleaved", func(b *testing.B) {
				for b.Loop() {
					AxpyRow(y, 1e-3, ibf, 1)
				}
			})
			b.Run("Row/BF16/4096", func(b *testing.B) {
				for b.Loop() {
					bf4.Row(1, y)
				}
			})
			b.Run("Row/BF16/4096/interleaved", func(b *testing.B) {
				for b.Loop() {
					ibf.Row(1, y)
				}
			})
			b.Run("RMSNorm/4096", func(b *testing.B) {
				for b.Loop() {
					RMSNorm(y, x, w, 1e-5)
				}
			})
		})
	}
}

// BenchmarkMatMulLayers is decode's weight traffic without the rest of
// the model: one token through the 7 projections of 30 SmolLM2-135M
// layers in turn, 210 matrices too big together for any cache, so every
// byte comes from memory as it does in a decode step. Compare its GB/s
// with BenchmarkStreamRead's. The matrices are interleaved, as a loaded
// model's are, or row-major, as stored in the files.
func BenchmarkMatMulLayers(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	shapes := [][2]int{{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}}
	for _, dt := range []DType{F16, BF16, Q8_0} {
		for _, layout := range []string{"interleaved", "row-major"} {
			for _, n := range []int{1, 8} {
				b.Run(fmt.Sprintf("%v/%s/tokens=%d", dt, layout, n), func(b *testing.B) {
					benchLayers(b, p, dt, shapes, layout == "interleaved", n)
				})
			}
		}
	}
}

// benchLayers times n tokens through the 210 matrices of dt.
func benchLayers(b *testing.B, p *Pool, dt DType, shapes [][2]int, interleave bool, n int) {
	rng := rand.New(rand.NewPCG(12, 12))
	var ws []Matrix
	bytes := 0
	for range 30 {
		for _, s := range shapes {
			w := Matrix{DType: dt, Rows: s[0], Cols: s[1], Data: make([]byte, s[0]*dt.RowBytes(s[1]))}
			for i := range w.Data {
				w.Data[i] = byte(rng.Uint32() & 0x3b) // small finite values of every type
			}
			if interleave {
				w = Interleave(w)
			}
			ws = append(ws, w)
			bytes += len(w.Data)
		}
	}
	x, y := randFloats(rng, n*1536), make([]float32, n*1536)
	b.ResetTimer()
	for b.Loop() {
		for _, w := range ws {
			p.MatMul(y, x, w, n)
		}
	}
	b.ReportMetric(float64(bytes)/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GB/s")
}
