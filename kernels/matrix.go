package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Matrix is a read-only weight matrix of Rows x Cols values stored as
// DType. Rows are output features and Cols input features: the layout of
// torch.nn.Linear.weight and of GGUF tensors. Data holds the rows in
// row-major order or, when Interleaved is set, in the order Interleave
// describes. Data may point into a memory-mapped file; the kernels never
// write it.
type Matrix struct {
	DType       DType
	Rows, Cols  int
	Interleaved bool
	Data        []byte
}

// InterleaveCols is the number of consecutive values of one row that an
// interleaved matrix stores together.
const InterleaveCols = 32

// Interleave returns a copy of m stored for the decode kernels: the rows
// in groups of 4, each group holding the 4 rows' first InterleaveCols
// values one row after another, then their next InterleaveCols values,
// and so on. The 4 rows that a matmul tile reads together are then one
// run of memory read front to back, which one core streams at the speed
// of a plain read; 4 separate rows read side by side streamed 10-20%
// slower (kernels/_asm/matmul.go has the figures). The size of Data does
// not change.
//
// Q8_0 rows are packed differently, their quants as llama.cpp repacks
// them: per group of 4 rows and block of 32 columns, 128 bytes of quants,
// 8 columns of row 0, 8 of row 1, 8 of row 2, 8 of row 3, then the next 8
// columns of each. One 32-byte load then holds 4 rows, so the int8 decode
// tile sums a group's block in one vector and scales it with one
// multiply: from L2 one core ran it 1.5x as fast as the row-major tile,
// and layer by layer from memory 8-11% faster (see tileQ8X4AVX2). All the
// quants come first, then all the scales, 4 halves (one per row) per group
// and block: llama.cpp keeps each block's scales in front of its quants,
// but apart every quant load is aligned.
//
// Interleave returns m itself when the layout does not apply: m is
// interleaved already, its type has no interleaved kernels (only F32,
// F16, BF16 and Q8_0 have), or Rows is not a multiple of 4 or Cols of
// InterleaveCols.
func Interleave(m Matrix) Matrix {
	if !CanInterleave(m) || m.Interleaved {
		return m
	}
	return InterleaveInto(make([]byte, len(m.Data)), m)
}

// InterleaveInto is Interleave writing the copy to dst, which must hold
// len(m.Data) bytes: for a caller that places its weights itself
// (model.Load maps them in 2 MiB pages). It returns m itself, dst
// untouched, where Interleave would.
func InterleaveInto(dst []byte, m Matrix) Matrix {
	if !CanInterleave(m) || m.Interleaved {
		return m
	}
	if len(dst) < len(m.Data) {
		panic(fmt.Sprintf("kernels: InterleaveInto a buffer of %d bytes, the matrix has %d", len(dst), len(m.Data)))
	}
	data := dst[:len(m.Data):len(m.Data)]
	if m.DType == Q8_0 {
		return packQ8(data, m)
	}
	ub, rb := m.DType.RowBytes(InterleaveCols), m.DType.RowBytes(m.Cols)
	for g := 0; g < m.Rows; g += 4 {
		group := data[g*rb : (g+4)*rb]
		for i := range 4 {
			row := m.Data[(g+i)*rb : (g+i+1)*rb]
			for u := 0; u < rb/ub; u++ {
				copy(group[(4*u+i)*ub:], row[u*ub:(u+1)*ub])
			}
		}
	}
	m.Data, m.Interleaved = data, true
	return m
}

// CanInterleave reports whether m's type and shape allow the interleaved
// layout.
func CanInterleave(m Matrix) bool {
	switch m.DType {
	case F32, F16, BF16, Q8_0:
		return m.Rows%4 == 0 && m.Cols%InterleaveCols == 0
	}
	return false
}

