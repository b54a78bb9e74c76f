//go:build !purego

package kernels

// decodeGroups is, per dtype, how many groups of a tile kernel's maximum
// token count still take the decode path: for a batch of a few decoding
// sequences, converting a tile's weights again in registers for each
// group (the first group streams them from memory, prefetching the next
// tile; the others find them in L1) beats converting whole panels to
// float32 in scratch, a write and a read of every weight. Layer by layer,
// 8 tokens, AVX2: F16 and BF16 1.2-1.45x, Q8_0 1.2x. The Q4_K, Q6_K, Q5_0
// and Q4_0 tiles (AVX2, used by AVX-512 too) take one token: a few tokens
// call them once each.
var decodeGroups = [numDTypes]int{F32: 4, F16: 4, BF16: 4, Q8_0: 4, Q4_K: 4, Q6_K: 4, Q5_0: 4, Q4_0: 4}

// blockBytes bounds the activations of one block of tokens in prefill,
// so that they stay in L2 while the weight panel passes over them.
const blockBytes = 128 << 10

// matmulRows computes output rows [lo, hi) of MatMul for n tokens, 4 rows
// at a time. There are two regimes:
//
//   - decode, n <= decodeGroups*maxT[dt]: per 4 rows, calls of the
//     dtype's tile kernel for groups of up to maxT tokens, which convert
//     each weight vector in registers as it streams in from memory.
//   - prefill, more tokens: the rows go in panels of panelRows (see
//     matmulScratch), read from memory once and, unless they are F32,
//     converted to float32 once into scratch. The F32 tile kernel then
//     runs over the panel for blocks of tokens that stay in L2, each
//     4-row tile staying in L1 for a whole block.
//
// An interleaved matrix takes the tileI kernels, each 4-row tile one
// group; converting a panel in one pass keeps the interleaved order, as
// interleaving moves whole runs of values. Its rows come in whole groups
// and whole vectors, so lo and hi are multiples of 4 (MatMul hands out
// whole tiles) and the tail and overlap below never arise. A packed Q8_0
// matrix (see Interleave) decodes with tileQ8X4 (matmulQ8A8); without
// quantized activations it takes the panel path at any n, decodeQ8X4
// writing its panels in the F32 interleaved order.
//
// The last tile of a panel is moved back to end with it, overlapping the
// one before; it writes the same values again. Ranges under 4 rows go one
// row at a time.
func (s *simd) matmulRows(y, x []float32, w Matrix, n, lo, hi int, scratch, xq []float32) {
	if hi-lo < 4 {
		matmulRowsDot(y, x, w, n, lo, hi, scratch, rowDecoder{s.decodeUnits, s.decodeQ8Packed}, s.dotSlices)
		return
	}
	dt, rows, cols := w.DType, w.Rows, w.Cols
	rowBytes := dt.RowBytes(cols)
	k := cols &^ (s.lanes - 1) // the columns the kernels take (all of them for Q8_0)

	if dt == Q8_0 && xq != nil { // decode, int8 activations
		s.matmulQ8A8(y, w, n, lo, hi, xq)
		return
	}
	if maxT := s.maxT[dt]; n <= decodeGroups[dt]*maxT && (!w.Interleaved || s.tileI[dt] != nil) { // decode
		// A few sequences decoding together: the tokens go through each
		// 4-row tile in groups of maxT while the tile's weights are
		// still in L1, so memory is read once for all of them.
		if w.Interleaved {
			s.matmulInterleaved(y, x, w, n, lo, hi)
			return
		}
		tile := s.tile[dt]
		for r0 := lo; r0 < hi; r0 += 4 {
			r := min(r0, hi-4)
			wt := w.Data[r*rowBytes:]
			for t := 0; t < n; t += maxT {
				tile(&y[t*rows+r], rows, &x[t*cols], cols, &wt[0], rowBytes, k, min(maxT, n-t))
			}
			if k < cols {
				addTail(y, x, dt, wt, rowBytes, rows, cols, k, r, 0, n)
			}
		}
		return
	}

	tile, tileI, maxT := s.tile[F32], s.tileI[F32], s.maxT[F32]
	block := max(maxT, blockBytes/(4*cols)/maxT*maxT)
	for p0, p1 := lo, lo; p0 < hi; p0 = p1 {
		p1 = min(p0+panelRows(cols), hi)
		if hi-p1 < 4 { // a short remainder joins this panel
			p1 = hi
		}
		panel, stride := w.Data[p0*rowBytes:p1*rowBytes], rowBytes
		if dt != F32 {
			f := scratch[:(p1-p0)*cols]
			if w.packedQ8() {
				qs, ds := w.q8Packed()
				nb := cols / Q8_0Block
				q, d := q8PackedAt(p0, 0, nb)
				s.decodeQ8X4(&f[0], &qs[q], &ds[d], (p1-p0)/4*nb)
			} else {
				s.decodeRow(f, dt, panel) // rows are whole blocks: one pass converts them all
			}
			panel, stride = F32Bytes(f), 4*cols
		}
		for t0 := 0; t0 < n; t0 += block {
			t1 := min(t0+block, n)
			for r0 := p0; r0 < p1; r0 += 4 {
				r := min(r0, p1-4)
				wt := panel[(r-p0)*stride:]
				for t := t0; t < t1; t += maxT {
					if w.Interleaved { // one group; no prefetch: the panel is in cache
						tileI(&y[t*rows+r], rows, &x[t*cols], cols, &wt[0], 0, k, min(maxT, t1-t), 1)
					} else {
						tile(&y[t*rows+r], rows, &x[t*cols], cols, &wt[0], stride, k, min(maxT, t1-t))
					}
				}
				if k < cols {
					addTail(y, x, F32, wt, stride, rows, cols, k, r, t0, t1)
				}
			}
		}
	}
}

