package kernels

import "testing"

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
}
