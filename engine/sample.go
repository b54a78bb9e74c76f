package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplingParams are a request's decoding settings, with the semantics of
// the OpenAI API and vLLM. The zero value of every field means "off" (or,
// for Temperature, greedy decoding), so a zero SamplingParams decodes
// greedily with no limit and no penalties.
type SamplingParams struct {
	// Temperature divides the logits before sampling. Values below 1e-5,
	// zero included, select greedy decoding: the token with the highest
	// logit, the lowest id on ties.
	Temperature float32

	// TopK keeps only the TopK most likely tokens; 0 or less is off.
	TopK int

	// TopP keeps the smallest set of most likely tokens whose probability
	// adds up to at least TopP (nucleus sampling); 0 or 1 is off.
	TopP float32

	// MinP keeps the tokens whose probability is at least MinP times that
	// of the most likely token; 0 is off.
	MinP float32

	// RepetitionPenalty scales the logit of every token that appears in
	// the prompt or the generated text, as Hugging Face transformers and
	// llama.cpp do: a positive logit is divided by it, a negative one
	// multiplied. 0 or 1 is off.
	RepetitionPenalty float32

	// FrequencyPenalty is subtracted from a token's logit once for every
	// time the token was generated (the prompt does not count), as in the
	// OpenAI API. It lies in [-2, 2].
	FrequencyPenalty float32

	// PresencePenalty is subtracted from the logit of every token that was
	// generated at least once (the prompt does not count). It lies in
	// [-2, 2].
	PresencePenalty float32

	// Seed seeds the sampler's random numbers: the same seed, parameters,
	// prompt and logits give the same tokens. Callers that want a
	// different sequence every time pick a random seed.
	Seed uint64

	// MaxTokens is the most tokens to generate. The engine enforces it,
	// not the Sampler.
	MaxTokens int

	// Stop lists strings that end generation when they appear in the
	// output; they are not part of the returned text (see StopMatcher).
	Stop []string
}

// ParamError reports an invalid sampling parameter. Param is its name in
// the OpenAI API ("top_p"), so servers can return it as the error's param.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	return "engine: invalid " + e.Param + ": " + e.Reason
}