// packQ8 is InterleaveInto for a row-major Q8_0 matrix.
func packQ8(data []byte, m Matrix) Matrix {
	rb, nb := Q8_0.RowBytes(m.Cols), m.Cols/Q8_0Block
	p := Matrix{DType: Q8_0, Rows: m.Rows, Cols: m.Cols, Interleaved: true, Data: data}
	qs, ds := p.q8Packed()
	for r := range m.Rows {
		for b := range nb {
			blk := m.Data[r*rb+b*34:]
			q, d := q8PackedAt(r, b, nb)
			copy(ds[d:], blk[:2])
			for c := range 4 { // 8 bytes at a time: one move, where copy was a call
				binary.LittleEndian.PutUint64(qs[q+32*c:], binary.LittleEndian.Uint64(blk[2+8*c:]))
			}
		}
	}
	return p
}

// q8PackedAt returns where block b of row r of a packed Q8_0 matrix with
// nb blocks a row lies: its quants at q, q+32, q+64 and q+96 in the
// quants, 8 at each, and its scale at d in the scales.
func q8PackedAt(r, b, nb int) (q, d int) {
	gb := r/4*nb + b
	return gb*128 + 8*(r%4), gb*8 + 2*(r%4)
}

// q8Packed returns the quants and the scales of a packed Q8_0 matrix.
func (m Matrix) q8Packed() (qs, ds []byte) {
	n := m.Rows * m.Cols
	return m.Data[:n], m.Data[n:]
}

// decodeQ8PackedGo is the pure-Go impl.decodeQ8Packed: each value d·q
// rounded once, as every decoder computes it.
func decodeQ8PackedGo(dst []float32, qs, ds []byte) {
	for b := range len(dst) / Q8_0Block {
		d := F16ToF32(binary.LittleEndian.Uint16(ds[b*8:]))
		out := dst[b*Q8_0Block : (b+1)*Q8_0Block]
		for c := range 4 {
			for j, q := range qs[b*128+c*32 : b*128+c*32+8] {
				out[8*c+j] = d * float32(int8(q))
			}
		}
	}
}

// packedQ8 reports whether m is a packed Q8_0 matrix.
func (m Matrix) packedQ8() bool { return m.Interleaved && m.DType == Q8_0 && CanInterleave(m) }

// q8PackedRow returns where row r of a packed Q8_0 matrix starts: its
// first 8 quants and its first scale, as impl.decodeQ8Packed takes them.
func (m Matrix) q8PackedRow(r int) (qs, ds []byte) {
	qs, ds = m.q8Packed()
	q, d := q8PackedAt(r, 0, m.Cols/Q8_0Block)
	return qs[q:], ds[d:]
}

// q8Block copies block b of row r of a packed Q8_0 matrix to blk, as a
// row-major matrix stores it: the scale, then the 32 quants.
func (m Matrix) q8Block(blk *[34]byte, r, b int) {
	qs, ds := m.q8Packed()
	q, d := q8PackedAt(r, b, m.Cols/Q8_0Block)
	copy(blk[:2], ds[d:])
	for c := range 4 {
		binary.LittleEndian.PutUint64(blk[2+8*c:], binary.LittleEndian.Uint64(qs[q+32*c:]))
	}
}

// rowUnits returns the stored bytes of row r from its first value on, and
// how far apart its units of InterleaveCols values are: 0 for a
// row-major matrix, whose row is one run. A packed Q8_0 matrix has no
// such units (see q8Block).
func (m Matrix) rowUnits(r int) (src []byte, stride int) {
	rb := m.DType.RowBytes(m.Cols)
	if !m.Interleaved {
		return m.Data[r*rb : (r+1)*rb], 0
	}
	if m.packedQ8() {
		panic("kernels: packed Q8_0 rows have no units")
	}
	if !CanInterleave(m) {
		panic("kernels: " + m.DType.String() + " matrix cannot be interleaved")
	}
	ub, g := m.DType.RowBytes(InterleaveCols), r-r%4
	return m.Data[g*rb+(r%4)*ub : (g+4)*rb], 4 * ub
}

