package kernels

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// randKBlocks returns n super-blocks of random bytes with finite, modest
// f16 scales, so that every bit of the packed scales and quants is used.
func randKBlocks(dt DType, n int) []byte {
	rng := rand.New(rand.NewPCG(21, uint64(dt)))
	bb := dt.RowBytes(dt.BlockSize())
	b := make([]byte, n*bb)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := range n {
		blk := b[i*bb : (i+1)*bb]
		switch dt {
		case Q4_K:
			binary.LittleEndian.PutUint16(blk[0:], F32ToF16(rng.Float32()/64))
			binary.LittleEndian.PutUint16(blk[2:], F32ToF16(rng.Float32()/64))
		case Q5_0, Q4_0:
			binary.LittleEndian.PutUint16(blk[0:], F32ToF16(rng.Float32()/64))
		default:
			binary.LittleEndian.PutUint16(blk[bb-2:], F32ToF16(rng.Float32()/64))
		}
	}
	return b
}

// TestQ4KLayout decodes a hand-built super-block whose every sub-block
// has its own scale and min, checking the packing of the 6-bit scales
// (including the top bits of sub-blocks 4-7) and the nibble order.
func TestQ4KLayout(t *testing.T) {
	var blk [q4KBlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(1))   // d
	binary.LittleEndian.PutUint16(blk[2:], F32ToF16(0.5)) // dmin
	sc := [8]uint8{1, 2, 3, 4, 17, 33, 49, 63}
	mn := [8]uint8{5, 6, 7, 8, 20, 40, 60, 62}
	q := blk[4:16]
	for j := range 4 {
		q[j] = sc[j] | (sc[j+4]>>4)<<6
		q[j+4] = mn[j] | (mn[j+4]>>4)<<6
		q[j+8] = sc[j+4]&0xF | (mn[j+4]&0xF)<<4
	}
	for i := range 128 {
		blk[16+i] = byte(i%16) | byte(15-i%16)<<4
	}
	for j := range 8 {
		if s, m := q4KScaleMin(j, q); s != sc[j] || m != mn[j] {
			t.Fatalf("sub-block %d: scale, min = %d, %d, want %d, %d", j, s, m, sc[j], mn[j])
		}
	}
	got := make([]float32, KBlock)
	DecodeRow(got, Q4_K, blk[:])
	for i, v := range got {
		j, l := i/32, i%32 // sub-block j: 64·(j/2) + 32·(j%2) + l
		b := byte(32*(j/2)+l) % 16
		nib := b
		if j%2 == 1 {
			nib = 15 - b
		}
		want := float32(sc[j])*float32(nib) - 0.5*float32(mn[j])
		if v != want {
			t.Fatalf("value %d (sub-block %d) = %g, want %g", i, j, v, want)
		}
	}
}

// TestQ6KLayout decodes a super-block built value by value: value i is
// (i%64)-32 times d·scale[i/16].
func TestQ6KLayout(t *testing.T) {
	var x [KBlock]float32
	var scale [16]int8
	for g := range 16 {
		scale[g] = int8(g*9 - 60)
	}
	for i := range x {
		x[i] = float32(i%64-32) * 0.25 * float32(scale[i/16])
	}
	var blk [q6KBlockBytes]byte
	binary.LittleEndian.PutUint16(blk[q6KBlockBytes-2:], F32ToF16(0.25))
	for g := range 16 {
		blk[192+g] = byte(scale[g])
	}
	for h := range 2 {
		ql, qh := blk[64*h:64*h+64], blk[128+32*h:128+32*h+32]
		for l := range 32 {
			v := func(k int) byte { return byte((128*h + 32*k + l) % 64) } // q + 32
			ql[l] = v(0)&0xF | (v(2)&0xF)<<4
			ql[l+32] = v(1)&0xF | (v(3)&0xF)<<4
			qh[l] = v(0)>>4 | (v(1)>>4)<<2 | (v(2)>>4)<<4 | (v(3)>>4)<<6
		}
	}
	got := make([]float32, KBlock)
	DecodeRow(got, Q6_K, blk[:])
	for i := range got {
		if got[i] != x[i] {
			t.Fatalf("value %d = %g, want %g", i, got[i], x[i])
		}
	}
}

