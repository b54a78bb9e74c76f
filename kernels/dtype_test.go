package kernels

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestF16ToF32(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want uint32 // float32 bits
	}{
		{0x0000, 0x00000000}, // +0
		{0x8000, 0x80000000}, // -0
		{0x0001, 0x33800000}, // smallest subnormal, 2^-24
		{0x03ff, 0x387fc000}, // largest subnormal
		{0x8001, 0xb3800000},
		{0x0400, 0x38800000}, // smallest normal, 2^-14
		{0x3c00, 0x3f800000}, // 1
		{0xc000, 0xc0000000}, // -2
		{0x3555, 0x3eaaa000}, // 0.333251953125
		{0x7bff, 0x477fe000}, // 65504, the largest half
		{0x7c00, 0x7f800000}, // +Inf
		{0xfc00, 0xff800000}, // -Inf
		{0x7e00, 0x7fc00000}, // quiet NaN
		{0x7c01, 0x7fc02000}, // signalling NaN keeps its payload, quieted
		{0xfd55, 0xffeaa000},
	} {
		if got := math.Float32bits(F16ToF32(c.h)); got != c.want {
			t.Errorf("F16ToF32(%#04x) = %#08x, want %#08x", c.h, got, c.want)
		}
	}
}

func TestF32ToF16(t *testing.T) {
	for _, c := range []struct {
		f    uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3c00}, // 1
		{0x3f801000, 0x3c00}, // 1 + 2^-11: a tie, rounds to even 0x3c00
		{0x3f803000, 0x3c02}, // 1 + 3·2^-11: a tie, rounds to even 0x3c02
		{0x3f801001, 0x3c01}, // just above the tie
		{0x477fe000, 0x7bff}, // 65504
		{0x477fefff, 0x7bff}, // just below 65520
		{0x477ff000, 0x7c00}, // 65520: a tie, rounds to even, which is Inf
		{0x49742400, 0x7c00}, // 1e6 overflows
		{0x33800000, 0x0001}, // 2^-24, the smallest subnormal
		{0x33000000, 0x0000}, // 2^-25: a tie, rounds to even 0
		{0x33000001, 0x0001}, // just above 2^-25
		{0x33c00000, 0x0002}, // 1.5·2^-24: a tie, rounds to even 2
		{0x387fc000, 0x03ff}, // largest subnormal
		{0x387fe000, 0x0400}, // a tie between it and the smallest normal
		{0x322bcc77, 0x0000}, // 1e-8 underflows
		{0x00000001, 0x0000}, // float32 subnormal
		{0x80000000, 0x8000}, // -0
		{0xbf800000, 0xbc00}, // -1
		{0x7f800000, 0x7c00}, // +Inf
		{0xff800000, 0xfc00}, // -Inf
		{0x7fc00000, 0x7e00}, // NaN
		{0x7f800001, 0x7e00}, // signalling NaN stays NaN
		{0xffc00000, 0xfe00},
	} {
		if got := F32ToF16(math.Float32frombits(c.f)); got != c.want {
			t.Errorf("F32ToF16(%#08x) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		f    uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // a tie, rounds to even
		{0x3f818000, 0x3f82}, // a tie, rounds to even
		{0x3f808001, 0x3f81},
		{0x3f80ffff, 0x3f81},
		{0x7f7fffff, 0x7f80}, // the largest float32 rounds to Inf
		{0x00000001, 0x0000}, // subnormals round like the rest
		{0x00018000, 0x0002},
		{0x80000000, 0x8000},
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80},
		{0x7fc00000, 0x7fc0},
		{0x7f800001, 0x7fc0}, // a NaN whose payload is in the low half stays NaN
		{0xff800001, 0xffc0},
	} {
		if got := F32ToBF16(math.Float32frombits(c.f)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	for _, h := range []uint16{0x0001, 0x3f80, 0xff80, 0x7fc1} {
		if got := math.Float32bits(BF16ToF32(h)); got != uint32(h)<<16 {
			t.Errorf("BF16ToF32(%#04x) = %#08x", h, got)
		}
	}
}

// TestHalfRoundTrip converts every 16-bit pattern to float32 and back.
func TestHalfRoundTrip(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f16, bf16 := F16ToF32(h), BF16ToF32(h)
		if f16 == f16 { // not NaN
			if back := F32ToF16(f16); back != h {
				t.Fatalf("F16 %#04x -> %g -> %#04x", h, f16, back)
			}
		}
		if bf16 == bf16 {
			if back := F32ToBF16(bf16); back != h {
				t.Fatalf("BF16 %#04x -> %g -> %#04x", h, bf16, back)
			}
		}
	}
}

func TestRoundHalfAway(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want int32
	}{
		{0, 0}, {0.49999997, 0}, {0.5, 1}, {1.5, 2}, {2.5, 3}, {-0.5, -1},
		{-0.49999997, 0}, {-2.5, -3}, {126.5, 127}, {-127, -127},
	} {
		if got := roundHalfAway(c.f); got != c.want {
			t.Errorf("roundHalfAway(%v) = %d, want %d", c.f, got, c.want)
		}
	}
}