// NewF32Matrix wraps float32 values as a Matrix without copying.
func NewF32Matrix(rows, cols int, v []float32) Matrix {
	return Matrix{DType: F32, Rows: rows, Cols: cols, Data: F32Bytes(v)}
}

// Validate reports whether Data has exactly the size that DType, Rows and
// Cols call for.
func (m Matrix) Validate() error {
	if m.Rows < 0 || m.Cols < 0 {
		return fmt.Errorf("kernels: negative matrix shape %dx%d", m.Rows, m.Cols)
	}
	if int(m.DType) >= numDTypes {
		return fmt.Errorf("kernels: unknown dtype %v", m.DType)
	}
	if bs := m.DType.BlockSize(); m.Cols%bs != 0 {
		return fmt.Errorf("kernels: %v matrix with %d columns, not a multiple of %d", m.DType, m.Cols, bs)
	}
	if m.Interleaved && !CanInterleave(m) {
		return fmt.Errorf("kernels: %v matrix %dx%d cannot be interleaved", m.DType, m.Rows, m.Cols)
	}
	want := m.Rows * m.DType.RowBytes(m.Cols)
	if len(m.Data) != want {
		return fmt.Errorf("kernels: %v matrix %dx%d needs %d bytes, has %d", m.DType, m.Rows, m.Cols, want, len(m.Data))
	}
	return nil
}

// RowData returns the stored bytes of row r of a row-major matrix; it
// panics if m is interleaved, whose rows are not contiguous.
func (m Matrix) RowData(r int) []byte {
	if m.Interleaved {
		panic("kernels: RowData of an interleaved matrix")
	}
	rb := m.DType.RowBytes(m.Cols)
	return m.Data[r*rb : (r+1)*rb]
}

// Row converts row r to float32 into dst, which must hold Cols values.
func (m Matrix) Row(r int, dst []float32) {
	m.decodeRow(dst, r, rowDecoder{active.decodeUnits, active.decodeQ8Packed})
}

// rowDecoder is how decodeRow converts a row, in either layout: an impl's
// decodeUnits and decodeQ8Packed.
type rowDecoder struct {
	units    func(dst []float32, dt DType, src []byte, stride int)
	q8Packed func(dst []float32, qs, ds []byte)
}

// goRowDecoder is the pure-Go rowDecoder.
var goRowDecoder = rowDecoder{decodeUnitsGo, decodeQ8PackedGo}

// decodeRow converts row r of m, in any layout, into dst with dec.
func (m Matrix) decodeRow(dst []float32, r int, dec rowDecoder) {
	if m.packedQ8() {
		qs, ds := m.q8PackedRow(r)
		dec.q8Packed(dst[:m.Cols], qs, ds)
		return
	}
	src, stride := m.rowUnits(r)
	dec.units(dst[:m.Cols], m.DType, src, stride)
}

// DecodeRow converts len(dst) values stored as dt in src to float32,
// exactly as ggml's dequantize_row functions compute them (Q8_0: d·q
// rounded once). For the blocked types only whole blocks are converted.
func DecodeRow(dst []float32, dt DType, src []byte) { active.decodeRow(dst, dt, src) }

