package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name  string
		p     SamplingParams
		param string // "" for valid
	}{
		{"zero", SamplingParams{}, ""},
		{"typical", SamplingParams{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.1,
			FrequencyPenalty: 0.5, PresencePenalty: -0.5, MaxTokens: 100, Stop: []string{"\n\n"}}, ""},
		{"top_k -1 is off", SamplingParams{TopK: -1}, ""},
		{"top_p 1", SamplingParams{TopP: 1}, ""},
		{"negative temperature", SamplingParams{Temperature: -0.1}, "temperature"},
		{"NaN temperature", SamplingParams{Temperature: nan}, "temperature"},
		{"infinite temperature", SamplingParams{Temperature: float32(math.Inf(1))}, "temperature"},
		{"top_p above 1", SamplingParams{TopP: 1.5}, "top_p"},
		{"negative top_p", SamplingParams{TopP: -0.5}, "top_p"},
		{"NaN top_p", SamplingParams{TopP: nan}, "top_p"},
		{"min_p above 1", SamplingParams{MinP: 2}, "min_p"},
		{"negative repetition_penalty", SamplingParams{RepetitionPenalty: -1}, "repetition_penalty"},
		{"frequency_penalty above 2", SamplingParams{FrequencyPenalty: 2.5}, "frequency_penalty"},
		{"presence_penalty below -2", SamplingParams{PresencePenalty: -3}, "presence_penalty"},
		{"negative max_tokens", SamplingParams{MaxTokens: -1}, "max_tokens"},
		{"empty stop", SamplingParams{Stop: []string{"a", ""}}, "stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.param == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate() = %v, want a *ParamError for %s", err, tt.param)
			}
			if pe.Param != tt.param {
				t.Errorf("Validate() blames %q, want %q (%v)", pe.Param, tt.param, err)
			}
		})
	}
}

// randomLogits returns n logits drawn from N(0, scale²).
func randomLogits(n int, scale float64, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

// refArgmax is the plain argmax: highest value, lowest index on ties.
func refArgmax(l []float32) int {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return best
}

func TestGreedy(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name   string
		logits []float32
		want   int
	}{
		{"single", []float32{3}, 0},
		{"max in middle", []float32{1, 5, 2}, 1},
		{"ties take the lowest id", []float32{1, 7, 3, 7, 7}, 1},
		{"negative", []float32{-5, -2, -3}, 1},
		{"NaN is skipped", []float32{nan, 1, 2}, 2},
		{"+Inf wins", []float32{1, inf, 2}, 1},
		{"all -Inf", []float32{-inf, -inf}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, temp := range []float32{0, 1e-6} {
				s := NewSampler(SamplingParams{Temperature: temp}, nil)
				if got := s.Sample(tt.logits); got != tt.want {
					t.Errorf("temperature %v: Sample = %d, want %d", temp, got, tt.want)
				}
			}
		})
	}
	for seed := range uint64(20) {
		l := randomLogits(1000, 3, seed)
		s := NewSampler(SamplingParams{}, nil)
		if got, want := s.Sample(l), refArgmax(l); got != want {
			t.Errorf("random logits %d: Sample = %d, want argmax %d", seed, got, want)
		}
	}
}

func TestTopKOneIsGreedy(t *testing.T) {
	s := NewSampler(SamplingParams{Temperature: 1.5, TopK: 1, Seed: 7}, nil)
	for seed := range uint64(50) {
		l := randomLogits(500, 2, seed)
		if seed%5 == 0 { // a tie at the top: the lowest id wins
			l[400] = l[refArgmax(l)]
		}
		if got, want := s.Sample(l), refArgmax(l); got != want {
			t.Errorf("logits %d: Sample = %d, want argmax %d", seed, got, want)
		}
	}
}

// softmax returns softmax(logits/temp) in float64.
func softmax(logits []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v)/temp)
	}
	p := make([]float64, len(logits))
	var z float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v)/temp - m)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

