package engine

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestStopMatcher(t *testing.T) {
	tests := []struct {
		name    string
		stops   []string
		pushes  []string
		emits   []string // what each Push returns
		stopped bool     // whether the last Push reports a stop
		flush   string
	}{
		{
			name:   "no stops",
			pushes: []string{"hello", " ", "world"},
			emits:  []string{"hello", " ", "world"},
		},
		{
			name:   "empty stop strings are ignored",
			stops:  []string{""},
			pushes: []string{"abc"},
			emits:  []string{"abc"},
		},
		{
			name:   "no match",
			stops:  []string{"STOP"},
			pushes: []string{"hello", " world"},
			emits:  []string{"hello", " world"},
		},
		{
			name:    "stop inside one push",
			stops:   []string{"STOP"},
			pushes:  []string{"helloSTOPworld"},
			emits:   []string{"hello"},
			stopped: true,
		},
		{
			name:    "stop split across many pushes",
			stops:   []string{"STOP"},
			pushes:  []string{"ab", "S", "T", "O", "P", "more"},
			emits:   []string{"ab", "", "", "", "", ""},
			stopped: true,
		},
		{
			name:   "false start is released",
			stops:  []string{"STOP"},
			pushes: []string{"aST", "Ox", "y"},
			emits:  []string{"a", "STOx", "y"},
		},
		{
			name:   "false start re-anchors",
			stops:  []string{"aab"},
			pushes: []string{"a", "a", "a", "c"},
			emits:  []string{"", "", "a", "aac"},
		},
		{
			name:    "false start re-anchors then stops",
			stops:   []string{"aab"},
			pushes:  []string{"a", "a", "a", "b"},
			emits:   []string{"", "", "a", ""},
			stopped: true,
		},
		{
			name:   "held text is flushed at the end",
			stops:  []string{"STOP"},
			pushes: []string{"done ST"},
			emits:  []string{"done "},
			flush:  "ST",
		},
		{
			name:    "stop at the very start",
			stops:   []string{"STOP"},
			pushes:  []string{"STOP and more"},
			emits:   []string{""},
			stopped: true,
		},
		{
			name:    "stop is the whole first token",
			stops:   []string{"\n"},
			pushes:  []string{"\n", "x"},
			emits:   []string{"", ""},
			stopped: true,
		},
		{
			name:    "overlapping prefixes: shorter completes first",
			stops:   []string{"abc", "ab"},
			pushes:  []string{"x", "a", "b", "c"},
			emits:   []string{"x", "", ""},
			stopped: true,
		},
		{
			name:    "overlapping prefixes: both in one push, same start",
			stops:   []string{"abc", "ab"},
			pushes:  []string{"xabcd"},
			emits:   []string{"x"},
			stopped: true,
		},
		{
			name:    "earliest start wins within a push",
			stops:   []string{"cd", "abcde"},
			pushes:  []string{"ab", "cdef"},
			emits:   []string{"", ""},
			stopped: true,
		},
		{
			name:    "later stop completing first wins across pushes",
			stops:   []string{"abcde", "c"},
			pushes:  []string{"ab", "c", "de"},
			emits:   []string{"", "ab"},
			stopped: true,
		},
		{
			name:    "longest held prefix across stops",
			stops:   []string{"xyz", "yzw"},
			pushes:  []string{"1xy", "zz"},
			emits:   []string{"1", ""},
			stopped: true,
		},
		{
			name:    "unicode stop split by runes",
			stops:   []string{"終わり"},
			pushes:  []string{"これで", "終", "わ", "り", "です"},
			emits:   []string{"これで", "", "", ""},
			stopped: true,
		},
		{
			name:    "unicode stop split inside runes",
			stops:   []string{"é!"},
			pushes:  []string{"caf\xc3", "\xa9", "!"},
			emits:   []string{"caf", "", ""},
			stopped: true,
		},
		{
			name:   "unicode false start",
			stops:  []string{"éa"},
			pushes: []string{"é", "b", "ñ"},
			emits:  []string{"", "éb", "ñ"},
		},
		{
			name:   "emoji held then flushed",
			stops:  []string{"🙂🙃"},
			pushes: []string{"hi 🙂"},
			emits:  []string{"hi "},
			flush:  "🙂",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewStopMatcher(tt.stops)
			var emits []string
			stopped := false
			for i, p := range tt.pushes {
				e, s := m.Push(p)
				emits = append(emits, e)
				if s && i != len(tt.pushes)-1 && !tt.stopped {
					t.Fatalf("Push(%q) stopped, want no stop", p)
				}
				if stopped && (e != "" || !s) {
					t.Fatalf("Push(%q) after a stop = %q, %v; want \"\", true", p, e, s)
				}
				stopped = stopped || s
			}
			if stopped != tt.stopped {
				t.Errorf("stopped = %v, want %v", stopped, tt.stopped)
			}
			if m.Stopped() != tt.stopped {
				t.Errorf("Stopped() = %v, want %v", m.Stopped(), tt.stopped)
			}
			if tt.stopped {
				emits = emits[:len(tt.emits)] // pushes after the stop are checked above
			}
			if !slices.Equal(emits, tt.emits) {
				t.Errorf("Push results %q, want %q", emits, tt.emits)
			}
			if f := m.Flush(); f != tt.flush {
				t.Errorf("Flush() = %q, want %q", f, tt.flush)
			}
		})
	}
}

// TestStopMatcherRandom compares streamed output, over random texts,
// stops and splits, with cutting the whole text at once: the stream stops
// at the first push after which the text holds a stop string, cut at the
// earliest start of one, and what was emitted is never taken back.
func TestStopMatcherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "c", "é"}
	randText := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	for iter := range 5000 {
		stops := make([]string, 1+r.IntN(3))
		for i := range stops {
			stops[i] = randText(1 + r.IntN(4))
		}
		var pushes []string
		for range r.IntN(8) {
			pushes = append(pushes, randText(r.IntN(4)))
		}

		// Reference.
		want, wantStop := strings.Join(pushes, ""), false
		var total string
		for _, p := range pushes {
			total += p
			first := -1
			for _, s := range stops {
				if i := strings.Index(total, s); i >= 0 && (first < 0 || i < first) {
					first = i
				}
			}
			if first >= 0 {
				want, wantStop = total[:first], true
				break
			}
		}

		m := NewStopMatcher(stops)
		var got string
		stopped := false
		for _, p := range pushes {
			e, s := m.Push(p)
			got += e
			if !strings.HasPrefix(want, got) {
				t.Fatalf("iter %d: stops %q pushes %q: emitted %q, not a prefix of %q", iter, stops, pushes, got, want)
			}
			stopped = s
		}
		got += m.Flush()
		if got != want || stopped != wantStop {
			t.Fatalf("iter %d: stops %q pushes %q: got %q, %v; want %q, %v", iter, stops, pushes, got, stopped, want, wantStop)
		}
	}
}