// decodeRowGo is the pure-Go DecodeRow.
func decodeRowGo(dst []float32, dt DType, src []byte) {
	switch dt {
	case F32:
		copy(dst, AsF32(src))
	case BF16:
		h := AsU16(src)
		for i := range dst {
			dst[i] = BF16ToF32(h[i])
		}
	case F16:
		h := AsU16(src)
		for i := range dst {
			dst[i] = F16ToF32(h[i])
		}
	case Q8_0:
		for b := 0; b < len(dst)/Q8_0Block; b++ {
			blk := src[b*q8_0BlockBytes : (b+1)*q8_0BlockBytes]
			d := F16ToF32(binary.LittleEndian.Uint16(blk))
			for i, q := range blk[2:] {
				dst[b*Q8_0Block+i] = d * float32(int8(q))
			}
		}
	case Q4_K:
		for b := 0; b < len(dst)/KBlock; b++ {
			decodeQ4KGo(dst[b*KBlock:(b+1)*KBlock], src[b*q4KBlockBytes:(b+1)*q4KBlockBytes])
		}
	case Q6_K:
		for b := 0; b < len(dst)/KBlock; b++ {
			decodeQ6KGo(dst[b*KBlock:(b+1)*KBlock], src[b*q6KBlockBytes:(b+1)*q6KBlockBytes])
		}
	case Q5_0:
		for b := 0; b < len(dst)/Q8_0Block; b++ {
			decodeQ5_0Go(dst[b*Q8_0Block:(b+1)*Q8_0Block], src[b*q5_0BlockBytes:(b+1)*q5_0BlockBytes])
		}
	case Q4_0:
		for b := 0; b < len(dst)/Q8_0Block; b++ {
			decodeQ4_0Go(dst[b*Q8_0Block:(b+1)*Q8_0Block], src[b*q4_0BlockBytes:(b+1)*q4_0BlockBytes])
		}
	default:
		panic("kernels: DecodeRow of unknown dtype " + dt.String())
	}
}

// EncodeRow stores the float32 values src as dt, appending to dst. BF16
// and F16 round to nearest even; Q8_0 quantizes each block of 32 values as
// llama.cpp does (scale = max|x|/127, values rounded to nearest); Q4_K
// and Q6_K use plain min/max scales (see encodeQ4K), valid files but not
// llama-quantize's searched ones.
func EncodeRow(dst []byte, dt DType, src []float32) []byte {
	switch dt {
	case F32:
		return append(dst, F32Bytes(src)...)
	case BF16:
		for _, f := range src {
			dst = binary.LittleEndian.AppendUint16(dst, F32ToBF16(f))
		}
	case F16:
		for _, f := range src {
			dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(f))
		}
	case Q8_0:
		for b := 0; b+Q8_0Block <= len(src); b += Q8_0Block {
			blk := src[b : b+Q8_0Block]
			var amax float32
			for _, f := range blk {
				if f < 0 {
					f = -f
				}
				amax = max(amax, f)
			}
			d := amax / 127
			id := float32(0)
			if d != 0 {
				id = 1 / d
			}
			dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
			for _, f := range blk {
				dst = append(dst, byte(int8(roundHalfAway(f*id))))
			}
		}
	case Q4_K:
		for b := 0; b+KBlock <= len(src); b += KBlock {
			dst = encodeQ4K(dst, src[b:b+KBlock])
		}
	case Q6_K:
		for b := 0; b+KBlock <= len(src); b += KBlock {
			dst = encodeQ6K(dst, src[b:b+KBlock])
		}
	case Q5_0:
		for b := 0; b+Q8_0Block <= len(src); b += Q8_0Block {
			dst = encodeQ5_0(dst, src[b:b+Q8_0Block])
		}
	case Q4_0:
		for b := 0; b+Q8_0Block <= len(src); b += Q8_0Block {
			dst = encodeQ4_0(dst, src[b:b+Q8_0Block])
		}
	default:
		panic("kernels: EncodeRow of unknown dtype " + dt.String())
	}
	return dst
}

// roundHalfAway rounds to the nearest integer, halves away from zero, as
// C's roundf does. (Adding 0.5 and truncating is wrong for 0.49999997,
// whose sum with 0.5 rounds up to 1 in float32.)
func roundHalfAway(f float32) int32 { return int32(math.Round(float64(f))) }

// AsF32 reinterprets little-endian float32 bytes as a []float32 without
// copying. len(b) must be a multiple of 4.
func AsF32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// AsU16 reinterprets little-endian 16-bit values without copying.
func AsU16(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// F32Bytes returns the bytes of v without copying.
func F32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
