package kernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// randFloats returns n values uniform in [-1, 1).
func randFloats(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	return v
}

// randMatrix returns a rows x cols matrix of random values stored as dt.
func randMatrix(rng *rand.Rand, dt DType, rows, cols int) Matrix {
	data := EncodeRow(nil, dt, randFloats(rng, rows*cols))
	return Matrix{DType: dt, Rows: rows, Cols: cols, Data: data}
}

// checkMatMul runs p.MatMul and MatMulRef on random activations and
// compares them within 1e-5 of Σ|x||w| for each output. It also checks
// that MatMul writes every output and nothing past them.
func checkMatMul(t *testing.T, p *Pool, rng *rand.Rand, w Matrix, n int) {
	t.Helper()
	x := randFloats(rng, n*w.Cols)
	got := make([]float32, n*w.Rows+3)
	for i := range got {
		got[i] = float32(math.NaN())
	}
	want := make([]float32, n*w.Rows)
	p.MatMul(got, x, w, n)
	MatMulRef(want, x, w, n)
	// A Q8_0 decode tile may take the activations quantized (see
	// q8act.go); its reference is then the product with them.
	if xq, ok := quantizedActs(w, x, n); ok {
		matmulQ8ActsRef(want, F32Bytes(xq), w, n)
		x = dequantizeQ8Acts(F32Bytes(xq), n*w.Cols)
	}

	for _, v := range got[n*w.Rows:] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("%v %dx%d n=%d: MatMul wrote past y[:n*rows]", w.DType, w.Rows, w.Cols, n)
		}
	}
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.decodeRow(row, r, goRowDecoder)
		for tok := range n {
			var bound float64
			for c, v := range row {
				bound += math.Abs(float64(x[tok*w.Cols+c]) * float64(v))
			}
			g, e := got[tok*w.Rows+r], want[tok*w.Rows+r]
			if !(math.Abs(float64(g-e)) <= 1e-5*bound+1e-30) {
				t.Fatalf("%v %dx%d n=%d: y[%d,%d] = %g, want %g (Σ|x||w| = %g)", w.DType, w.Rows, w.Cols, n, tok, r, g, e, bound)
			}
		}
	}
}

// Token counts: decode tiles (1-9), prefill blocks with ragged ends.
var matmulTokens = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 64, 130}

func TestMatMulOddShapes(t *testing.T) {
	rows := []int{1, 2, 3, 4, 5, 7, 8, 9, 13, 36, 67}
	cols := map[DType][]int{
		F32:  {1, 5, 8, 15, 16, 17, 31, 32, 33, 64, 100, 577},
		F16:  {1, 7, 9, 16, 23, 32, 47, 96, 577},
		BF16: {1, 7, 9, 16, 23, 32, 47, 96, 577},
		Q8_0: {32, 64, 96, 576},
		Q4_K: {256, 512},
		Q6_K: {256, 768},
		Q5_0: {32, 64, 576},
		Q4_0: {32, 96, 576},
	}
	forEachImpl(t, func(t *testing.T) {
		for _, threads := range []int{1, 3} {
			p := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16, Q8_0, Q4_K, Q6_K, Q5_0, Q4_0} {
				rng := rand.New(rand.NewPCG(1, uint64(dt)))
				for _, c := range cols[dt] {
					for _, r := range rows {
						w := randMatrix(rng, dt, r, c)
						for _, n := range matmulTokens {
							checkMatMul(t, p, rng, w, n)
							if iw := Interleave(w); iw.Interleaved {
								checkMatMul(t, p, rng, iw, n)
							}
						}
					}
				}
			}
			p.Close()
		}
	})
}