// chiSquare draws n tokens and returns Pearson's statistic against the
// expected probabilities want (zero entries must never be drawn) and the
// degrees of freedom.
func chiSquare(t *testing.T, s *Sampler, logits []float32, want []float64, n int) (float64, int) {
	t.Helper()
	counts := make([]int, len(logits))
	for range n {
		counts[s.Sample(logits)]++
	}
	var chi2 float64
	df := -1
	for i, c := range counts {
		if want[i] == 0 {
			if c != 0 {
				t.Errorf("token %d drawn %d times, want never", i, c)
			}
			continue
		}
		e := want[i] * float64(n)
		chi2 += (float64(c) - e) * (float64(c) - e) / e
		df++
	}
	return chi2, df
}

// chi2Critical999 holds the 99.9th percentile of the chi-square
// distribution by degrees of freedom.
var chi2Critical999 = map[int]float64{1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}

func TestTemperatureDistribution(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 3, 0, 1.5, -0.5}
	for _, temp := range []float32{0.5, 1, 2} {
		s := NewSampler(SamplingParams{Temperature: temp, Seed: 42}, nil)
		want := softmax(logits, float64(temp))
		chi2, df := chiSquare(t, s, logits, want, 200000)
		if chi2 > chi2Critical999[df] {
			t.Errorf("temperature %v: chi-square %.2f with %d degrees of freedom, want <= %.2f",
				temp, chi2, df, chi2Critical999[df])
		}
	}
}

// logitsOf returns log(p) for the given probabilities.
func logitsOf(p ...float64) []float32 {
	l := make([]float32, len(p))
	for i, v := range p {
		l[i] = float32(math.Log(v))
	}
	return l
}

func TestFilter(t *testing.T) {
	probs := []float64{0.05, 0.5, 0.15, 0.3} // sorted: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
	tests := []struct {
		name string
		p    SamplingParams
		want []int // surviving ids
	}{
		{"no filter", SamplingParams{}, []int{0, 1, 2, 3}},
		{"top_k 1", SamplingParams{TopK: 1}, []int{1}},
		{"top_k 2", SamplingParams{TopK: 2}, []int{1, 3}},
		{"top_k 3", SamplingParams{TopK: 3}, []int{1, 2, 3}},
		{"top_k beyond vocab", SamplingParams{TopK: 10}, []int{0, 1, 2, 3}},
		{"top_p 0.4", SamplingParams{TopP: 0.4}, []int{1}},
		{"top_p 0.49", SamplingParams{TopP: 0.49}, []int{1}},
		{"top_p 0.75", SamplingParams{TopP: 0.75}, []int{1, 3}},
		{"top_p 0.85", SamplingParams{TopP: 0.85}, []int{1, 2, 3}},
		{"top_p 0.99", SamplingParams{TopP: 0.99}, []int{0, 1, 2, 3}},
		// Top-p on the top-k survivors renormalized: 0.5/0.8 = 0.625.
		{"top_k 2 then top_p 0.6", SamplingParams{TopK: 2, TopP: 0.6}, []int{1}},
		{"top_k 2 then top_p 0.7", SamplingParams{TopK: 2, TopP: 0.7}, []int{1, 3}},
		{"min_p 0.2", SamplingParams{MinP: 0.2}, []int{1, 2, 3}}, // 0.15 >= 0.1
		{"min_p 0.31", SamplingParams{MinP: 0.31}, []int{1, 3}},  // 0.155 > 0.15
		{"min_p 0.5", SamplingParams{MinP: 0.5}, []int{1, 3}},
		{"min_p 1", SamplingParams{MinP: 1}, []int{1}},
		{"top_p 0.85 then min_p 0.5", SamplingParams{TopP: 0.85, MinP: 0.5}, []int{1, 3}},
		{"top_p 0.75 then min_p 0.2", SamplingParams{TopP: 0.75, MinP: 0.2}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Temperature = 1
			s := NewSampler(tt.p, nil)
			c := s.filter(logitsOf(probs...))
			var got []int
			var z float64
			for _, cd := range c {
				got = append(got, int(cd.id))
				z += float64(cd.v)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("survivors %v, want %v", got, tt.want)
			}
			// The survivors keep their relative probabilities.
			var zw float64
			for _, id := range tt.want {
				zw += probs[id]
			}
			for _, cd := range c {
				if got, want := float64(cd.v)/z, probs[cd.id]/zw; math.Abs(got-want) > 1e-6 {
					t.Errorf("token %d: probability %v, want %v", cd.id, got, want)
				}
			}
		})
	}
}