// Validate reports the first parameter outside its range as a *ParamError.
func (p SamplingParams) Validate() error {
	bad := func(param, format string, args ...any) error {
		return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
	}
	finite := func(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return bad("temperature", "%v must be a non-negative number", p.Temperature)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return bad("top_p", "%v must be in (0, 1] (0 means off)", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("min_p", "%v must be in [0, 1]", p.MinP)
	case !finite(p.RepetitionPenalty) || p.RepetitionPenalty < 0:
		return bad("repetition_penalty", "%v must be a positive number (0 means off)", p.RepetitionPenalty)
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return bad("frequency_penalty", "%v must be in [-2, 2]", p.FrequencyPenalty)
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return bad("presence_penalty", "%v must be in [-2, 2]", p.PresencePenalty)
	case p.MaxTokens < 0:
		return bad("max_tokens", "%d must not be negative", p.MaxTokens)
	}
	for i, s := range p.Stop {
		if s == "" {
			return bad("stop", "stop string %d is empty", i)
		}
	}
	return nil
}

// greedyBelow is the temperature under which sampling is greedy, as in
// vLLM: dividing by a smaller one only risks overflow.
const greedyBelow = 1e-5

// Sampler picks the next token of one sequence from the model's logits.
// It owns the sequence's random number generator (a PCG seeded from
// SamplingParams.Seed), the token counts the penalties need and scratch
// space of 8 bytes per vocabulary entry, allocated by the first call to
// Sample and reused afterwards, so sampling allocates nothing in steady
// state. A Sampler is not safe for concurrent use.
type Sampler struct {
	p   SamplingParams
	rng *rand.Rand

	// counts[id] is 0 for a token neither in the prompt nor generated,
	// otherwise 1 + the number of times it was generated. Nil when no
	// penalty is on.
	counts []int32

	cands []cand // scratch: one entry per vocabulary token
}

// cand is a candidate token: its id and its (penalized, tempered) logit,
// later its unnormalized probability.
type cand struct {
	id int32
	v  float32
}

// NewSampler returns a sampler for a sequence with the given prompt token
// ids, which the repetition penalty counts. p should have passed Validate.
func NewSampler(p SamplingParams, prompt []int) *Sampler {
	s := &Sampler{
		p:   p,
		rng: rand.New(rand.NewPCG(p.Seed, 0x5377697463687961)), // "Switchya"
	}
	if s.penalties() && s.repetition() {
		for _, id := range prompt {
			if id < 0 {
				continue
			}
			s.grow(id + 1)
			if s.counts[id] == 0 {
				s.counts[id] = 1
			}
		}
	}
	return s
}

// repetition reports whether the repetition penalty is on.
func (s *Sampler) repetition() bool {
	return s.p.RepetitionPenalty != 0 && s.p.RepetitionPenalty != 1
}

// penalties reports whether any penalty is on.
func (s *Sampler) penalties() bool {
	return s.repetition() || s.p.FrequencyPenalty != 0 || s.p.PresencePenalty != 0
}

// grow makes counts hold at least n entries.
func (s *Sampler) grow(n int) {
	if n > len(s.counts) {
		s.counts = append(s.counts, make([]int32, n-len(s.counts))...)
	}
}

// Accept records id as generated, for the frequency, presence and
// repetition penalties. Sample calls it for the token it returns; callers
// call it themselves only for tokens they force into the sequence.
// Negative ids are ignored.
func (s *Sampler) Accept(id int) {
	if id < 0 || !s.penalties() {
		return
	}
	s.grow(id + 1)
	if s.counts[id] == 0 {
		s.counts[id] = 1
	}
	s.counts[id]++
}

// penalize returns logit v of token id after the penalties; counts[id]
// must be non-zero.
func (s *Sampler) penalize(id int, v float32) float32 {
	c := s.counts[id]
	if s.repetition() {
		if v > 0 {
			v /= s.p.RepetitionPenalty
		} else {
			v *= s.p.RepetitionPenalty
		}
	}
	if gen := c - 1; gen > 0 {
		v -= float32(gen)*s.p.FrequencyPenalty + s.p.PresencePenalty
	}
	return v
}

// Sample returns the next token id: it applies the penalties, the
// temperature, top-k, top-p and min-p in that order (vLLM's order), draws
// from what is left and records the token with Accept. logits holds one
// value per vocabulary token and is not modified. NaN logits count as
// -Inf; if every logit is -Inf or NaN the result is 0.
func (s *Sampler) Sample(logits []float32) int {
	if s.penalties() {
		s.grow(len(logits))
	}
	var id int
	if s.p.Temperature < greedyBelow {
		id = s.argmax(logits)
	} else {
		id = s.draw(logits)
	}
	s.Accept(id)
	return id
}

// argmax returns the token with the highest penalized logit, the lowest
// id on ties.
func (s *Sampler) argmax(logits []float32) int {
	best, bv := 0, float32(math.Inf(-1))
	pen := s.penalties()
	for i, v := range logits {
		if pen && s.counts[i] != 0 {
			v = s.penalize(i, v)
		}
		if v > bv {
			best, bv = i, v
		}
	}
	return best
}

// draw samples a token with temperature, top-k, top-p and min-p.
func (s *Sampler) draw(logits []float32) int {
	c := s.filter(logits)
	if len(c) == 0 {
		return s.argmax(logits)
	}
	var total float64
	for _, cd := range c {
		total += float64(cd.v)
	}
	u := s.rng.Float64() * total
	last := c[0].id
	for _, cd := range c {
		if cd.v > 0 {
			last = cd.id
			if u -= float64(cd.v); u < 0 {
				return int(cd.id)
			}
		}
	}
	return int(last) // rounding left u just above zero
}

// filter returns the candidates that survive penalties, temperature,
// top-k, top-p and min-p, each with its unnormalized probability
// exp(logit - max logit) in v. The result aliases s.cands and is in no
// particular order unless top-p sorted it.
func (s *Sampler) filter(logits []float32) []cand {
	n := len(logits)
	if cap(s.cands) < n {
		s.cands = make([]cand, n)
	}
	c := s.cands[:0]
	pen := s.penalties()
	temp := s.p.Temperature
	maxv := float32(math.Inf(-1))
	for i, v := range logits {
		if pen && s.counts[i] != 0 {
			v = s.penalize(i, v)
		}
		v /= temp
		switch {
		case v > math.MaxFloat32:
			v = math.MaxFloat32
		case !(v > float32(math.Inf(-1))): // -Inf or NaN: never drawn
			continue
		}
		maxv = max(maxv, v)
		c = append(c, cand{int32(i), v})
	}
	if len(c) == 0 {
		return c
	}

	if k := s.p.TopK; k > 0 && k < len(c) {
		selectTop(c, k)
		c = c[:k]
	}

	// From here on v is the probability relative to the most likely
	// token, which top-k kept.
	var z float64
	for i, cd := range c {
		w := expNeg(cd.v - maxv)
		c[i].v = w
		z += float64(w)
	}

	topP, minP := s.p.TopP, s.p.MinP
	if topP <= 0 || topP >= 1 {
		if minP > 0 {
			c, _ = partition(c, minP)
		}
		return c
	}

	// Top-p keeps a prefix of the candidates sorted by probability, and
	// min-p another; the result is the shorter one. Rather than sort every
	// candidate, find a threshold whose survivors hold the top-p prefix:
	// those at or above it, if they add up to at least topP·z, or the
	// min-p survivors, which then are the shorter prefix.
	target := float64(topP) * z
	for _, t := range [...]float32{1e-2, 1e-4, 1e-6, 0} {
		t = max(t, minP)
		kept, sum := partition(c, t)
		if sum >= target {
			c = kept // the top-p prefix lies within kept
			break
		}
		if t <= minP {
			// The top-p prefix reaches below the min-p threshold, so
			// min-p decides (or, with t == 0, rounding fell short).
			return kept
		}
	}
	slices.SortFunc(c, compareCands)
	var cum float64
	for i, cd := range c {
		cum += float64(cd.v)
		if cum >= target {
			return c[:i+1]
		}
	}
	return c
}

// expNeg returns e^x for x <= 0 in float32 precision (relative error
// about 2e-7), several times faster than math.Exp; e^x below 2^-126 is 0.
// It is Cephes' expf: x = n·ln2 + r with |r| <= ln2/2, and a degree-5
// polynomial for e^r.
func expNeg(x float32) float32 {
	if !(x > -87) { // also NaN
		return 0
	}
	t := x*math.Log2E + 0.5
	n := int32(t)
	if float32(n) > t {
		n-- // floor for negative t
	}
	fn := float32(n)
	x -= fn * 0.693359375
	x -= fn * -2.12194440e-4
	z := x * x
	y := ((((1.9875691500e-4*x+1.3981999507e-3)*x+8.3334519073e-3)*x+4.1665795894e-2)*x+1.6666665459e-1)*x + 5.0000001201e-1
	y = y*z + x + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// partition moves the candidates with v >= t to the front of c and returns
// them with the sum of their v.
func partition(c []cand, t float32) ([]cand, float64) {
	n := 0
	var sum float64
	for i, cd := range c {
		if cd.v >= t {
			c[i], c[n] = c[n], cd
			n++
			sum += float64(cd.v)
		}
	}
	return c[:n], sum
}

// better reports whether a ranks before b: a higher value, or the same
// value and a lower id.
func better(a, b cand) bool {
	return a.v > b.v || a.v == b.v && a.id < b.id
}

// compareCands orders candidates best first, for slices.SortFunc.
func compareCands(a, b cand) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

// selectTop moves the k best candidates of c to c[:k], in no particular
// order, with a heap of size k whose root is the worst of them.
func selectTop(c []cand, k int) {
	h := c[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := k; i < len(c); i++ {
		if better(c[i], h[0]) {
			h[0], c[i] = c[i], h[0]
			siftDown(h, 0)
		}
	}
}

// siftDown restores the heap property below h[i]: every entry ranks after
// (is worse than) its children.
func siftDown(h []cand, i int) {
	for {
		w := i
		if l := 2*i + 1; l < len(h) && better(h[w], h[l]) {
			w = l
		}
		if r := 2*i + 2; r < len(h) && better(h[w], h[r]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// TokenLogprob is a token and its log-probability, as in the OpenAI API's
// top_logprobs.
type TokenLogprob struct {
	ID      int
	Logprob float32
}

// Logprobs writes log-softmax(logits) to dst, which must be at least as
// long as logits. The sum is accumulated in float64.
func Logprobs(logits, dst []float32) {
	lse := logSumExp(logits)
	dst = dst[:len(logits)]
	for i, v := range logits {
		dst[i] = float32(float64(v) - lse)
	}
}

// TopLogprobs returns the k most likely tokens under softmax(logits) with
// their log-probabilities, most likely first and the lowest id first on
// ties. It returns fewer than k when the vocabulary is smaller.
func TopLogprobs(logits []float32, k int) []TokenLogprob {
	k = min(k, len(logits))
	if k <= 0 {
		return nil
	}
	h := make([]cand, 0, k)
	for i, v := range logits {
		cd := cand{int32(i), v}
		if math.IsNaN(float64(v)) {
			cd.v = float32(math.Inf(-1))
		}
		switch {
		case len(h) < k:
			h = append(h, cd)
			if len(h) == k {
				for j := k/2 - 1; j >= 0; j-- {
					siftDown(h, j)
				}
			}
		case better(cd, h[0]):
			h[0] = cd
			siftDown(h, 0)
		}
	}
	slices.SortFunc(h, compareCands)
	lse := logSumExp(logits)
	out := make([]TokenLogprob, len(h))
	for i, cd := range h {
		out[i] = TokenLogprob{ID: int(cd.id), Logprob: float32(float64(cd.v) - lse)}
	}
	return out
}

// logSumExp returns log Σ exp(logits[i]), ignoring NaN.
func logSumExp(logits []float32) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v)) // max propagates NaN: filter below
	}
	if math.IsNaN(m) {
		m = math.Inf(-1)
		for _, v := range logits {
			if f := float64(v); f > m {
				m = f
			}
		}
	}
	if math.IsInf(m, 0) {
		return m
	}
	var sum float64
	for _, v := range logits {
		if f := float64(v); f > math.Inf(-1) {
			sum += math.Exp(f - m)
		}
	}
	return m + math.Log(sum)
}