// TestMatMulModelShapes covers shapes of SmolLM2-135M, whose prefill
// blocks split 64 or 130 tokens several times.
func TestMatMulModelShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow reference")
	}
	forEachImpl(t, func(t *testing.T) {
		p := NewPool(0)
		defer p.Close()
		for _, dt := range []DType{F32, F16, BF16, Q8_0, Q4_K, Q6_K, Q5_0, Q4_0} {
			rng := rand.New(rand.NewPCG(2, uint64(dt)))
			for _, shape := range [][2]int{{576, 576}, {1536, 576}, {576, 1536}} {
				if shape[1]%dt.BlockSize() != 0 {
					shape[1] = 768 // the K-quants need multiples of 256
				}
				w := randMatrix(rng, dt, shape[0], shape[1])
				for _, n := range []int{1, 4, 8, 64} {
					checkMatMul(t, p, rng, w, n)
					if iw := Interleave(w); iw.Interleaved {
						checkMatMul(t, p, rng, iw, n)
					}
				}
			}
		}
	})
}

func TestMatMulEmpty(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		p := NewPool(2)
		defer p.Close()
		y := []float32{1, 2, 3}
		p.MatMul(y, nil, Matrix{DType: F32, Rows: 3, Cols: 0}, 1)
		if y[0] != 0 || y[1] != 0 || y[2] != 0 {
			t.Errorf("MatMul with 0 columns left %v", y)
		}
		p.MatMul(nil, make([]float32, 32), Matrix{DType: BF16, Rows: 0, Cols: 8}, 4)
		p.MatMul(nil, nil, randMatrix(rand.New(rand.NewPCG(3, 3)), F16, 8, 8), 0)
	})
}

func TestMatMulRejectsBadInput(t *testing.T) {
	p := NewPool(1)
	defer p.Close()
	bf16 := Matrix{DType: BF16, Rows: 4, Cols: 8, Data: make([]byte, 4*8*2)}
	for _, c := range []struct {
		name string
		y, x int // lengths
		w    Matrix
	}{
		{"short x", 4, 7, bf16},
		{"short y", 3, 8, bf16},
		{"short data", 4, 8, Matrix{DType: F32, Rows: 4, Cols: 8, Data: bf16.Data}},
		{"q8 cols", 1, 8, Matrix{DType: Q8_0, Rows: 1, Cols: 8, Data: bf16.Data}},
		{"q4_k cols", 1, 32, Matrix{DType: Q4_K, Rows: 1, Cols: 32, Data: make([]byte, 1024)}},
		{"dtype", 4, 8, Matrix{DType: Q4_0 + 1, Rows: 4, Cols: 8, Data: bf16.Data}},
		{"interleaved cols", 4, 8, Matrix{DType: BF16, Rows: 4, Cols: 8, Interleaved: true, Data: bf16.Data}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			p.MatMul(make([]float32, c.y), make([]float32, c.x), c.w, 1)
		}()
	}
}

func TestMatMulAllocatesNothing(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		p := NewPool(2)
		defer p.Close()
		rng := rand.New(rand.NewPCG(4, 4))
		for _, dt := range []DType{F32, BF16, Q8_0} {
			for _, n := range []int{1, 64} {
				rw := randMatrix(rng, dt, 256, 96)
				for _, w := range []Matrix{rw, Interleave(rw)} {
					x := randFloats(rng, n*w.Cols)
					y := make([]float32, n*w.Rows)
					p.MatMul(y, x, w, n) // grows the scratch buffers
					if a := testing.AllocsPerRun(10, func() { p.MatMul(y, x, w, n) }); a != 0 {
						t.Errorf("%v n=%d interleaved %v: %v allocations per MatMul", dt, n, w.Interleaved, a)
					}
				}
			}
		}
	})
}

func ExamplePool_MatMul() {
	p := NewPool(0)
	defer p.Close()
	w := NewF32Matrix(2, 3, []float32{
		1, 0, 0,
		0, 1, 1,
	})
	x := []float32{1, 2, 3} // one token
	y := make([]float32, 2)
	p.MatMul(y, x, w, 1)
	fmt.Println(y)
	// Output: [1 5]
}

