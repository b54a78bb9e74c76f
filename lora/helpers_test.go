package lora

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// fixturesDir returns the shared fixtures directory: $SWITCHYARD_SHARED or
// ../../shared from this package, plus "fixtures".
func fixturesDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("SWITCHYARD_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	dir = filepath.Join(dir, "fixtures")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("shared fixtures missing (set SWITCHYARD_SHARED): %v", err)
	}
	return dir
}

// fixtureCases are the inference fixtures with adapters.
var fixtureCases = []string{"llama_tiny", "llama3_rope", "qwen2_tiny", "stories260K_hf"}

// expectedAdapter is one adapter entry of a fixture's expected.json.
type expectedAdapter struct {
	Dir     string             `json:"dir"`
	DType   string             `json:"dtype"`
	Scaling map[string]float64 `json:"scaling_per_module"`
}

func readExpected(tb testing.TB, fixture string) map[string]expectedAdapter {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixturesDir(tb), fixture, "expected.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var exp struct {
		Adapters map[string]expectedAdapter `json:"adapters"`
	}
	if err := json.Unmarshal(data, &exp); err != nil {
		tb.Fatal(err)
	}
	if len(exp.Adapters) == 0 {
		tb.Fatalf("%s/expected.json lists no adapters", fixture)
	}
	return exp.Adapters
}

func readConfig(tb testing.TB, fixture string) *model.Config {
	tb.Helper()
	cfg, err := model.ReadHFConfig(filepath.Join(fixturesDir(tb), fixture, "model"))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func loadFixture(tb testing.TB, fixture, adapter string) (*Adapter, *model.Config) {
	tb.Helper()
	cfg := readConfig(tb, fixture)
	a, err := LoadPEFT(filepath.Join(fixturesDir(tb), fixture, "adapters", adapter), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a, cfg
}

// refPair is a projection's LoRA weights read straight from the PEFT file
// in float64: A [r][in], B [out][r].
type refPair struct {
	a, b  [][]float64
	scale float64
}

// readRefPairs reads every lora_A/lora_B of a PEFT adapter, independently
// of the loader, keyed by layer and module.
func readRefPairs(tb testing.TB, dir string, cfg *model.Config, scaling map[string]float64) map[[2]int]*refPair {
	tb.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	refs := map[[2]int]*refPair{}
	for i := range cfg.Layers {
		for m := range model.NumModules {
			name := moduleName(i, m)
			s, ok := scaling[name]
			if !ok {
				continue
			}
			refs[[2]int{i, int(m)}] = &refPair{
				a:     readMatrix64(tb, f, "base_model.model."+name+".lora_A.weight"),
				b:     readMatrix64(tb, f, "base_model.model."+name+".lora_B.weight"),
				scale: s,
			}
		}
	}
	return refs
}

func readMatrix64(tb testing.TB, f *safetensors.File, name string) [][]float64 {
	tb.Helper()
	t, err := f.Tensor(name)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := t.Matrix()
	if err != nil {
		tb.Fatal(err)
	}
	return matrix64(m)
}

// matrix64 decodes any matrix to float64 rows.
func matrix64(m kernels.Matrix) [][]float64 {
	out := make([][]float64, m.Rows)
	row := make([]float32, m.Cols)
	for r := range m.Rows {
		m.Row(r, row)
		out[r] = make([]float64, m.Cols)
		for c, v := range row {
			out[r][c] = float64(v)
		}
	}
	return out
}

// transpose64 returns the transpose of a [rows][cols] matrix.
func transpose64(m [][]float64) [][]float64 {
	if len(m) == 0 {
		return nil
	}
	t := make([][]float64, len(m[0]))
	for c := range t {
		t[c] = make([]float64, len(m))
		for r := range m {
			t[c][r] = m[r][c]
		}
	}
	return t
}

// randomMatrix returns a rows x cols matrix of dtype dt with values in
// [-scale, scale).
func randomMatrix(rng *rand.Rand, dt kernels.DType, rows, cols int, scale float32) kernels.Matrix {
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = (2*rng.Float32() - 1) * scale
	}
	return kernels.Matrix{DType: dt, Rows: rows, Cols: cols, Data: kernels.EncodeRow(nil, dt, v)}
}

func randomVector(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	return v
}