// TestEncodeQ8_0 checks one block against the bytes llama.cpp writes:
// scale max|x|/127 as f16, then round(x/scale) halves away from zero.
func TestEncodeQ8_0(t *testing.T) {
	src := make([]float32, Q8_0Block)
	copy(src, []float32{-127, 2.5, -2.5, 0.5, -0.5, 0.49999997, 127, 3})
	got := EncodeRow(nil, Q8_0, src)
	want := []byte{0x00, 0x3c, 0x81, 3, 0xfd, 1, 0xff, 0, 127, 3} // d = 1.0
	want = append(want, make([]byte, Q8_0Block-8)...)
	if string(got) != string(want) {
		t.Errorf("EncodeRow Q8_0 = % x\nwant            % x", got, want)
	}
	dst := make([]float32, Q8_0Block)
	decodeRowGo(dst, Q8_0, got)
	if dst[0] != -127 || dst[1] != 3 || dst[5] != 0 {
		t.Errorf("decoded %v", dst[:8])
	}
}

// TestDecodeRow checks every implementation's DecodeRow against the
// scalar conversions, bit for bit, on all 65536 half patterns (NaNs
// included) and on random Q8_0 blocks, at lengths with ragged tails.
func TestDecodeRow(t *testing.T) {
	all := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(all[2*i:], uint16(i))
	}
	q8 := make([]byte, 40*q8_0BlockBytes)
	for i := range q8 {
		q8[i] = byte(i*131 + i/7)
	}
	for b := range 40 { // keep the scales finite
		binary.LittleEndian.PutUint16(q8[b*q8_0BlockBytes:], F32ToF16(float32(b-20)/64))
	}
	kq := map[DType][]byte{Q4_K: randKBlocks(Q4_K, 40), Q6_K: randKBlocks(Q6_K, 40), Q5_0: randKBlocks(Q5_0, 320), Q4_0: randKBlocks(Q4_0, 320)}
	forEachImpl(t, func(t *testing.T) {
		for _, dt := range []DType{F16, BF16, F32, Q8_0, Q4_K, Q6_K, Q5_0, Q4_0} {
			src := all
			switch dt {
			case Q8_0:
				src = q8
			case Q4_K, Q6_K, Q5_0, Q4_0:
				src = kq[dt]
			}
			for _, n := range []int{0, 1, 7, 15, 16, 17, 32, 33, 96, 100, 256, 512, 1 << 15} {
				n = n / dt.BlockSize() * dt.BlockSize()
				if need := dt.RowBytes(n); need > len(src) {
					continue
				}
				got, want := make([]float32, n), make([]float32, n)
				DecodeRow(got, dt, src)
				decodeRowGo(want, dt, src)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v n=%d: value %d = %#08x, want %#08x", dt, n, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
			if dt == F16 || dt == BF16 { // the whole table at once
				got, want := make([]float32, 1<<16), make([]float32, 1<<16)
				DecodeRow(got, dt, all)
				decodeRowGo(want, dt, all)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v %#04x = %#08x, want %#08x", dt, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	})
}