// TestInterleave checks that an interleaved matrix holds the same rows:
// Row and AxpyRow read them back exactly, Validate accepts it, and the
// shapes and types the layout does not apply to come back unchanged.
func TestInterleave(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		for _, dt := range []DType{F32, F16, BF16, Q8_0} {
			w := randMatrix(rng, dt, 8, 96)
			iw := Interleave(w)
			if !iw.Interleaved || &iw.Data[0] == &w.Data[0] {
				t.Fatalf("%v: Interleave did not make a new interleaved copy", dt)
			}
			if err := iw.Validate(); err != nil {
				t.Fatalf("%v: %v", dt, err)
			}
			if again := Interleave(iw); &again.Data[0] != &iw.Data[0] {
				t.Errorf("%v: Interleave of an interleaved matrix copied it", dt)
			}
			// InterleaveInto writes the same bytes where it is told,
			// whatever the buffer held, and refuses a short one.
			dst := make([]byte, len(w.Data)+7)
			for i := range dst {
				dst[i] = 0xa5
			}
			if into := InterleaveInto(dst, w); !into.Interleaved || &into.Data[0] != &dst[0] || !bytes.Equal(into.Data, iw.Data) {
				t.Errorf("%v: InterleaveInto did not write Interleave's copy to its buffer", dt)
			}
			if dst[len(w.Data)] != 0xa5 {
				t.Errorf("%v: InterleaveInto wrote past the matrix's bytes", dt)
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%v: InterleaveInto a buffer one byte short did not panic", dt)
					}
				}()
				InterleaveInto(make([]byte, len(w.Data)-1), w)
			}()
			want, got := make([]float32, w.Cols), make([]float32, w.Cols)
			for r := range w.Rows {
				w.Row(r, want)
				iw.Row(r, got)
				if !slices.Equal(got, want) {
					t.Fatalf("%v row %d: interleaved %v, want %v", dt, r, got[:4], want[:4])
				}
				clear(want)
				clear(got)
				AxpyRow(want, 0.5, w, r)
				AxpyRow(got, 0.5, iw, r)
				if !slices.Equal(got, want) {
					t.Fatalf("%v row %d: AxpyRow of interleaved %v, want %v", dt, r, got[:4], want[:4])
				}
			}
		}
		for _, w := range []Matrix{
			randMatrix(rng, F16, 6, 64),   // rows not a multiple of 4
			randMatrix(rng, F16, 8, 48),   // cols not a multiple of 32
			randMatrix(rng, Q8_0, 6, 64),  // rows not a multiple of 4
			randMatrix(rng, Q6_K, 4, 256), // no interleaved kernel
			randMatrix(rng, Q4_K, 4, 256),
		} {
			if iw := Interleave(w); iw.Interleaved || &iw.Data[0] != &w.Data[0] || CanInterleave(w) {
				t.Errorf("%v %dx%d: interleaved", w.DType, w.Rows, w.Cols)
			}
			if into := InterleaveInto(nil, w); into.Interleaved || &into.Data[0] != &w.Data[0] {
				t.Errorf("%v %dx%d: InterleaveInto did not return the matrix as it is", w.DType, w.Rows, w.Cols)
			}
		}
		for _, bad := range []Matrix{randMatrix(rng, F16, 8, 48), randMatrix(rng, Q8_0, 6, 64)} {
			bad.Interleaved = true
			if bad.Validate() == nil {
				t.Errorf("Validate accepted an interleaved %v %dx%d matrix", bad.DType, bad.Rows, bad.Cols)
			}
			for name, read := range map[string]func(){
				"Row":     func() { bad.Row(0, make([]float32, bad.Cols)) },
				"AxpyRow": func() { AxpyRow(make([]float32, bad.Cols), 1, bad, 0) },
			} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s of an interleaved %v %dx%d matrix did not panic", name, bad.DType, bad.Rows, bad.Cols)
						}
					}()
					read()
				}()
			}
		}
	})
}