// TestTopPLargeVocab checks the thresholded top-p search against a plain
// sort of the whole vocabulary, on peaked and flat distributions.
func TestTopPLargeVocab(t *testing.T) {
	for _, scale := range []float64{0.01, 0.5, 2, 6} {
		for _, topP := range []float32{0.1, 0.5, 0.9, 0.95, 0.999} {
			for _, minP := range []float32{0, 1e-5, 0.05} {
				logits := randomLogits(5000, scale, uint64(scale*100))
				s := NewSampler(SamplingParams{Temperature: 0.8, TopP: topP, MinP: minP}, nil)
				got := map[int32]bool{}
				for _, cd := range s.filter(logits) {
					got[cd.id] = true
				}

				// Reference: sort all, take the smallest prefix reaching
				// topP, then drop what min-p drops.
				p := softmax(logits, 0.8)
				ids := make([]int, len(p))
				for i := range ids {
					ids[i] = i
				}
				slices.SortStableFunc(ids, func(a, b int) int {
					switch {
					case p[a] > p[b]:
						return -1
					case p[a] < p[b]:
						return 1
					}
					return 0
				})
				want := map[int32]bool{}
				var cum float64
				for _, id := range ids {
					if p[id] >= float64(minP)*p[ids[0]] {
						want[int32(id)] = true
					}
					if cum += p[id]; cum >= float64(topP) {
						break
					}
				}
				// Rounding may move the boundary by a token whose
				// probability is tiny; require near-equality.
				diff := 0
				for id := range got {
					if !want[id] {
						diff++
					}
				}
				for id := range want {
					if !got[id] {
						diff++
					}
				}
				if diff > 1 || len(got) == 0 {
					t.Errorf("scale %v top_p %v min_p %v: %d survivors, want %d (%d differ)",
						scale, topP, minP, len(got), len(want), diff)
				}
			}
		}
	}
}

func TestTopPDistribution(t *testing.T) {
	probs := []float64{0.05, 0.4, 0.1, 0.25, 0.2}
	logits := logitsOf(probs...)
	s := NewSampler(SamplingParams{Temperature: 1, TopP: 0.8, Seed: 3}, nil)
	// Kept: 0.4 + 0.25 + 0.2 = 0.85 >= 0.8.
	want := []float64{0, 0.4 / 0.85, 0, 0.25 / 0.85, 0.2 / 0.85}
	chi2, df := chiSquare(t, s, logits, want, 100000)
	if chi2 > chi2Critical999[df] {
		t.Errorf("chi-square %.2f with %d degrees of freedom, want <= %.2f", chi2, df, chi2Critical999[df])
	}
}