// matmulInterleaved is matmulRows' decode path for an interleaved matrix,
// whose rows come in whole groups of 4 (lo and hi are multiples of 4) and
// whole vectors (the kernels take every column). One token group takes
// all the groups in one call, a sequential read prefetched ilvPrefetch
// bytes ahead; more go group by group, and only the first token group,
// which streams the group from memory, prefetches ahead (the others find
// it in L1).
func (s *simd) matmulInterleaved(y, x []float32, w Matrix, n, lo, hi int) {
	dt, rows, cols := w.DType, w.Rows, w.Cols
	tile, maxT, rowBytes := s.tileI[dt], s.maxT[dt], dt.RowBytes(cols)
	if n <= maxT {
		tile(&y[lo], rows, &x[0], cols, &w.Data[lo*rowBytes], ilvPrefetch, cols, n, (hi-lo)/4)
		return
	}
	for r := lo; r < hi; r += 4 {
		for t := 0; t < n; t += maxT {
			pf := 0
			if t == 0 {
				pf = ilvPrefetch
			}
			tile(&y[t*rows+r], rows, &x[t*cols], cols, &w.Data[r*rowBytes], pf, cols, min(maxT, n-t), 1)
		}
	}
}

// matmulQ8A8 is matmulRows' decode path for Q8_0 weights and activations
// xq quantized by q8Acts. One token group (up to q8ActMaxT tokens) takes
// all the tiles in one call; more go tile by tile, each token group in
// turn while the tile is in L1.
func (s *simd) matmulQ8A8(y []float32, w Matrix, n, lo, hi int, xq []float32) {
	rows, cols := w.Rows, w.Cols
	rowBytes, xs := Q8_0.RowBytes(cols), q8ActFloats(1, cols)
	if w.packedQ8() { // whole groups: lo and hi are multiples of 4
		qs, ds := w.q8Packed()
		nb := cols / Q8_0Block
		if n <= q8ActMaxT {
			q, d := q8PackedAt(lo, 0, nb)
			s.tileQ8X4(&y[lo], rows, &xq[0], xs, &qs[q], &ds[d], cols, n, (hi-lo)/4, q8X4Prefetch)
			return
		}
		for r := lo; r < hi; r += 4 {
			q, d := q8PackedAt(r, 0, nb)
			for t := 0; t < n; t += q8ActMaxT {
				s.tileQ8X4(&y[t*rows+r], rows, &xq[t*xs], xs, &qs[q], &ds[d], cols, min(q8ActMaxT, n-t), 1, q8X4Prefetch)
			}
		}
		return
	}
	if n <= q8ActMaxT {
		if full := (hi - lo) / 4; full > 0 {
			s.tileQ8A8(&y[lo], rows, &xq[0], xs, &w.Data[lo*rowBytes], rowBytes, cols, n, full, q8PrefetchRows*rowBytes)
		}
		if (hi-lo)%4 != 0 { // the last 4 rows, overlapping the tile before
			s.tileQ8A8(&y[hi-4], rows, &xq[0], xs, &w.Data[(hi-4)*rowBytes], rowBytes, cols, n, 1, q8PrefetchRows*rowBytes)
		}
		return
	}
	for r0 := lo; r0 < hi; r0 += 4 {
		r := min(r0, hi-4)
		for t := 0; t < n; t += q8ActMaxT {
			s.tileQ8A8(&y[t*rows+r], rows, &xq[t*xs], xs, &w.Data[r*rowBytes], rowBytes, cols, min(q8ActMaxT, n-t), 1, q8PrefetchRows*rowBytes)
		}
	}
}