// TestEncodeKQuants checks that EncodeRow's K-quants decode back within
// their resolution: half a step of the sub-block scale plus the rounding
// of the scales themselves.
func TestEncodeKQuants(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 22))
	for _, dt := range []DType{Q4_K, Q6_K, Q5_0, Q4_0} {
		for _, spread := range []float32{1, 1e-3, 100} {
			x := randFloats(rng, 4*KBlock)
			for i := range x { // groups of 16 a factor of up to 13 apart
				x[i] *= spread * float32(1+3*(i/16%5))
			}
			x[5] = 0
			enc := EncodeRow(nil, dt, x)
			if len(enc) != dt.RowBytes(len(x)) {
				t.Fatalf("%v: %d bytes, want %d", dt, len(enc), dt.RowBytes(len(x)))
			}
			got := make([]float32, len(x))
			decodeRowGo(got, dt, enc)
			levels := float32(15) // Q4_K: 16 levels over [min, max]
			if dt == Q6_K {
				levels = 31 // Q6_K: ±31 steps of max|x|
			}
			if dt == Q5_0 {
				levels = 16 // Q5_0: ±16 steps of max|x| over a block of 32
			}
			if dt == Q4_0 {
				levels = 8 // Q4_0: ±8 steps
			}
			for g := 0; g < len(x); g += 16 {
				var amax float32 // over the value's scale group: 32 for Q4_K and Q5_0, 16 for Q6_K
				from, to := g/32*32, g/32*32+32
				if dt == Q6_K {
					from, to = g, g+16
				}
				for _, v := range x[from:to] {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				for i := g; i < g+16; i++ {
					if d := math.Abs(float64(got[i] - x[i])); d > float64(2*amax/levels)*0.75 {
						t.Fatalf("%v spread %g: value %d = %g, want %g ± %g", dt, spread, i, got[i], x[i], 2*amax/levels*0.75)
					}
				}
			}
		}
		zero := EncodeRow(nil, dt, make([]float32, KBlock))
		got := make([]float32, KBlock)
		if len(zero) != dt.RowBytes(KBlock) {
			t.Fatalf("%v: a zero row of %d values encodes to %d bytes", dt, KBlock, len(zero))
		}
		decodeRowGo(got, dt, zero)
		for i, v := range got {
			if v != 0 {
				t.Fatalf("%v: zero block decodes to %g at %d", dt, v, i)
			}
		}
	}
}

// TestQ5_0Layout decodes a hand-built Q5_0 block: value j < 16 from the low
// nibble of byte j and bit j of qh, value j+16 from the high nibble and
// bit j+16, minus 16, times d; and checks EncodeRow against llama.cpp's
// rounding on the same values.
func TestQ5_0Layout(t *testing.T) {
	var blk [q5_0BlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(0.5))
	var qh uint32
	want := make([]float32, Q8_0Block)
	for j := range 16 {
		lo, hi := byte(j), byte(31-j) // q + 16, 0..31
		blk[6+j] = lo&0xF | (hi&0xF)<<4
		qh |= uint32(lo>>4)<<j | uint32(hi>>4)<<(j+16)
		want[j], want[j+16] = 0.5*float32(int(lo)-16), 0.5*float32(int(hi)-16)
	}
	binary.LittleEndian.PutUint32(blk[2:], qh)
	got := make([]float32, Q8_0Block)
	DecodeRow(got, Q5_0, blk[:])
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("value %d = %g, want %g", i, got[i], want[i])
		}
	}
	// want spans -8..7.5 with its largest magnitude -8 first: d = -8/-16.
	if enc := EncodeRow(nil, Q5_0, want); !bytes.Equal(enc, blk[:]) {
		t.Errorf("EncodeRow = % x\nwant       % x", enc, blk[:])
	}
}

// TestQ4_0Layout decodes a hand-built Q4_0 block: value j < 16 from the
// low nibble of byte j, value j+16 from its high nibble, minus 8, times
// d; EncodeRow gives back the same bytes.
func TestQ4_0Layout(t *testing.T) {
	var blk [q4_0BlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(0.25))
	want := make([]float32, Q8_0Block)
	for j := range 16 {
		lo, hi := byte(j), byte(15-j)
		blk[2+j] = lo | hi<<4
		want[j], want[j+16] = 0.25*float32(int(lo)-8), 0.25*float32(int(hi)-8)
	}
	got := make([]float32, Q8_0Block)
	DecodeRow(got, Q4_0, blk[:])
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("value %d = %g, want %g", i, got[i], want[i])
		}
	}
	// want spans -2..1.75 with its largest magnitude -2 first: d = -2/-8.
	if enc := EncodeRow(nil, Q4_0, want); !bytes.Equal(enc, blk[:]) {
		t.Errorf("EncodeRow = % x\nwant       % x", enc, blk[:])
	}
}
