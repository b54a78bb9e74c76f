package main

import (
	"encoding/json"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/model"
)

// TestBenchTable runs switchyard bench on a tiny model and checks the
// report has every row of the table with plausible figures.
func TestBenchTable(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the machine (256 MiB read)")
	}
	out, err := cli(t, "bench", "--model", testshared.Path(t, "fixtures", "llama_tiny", "model"),
		"--prompt-tokens", "8", "--decode-steps", "3", "--rank", "4", "--format", "json", "--kv-cache-dtype", "f16")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	if len(rep.Rows) != 10 || rep.StreamGBPerS <= 0 || rep.PeakGFLOPS <= 0 || rep.WeightBytes <= 0 {
		t.Fatalf("report %+v", rep)
	}
	// The read's buffer is in huge pages where the weights can be.
	if thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil && runtime.GOOS == "linux" {
		if want := strings.Contains(string(thp), "[always]") || strings.Contains(string(thp), "[madvise]"); rep.StreamHugePages != want {
			t.Errorf("stream read in huge pages: %v, want %v with transparent huge pages %q", rep.StreamHugePages, want, thp)
		}
	}
	if rep.KVCache != "f16" { // llama_tiny is F32: auto would be f32
		t.Errorf("--kv-cache-dtype f16: the report says %q", rep.KVCache)
	}
	m, err := model.Load(testshared.Path(t, "fixtures", "llama_tiny", "model"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	m.Close()
	if want := int64(2 * c.Layers * c.KVHeads * c.HeadDim * 2); rep.KVBytes != want { // keys and values, 2 bytes each
		t.Errorf("KV bytes per position %d, want %d", rep.KVBytes, want)
	}
	for _, r := range rep.Rows {
		if r.TokPerS <= 0 || r.GBPerS <= 0 || r.GFLOPS <= 0 {
			t.Errorf("row %+v has a non-positive figure", r)
		}
		// Decode steps 0, 1 and 2 attend over 9, 10 and 11 positions of
		// each sequence, against the weights read 3 times in the same time.
		want := 0.0
		if r.Phase == "decode" {
			want = float64(r.Seqs) * 30 * float64(rep.KVBytes) / (3 * float64(rep.WeightBytes))
		}
		if got := r.KVGBPerS / r.GBPerS; math.Abs(got-want) > 1e-9*max(want, 1) {
			t.Errorf("row %+v: KV/weight traffic %g, want %g", r, got, want)
		}
	}
	// Decode and the read in turn: 8 pairs per rep, 3 steps each over 9,
	// 10 and 11 positions.
	in := rep.InTurn
	if in.Pairs != 24 || in.Steps != 3 || !(in.WeightShare > 0) {
		t.Errorf("in turn: %+v, want 24 pairs of 3 steps", in)
	}
	if want := 1 + 30*float64(rep.KVBytes)/(3*float64(rep.WeightBytes)); math.Abs(in.WithKVShare/in.WeightShare-want) > 1e-9*want {
		t.Errorf("in turn: with KV %g of weights alone, want %g", in.WithKVShare/in.WeightShare, want)
	}
	// 8 sequences on distinct adapters against the base, in turn: 8
	// pairs per rep of 3 steps each. The adapters add work, so they run
	// slower than the base, but not by 5x.
	if d := rep.Distinct; d.Pairs != 24 || d.Steps != 3 || !(d.Ratio > 0.2 && d.Ratio < 1.5) {
		t.Errorf("distinct adapters in turn with the base: %+v, want 24 pairs of 3 steps and a ratio near 1", d)
	}
	if _, err := cli(t, "bench", "--decode-steps", "0"); err == nil {
		t.Error("--decode-steps 0 accepted")
	}
}