func TestExpNeg(t *testing.T) {
	for x := float32(0); x > -90; x -= 0.0137 {
		got, want := float64(expNeg(x)), math.Exp(float64(x))
		if x <= -87 {
			want = 0
		}
		if math.Abs(got-want) > 4e-7*want {
			t.Fatalf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float32{float32(math.Inf(-1)), float32(math.NaN()), -1e30} {
		if got := expNeg(x); got != 0 {
			t.Errorf("expNeg(%v) = %v, want 0", x, got)
		}
	}
	if got := expNeg(0); got != 1 {
		t.Errorf("expNeg(0) = %v, want 1", got)
	}
}

func TestPenalties(t *testing.T) {
	logits := []float32{1, 2, -1, 4, 0.5}
	tests := []struct {
		name string
		p    SamplingParams
		want []float32
	}{
		// Prompt [1 2], generated [2 3 3].
		{"repetition", SamplingParams{RepetitionPenalty: 2},
			[]float32{1, 1, -2, 2, 0.5}},
		{"frequency", SamplingParams{FrequencyPenalty: 0.5},
			[]float32{1, 2, -1.5, 3, 0.5}},
		{"presence", SamplingParams{PresencePenalty: 0.25},
			[]float32{1, 2, -1.25, 3.75, 0.5}},
		{"negative frequency and presence", SamplingParams{FrequencyPenalty: -1, PresencePenalty: -0.5},
			[]float32{1, 2, 0.5, 6.5, 0.5}},
		{"all", SamplingParams{RepetitionPenalty: 2, FrequencyPenalty: 0.5, PresencePenalty: 0.25},
			[]float32{1, 1, -2.75, 0.75, 0.5}},
		{"repetition below 1 boosts", SamplingParams{RepetitionPenalty: 0.5},
			[]float32{1, 4, -0.5, 8, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(tt.p, []int{1, 2})
			for _, id := range []int{2, 3, 3} {
				s.Accept(id)
			}
			s.grow(len(logits))
			got := make([]float32, len(logits))
			for i, v := range logits {
				if s.counts[i] != 0 {
					v = s.penalize(i, v)
				}
				got[i] = v
			}
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Fatalf("penalized logits %v, want %v", got, tt.want)
				}
			}
			// Greedy sampling sees the same values.
			s.p.Temperature = 0
			if got, want := s.argmax(logits), refArgmax(tt.want); got != want {
				t.Errorf("greedy pick %d, want %d", got, want)
			}
		})
	}
}

func TestPenaltiesChangeSample(t *testing.T) {
	// Greedy with a frequency penalty alternates between two near-equal
	// tokens instead of repeating one.
	logits := []float32{0, 3, 2.9, 0}
	s := NewSampler(SamplingParams{FrequencyPenalty: 0.5}, []int{1})
	var got []int
	for range 4 {
		got = append(got, s.Sample(logits))
	}
	if want := []int{1, 2, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("Sample sequence %v, want %v", got, want)
	}

	// The repetition penalty counts the prompt; presence does not.
	s = NewSampler(SamplingParams{RepetitionPenalty: 2}, []int{1})
	if got := s.Sample(logits); got != 2 {
		t.Errorf("with token 1 in the prompt: Sample = %d, want 2", got)
	}
	s = NewSampler(SamplingParams{PresencePenalty: 2}, []int{1})
	if got := s.Sample(logits); got != 1 {
		t.Errorf("presence penalty with token 1 only in the prompt: Sample = %d, want 1", got)
	}
}

func TestSampleKeepsLogits(t *testing.T) {
	logits := randomLogits(1000, 2, 1)
	orig := slices.Clone(logits)
	s := NewSampler(SamplingParams{Temperature: 0.7, TopK: 50, TopP: 0.9, MinP: 0.01,
		RepetitionPenalty: 1.3, FrequencyPenalty: 1, PresencePenalty: 1}, []int{1, 2, 3})
	for range 20 {
		s.Sample(logits)
	}
	if !slices.Equal(logits, orig) {
		t.Error("Sample modified the caller's logits")
	}
}

func sampleSeq(p SamplingParams, n int) []int {
	s := NewSampler(p, []int{5, 6, 7})
	out := make([]int, n)
	for i := range out {
		out[i] = s.Sample(randomLogits(300, 1.5, uint64(i)))
	}
	return out
}