// q8PrefetchRows is how far ahead of a Q8_0 tile's first row its
// prefetches run, in rows: 1.5 tiles. Decode of the Q8_0 SmolLM2-135M at
// a 16-token context, matmul time a step against 4 rows (the next tile,
// as before), alternating in one process, three runs: 6 rows 1.2-2.8%
// less, 5 rows 3.0% less and 7 rows 1.2% less (one run each, so 6 was
// kept), 8 rows and 12 rows 0.4% and 3% more, 2 rows 18% more; 3 or 4 KB
// ahead whatever the row length 1.3% more and 0.6% less.
const q8PrefetchRows = 6

// q8X4Prefetch is how many bytes ahead of its reads tileQ8X4 prefetches
// the quants of packed Q8_0 rows. Layer by layer from memory, 1 and 2 KB
// ran 8-11% faster than the row-major tile, 0.5 KB less so.
const q8X4Prefetch = 1024

// q8ActMaxT is the most tokens one tileQ8A8 or tileQ8X4 call takes.
const q8ActMaxT = 2

// q8ActTokens is the most tokens the decode path takes with tileQ8A8 and
// tileQ8X4.
func (s *simd) q8ActTokens() int { return decodeGroups[Q8_0] * q8ActMaxT }

// q8Acts quantizes n tokens of cols activations for tileQ8A8 and
// tileQ8X4; cols is a positive multiple of Q8_0Block, as a Q8_0 matrix's
// width is.
func (s *simd) q8Acts(dst, x []float32, n, cols int) {
	if n < 1 || n > s.q8ActTokens() || cols < Q8_0Block || cols%Q8_0Block != 0 ||
		len(dst) < q8ActFloats(n, cols) || len(x) < n*cols {
		panic("kernels: q8Acts of a bad shape or buffer")
	}
	s.quantizeQ8Acts(&F32Bytes(dst)[0], &x[0], n*cols/Q8_0Block)
}

// addTail adds columns [k, cols) to the dot products of the tile at row r,
// tokens [t0, t1): the fewer-than-a-vector columns the kernels leave out.
func addTail(y, x []float32, dt DType, w []byte, stride, rows, cols, k, r, t0, t1 int) {
	var buf [16]float32
	tail := buf[:cols-k]
	for i := range 4 {
		decodeRowGo(tail, dt, w[i*stride+dt.RowBytes(k):])
		for t := t0; t < t1; t++ {
			y[t*rows+r+i] += dotGo(x[t*cols+k:(t+1)*cols], tail)
		}
	}
}

// ilvPrefetch is how many bytes ahead of its reads an interleaved tile
// prefetches in decode. In a prototype (F16, one core and two), 1 KB
// ahead streamed 5-15% faster than 0.5, 2, 4 or 8 KB.
const ilvPrefetch = 1024