// TestTileRange checks the two ends of a worker's range: its owner takes
// a quarter of what is left from the front (at least the claim), another
// worker takes the back half.
func TestTileRange(t *testing.T) {
	var r tileRange
	r.set(10, 50)
	if lo, hi, ok := r.takeFront(3); !ok || lo != 10 || hi != 20 {
		t.Errorf("takeFront of [10,50) = [%d,%d) %v, want [10,20)", lo, hi, ok)
	}
	if lo, hi, ok := r.takeBack(); !ok || lo != 35 || hi != 50 {
		t.Errorf("takeBack of [20,50) = [%d,%d) %v, want [35,50)", lo, hi, ok)
	}
	if lo, hi, ok := r.takeFront(20); !ok || lo != 20 || hi != 35 {
		t.Errorf("takeFront(20) of [20,35) = [%d,%d) %v, want all of it", lo, hi, ok)
	}
	if _, _, ok := r.takeFront(1); ok {
		t.Error("takeFront of an empty range took something")
	}
	if _, _, ok := r.takeBack(); ok {
		t.Error("takeBack of an empty range took something")
	}
	r.set(7, 8)
	if lo, hi, ok := r.takeBack(); !ok || lo != 7 || hi != 8 {
		t.Errorf("takeBack of [7,8) = [%d,%d) %v, want the last tile", lo, hi, ok)
	}
}

// TestMatMulStealsEveryTileOnce drains the ranges of a MatMul from many
// goroutines at once, each taking from its own range and stealing from
// the others, and checks that every tile was computed exactly once.
func TestMatMulStealsEveryTileOnce(t *testing.T) {
	const workers, tiles = 6, 1000
	p := NewPool(1)
	defer p.Close()
	p.tiles = make([]tileRange, workers)
	for round := range 50 {
		per := (tiles + workers - 1) / workers
		for i := range p.tiles {
			lo := min(i*per, tiles)
			p.tiles[i].set(lo, min(lo+per, tiles))
		}
		var count [tiles]atomic.Int32
		m := matmulTask{pool: p, tiles: tiles, claim: 1 + round%3}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for lo, hi, ok := m.next(w); ok; lo, hi, ok = m.next(w) {
					for i := lo; i < hi; i++ {
						count[i].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for i := range count {
			if c := count[i].Load(); c != 1 {
				t.Fatalf("round %d: tile %d computed %d times", round, i, c)
			}
		}
	}
}

// TestMatMuls runs up to three matrices of one width and mixed types and
// shapes (one under 4 rows, one not a multiple of 4) in one call, and
// checks each output against MatMul's; matrices of different widths are
// refused.
func TestMatMuls(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 23))
		for _, threads := range []int{1, 2, 3} {
			p := NewPool(threads)
			ws := []Matrix{randMatrix(rng, F16, 72, 96), Interleave(randMatrix(rng, BF16, 8, 96)), randMatrix(rng, Q8_0, 3, 96)}
			ws = append(ws, Interleave(randMatrix(rng, F16, 13, 96)), Interleave(randMatrix(rng, Q8_0, 12, 96)))
			for _, set := range [][]int{{0}, {0, 1}, {1, 0, 2}, {3, 2, 0}, {2}, {4, 2}, {0, 4, 1}} {
				for _, n := range []int{1, 3, 9, 64} {
					x := randFloats(rng, n*96)
					var ys [][]float32
					var mats []Matrix
					for _, i := range set {
						ys = append(ys, make([]float32, n*ws[i].Rows))
						mats = append(mats, ws[i])
					}
					p.MatMuls(ys, x, mats, n)
					for j, w := range mats {
						want := make([]float32, n*w.Rows)
						p.MatMul(want, x, w, n)
						if !slices.Equal(ys[j], want) {
							t.Fatalf("threads=%d set %v n=%d: matrix %d (%v %dx%d) differs from MatMul's", threads, set, n, j, w.DType, w.Rows, w.Cols)
						}
					}
				}
			}
			p.Close()
		}
		p := NewPool(2)
		defer p.Close()
		defer func() {
			if recover() == nil {
				t.Error("MatMuls of matrices of different widths did not panic")
			}
		}()
		p.MatMuls([][]float32{make([]float32, 8), make([]float32, 8)}, make([]float32, 96),
			[]Matrix{randMatrix(rng, F32, 8, 96), randMatrix(rng, F32, 8, 64)}, 1)
	})
}