func TestSeed(t *testing.T) {
	for _, p := range []SamplingParams{
		{Temperature: 1},
		{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.02, RepetitionPenalty: 1.2, FrequencyPenalty: 0.3},
	} {
		p.Seed = 1234
		a, b := sampleSeq(p, 100), sampleSeq(p, 100)
		if !slices.Equal(a, b) {
			t.Errorf("%+v: same seed gave different sequences\n%v\n%v", p, a, b)
		}
		p.Seed = 1235
		if c := sampleSeq(p, 100); slices.Equal(a, c) {
			t.Errorf("%+v: seeds 1234 and 1235 gave the same sequence", p)
		}
	}
}

func TestSampleAllocs(t *testing.T) {
	logits := randomLogits(49152, 3, 9)
	for _, p := range []SamplingParams{
		{},
		{RepetitionPenalty: 1.1},
		{Temperature: 1},
		{Temperature: 0.7, TopK: 40},
		{Temperature: 0.7, TopP: 0.9},
		{Temperature: 0.7, MinP: 0.05},
		{Temperature: 0.7, TopK: 50, TopP: 0.95, MinP: 0.05, RepetitionPenalty: 1.1, FrequencyPenalty: 0.5, PresencePenalty: 0.5},
	} {
		s := NewSampler(p, []int{1, 2, 3, 100, 49151})
		s.Sample(logits) // warm-up: scratch and counts
		if n := testing.AllocsPerRun(50, func() { s.Sample(logits) }); n != 0 {
			t.Errorf("%+v: %v allocations per Sample, want 0", p, n)
		}
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 3}
	dst := make([]float32, len(logits))
	Logprobs(logits, dst)
	p := softmax(logits, 1)
	for i := range dst {
		if want := math.Log(p[i]); math.Abs(float64(dst[i])-want) > 1e-6 {
			t.Errorf("Logprobs[%d] = %v, want %v", i, dst[i], want)
		}
	}

	top := TopLogprobs([]float32{1, 3, 2, 3, -1}, 3)
	wantIDs := []int{1, 3, 2} // the tie at 3 goes to the lower id first
	p = softmax([]float32{1, 3, 2, 3, -1}, 1)
	if len(top) != len(wantIDs) {
		t.Fatalf("TopLogprobs returned %d entries, want %d", len(top), len(wantIDs))
	}
	for i, tl := range top {
		if tl.ID != wantIDs[i] {
			t.Errorf("TopLogprobs[%d].ID = %d, want %d", i, tl.ID, wantIDs[i])
		}
		if want := math.Log(p[tl.ID]); math.Abs(float64(tl.Logprob)-want) > 1e-6 {
			t.Errorf("TopLogprobs[%d].Logprob = %v, want %v", i, tl.Logprob, want)
		}
	}
	if got := TopLogprobs([]float32{1, 2}, 5); len(got) != 2 {
		t.Errorf("TopLogprobs of 2 logits with k=5 returned %d entries, want 2", len(got))
	}
	if got := TopLogprobs([]float32{1, 2}, 0); got != nil {
		t.Errorf("TopLogprobs with k=0 = %v, want nil", got)
	}
}

func BenchmarkSample(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    SamplingParams
	}{
		{"greedy", SamplingParams{}},
		{"temperature", SamplingParams{Temperature: 0.8}},
		{"top_k", SamplingParams{Temperature: 0.8, TopK: 40}},
		{"top_p", SamplingParams{Temperature: 0.8, TopP: 0.95}},
		{"all", SamplingParams{Temperature: 0.8, TopK: 50, TopP: 0.95, MinP: 0.05, RepetitionPenalty: 1.1, FrequencyPenalty: 0.2}},
	} {
		for _, vocab := range []int{49152, 128256} {
			logits := randomLogits(vocab, 3, 1)
			b.Run(bc.name+"/"+strconv.Itoa(vocab), func(b *testing.B) {
				s := NewSampler(bc.p, []int{1, 2, 3})
				for b.Loop() {
					s.Sample(logits)
				}
			})
		}
	}
}
