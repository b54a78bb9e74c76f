package lora

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// ggufTensor is one tensor for writeGGUF.
type ggufTensor struct {
	name  string
	dt    kernels.DType
	shape []int // row-major
	data  []byte
}

// writeGGUF writes a LoRA adapter GGUF with the given metadata and tensors
// as convert_lora_to_gguf.py lays it out.
func writeGGUF(t *testing.T, path, arch string, alpha float32, meta map[string]string, tensors []ggufTensor) {
	t.Helper()
	w := gguf.NewWriter()
	w.AddString("general.architecture", arch)
	w.AddString("general.type", "adapter")
	w.AddString("adapter.type", "lora")
	for k, v := range meta {
		w.AddString(k, v)
	}
	if alpha != 0 {
		w.AddFloat32("adapter.lora.alpha", alpha)
	}
	for _, tt := range tensors {
		if err := w.AddTensor(tt.name, tt.dt, tt.shape, tt.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// permuteRows reorders the rows of a q/k projection (or its lora_B) from
// Hugging Face's rotate_half order to GGUF's interleaved order as
// llama.cpp's converter does: HF row h*hd + i*hd/2 + j goes to GGUF row
// h*hd + 2j + i.
func permuteRows(src []byte, heads, hd, rowBytes int) []byte {
	dst := make([]byte, len(src))
	for h := range heads {
		for i := range 2 {
			for j := range hd / 2 {
				from := h*hd + i*hd/2 + j
				to := h*hd + 2*j + i
				copy(dst[to*rowBytes:(to+1)*rowBytes], src[from*rowBytes:(from+1)*rowBytes])
			}
		}
	}
	return dst
}

// ggufFromAdapter converts a loaded PEFT adapter into llama.cpp's GGUF
// tensors: lora_a = A ([r, in]), lora_b = BTᵀ ([out, r]), with the q/k
// lora_b rows permuted when permute is set.
func ggufFromAdapter(a *Adapter, cfg *model.Config, permute bool) []ggufTensor {
	var ts []ggufTensor
	for i, l := range a.Layers {
		for m, p := range l {
			if p == nil {
				continue
			}
			mod := model.Module(m)
			name := fmt.Sprintf("blk.%d.%s.weight", i, mod.GGUFName())
			es := elemSize(p.BT.DType)
			b := make([]byte, len(p.BT.Data))
			transpose(b, p.BT.Data, p.BT.Rows, p.BT.Cols, es) // [r, out] -> [out, r]
			if permute && (mod == model.ModQ || mod == model.ModK) {
				heads := cfg.Heads
				if mod == model.ModK {
					heads = cfg.KVHeads
				}
				b = permuteRows(b, heads, cfg.HeadDim, p.Rank*es)
			}
			ts = append(ts,
				ggufTensor{name + ".lora_a", p.A.DType, []int{p.Rank, p.A.Cols}, bytes.Clone(p.A.Data)},
				ggufTensor{name + ".lora_b", p.BT.DType, []int{p.BT.Cols, p.Rank}, b})
		}
	}
	return ts
}

// TestGGUFRoundTrip writes fixture adapters as llama.cpp's converter would
// (q/k lora_b rows permuted for Llama, not for Qwen2) and checks that
// LoadGGUF gives back exactly the PEFT pairs, with llama.cpp's scale
// alpha/r.
func TestGGUFRoundTrip(t *testing.T) {
	tests := []struct {
		fixture, adapter, arch string
		alpha                  float32
	}{
		{"llama_tiny", "r8_qv", "llama", 16},
		{"llama_tiny", "r16_qkvo_patterns", "llama", 32},
		{"llama3_rope", "r8_qv", "llama", 16},        // BF16
		{"llama3_rope", "r4_all_rslora", "llama", 8}, // F16
		{"stories260K_hf", "r8_qv", "llama", 16},     // head_dim 8
		{"qwen2_tiny", "r8_all", "qwen2", 16},        // not permuted
		{"llama_tiny", "r8_qv", "llama", 0},          // no alpha: scale 1
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/alpha=%v", tt.fixture, tt.adapter, tt.alpha), func(t *testing.T) {
			want, cfg := loadFixture(t, tt.fixture, tt.adapter)
			path := filepath.Join(t.TempDir(), tt.adapter+".gguf")
			writeGGUF(t, path, tt.arch, tt.alpha, nil, ggufFromAdapter(want, cfg, tt.arch == "llama"))
			got, err := Load(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config != nil || got.Name != tt.adapter || got.MaxRank != want.MaxRank || got.Bytes != want.Bytes {
				t.Errorf("Config %v Name %q MaxRank %d Bytes %d; want nil, %q, %d, %d", got.Config, got.Name, got.MaxRank, got.Bytes, tt.adapter, want.MaxRank, want.Bytes)
			}
			for i := range cfg.Layers {
				for m := range model.NumModules {
					g, w := got.Pair(i, m), want.Pair(i, m)
					if (g == nil) != (w == nil) {
						t.Fatalf("layer %d %v: present %v, want %v", i, m, g != nil, w != nil)
					}
					if g == nil {
						continue
					}
					if g.Rank != w.Rank || g.A.DType != w.A.DType || g.BT.DType != w.BT.DType ||
						!bytes.Equal(g.A.Data, w.A.Data) || !bytes.Equal(g.BT.Data, w.BT.Data) {
						t.Errorf("layer %d %v: pair differs from the PEFT one", i, m)
					}
					scale := float32(1)
					if tt.alpha != 0 {
						scale = tt.alpha / float32(g.Rank)
					}
					if g.Scale != scale {
						t.Errorf("layer %d %v: scale %v, want %v", i, m, g.Scale, scale)
					}
				}
			}
		})
	}
}

// TestGGUFUnpermutes checks that the q/k unpermutation is really applied:
// a Llama file written without the converter's permutation loads with BT
// rows out of place.
func TestGGUFUnpermutes(t *testing.T) {
	want, cfg := loadFixture(t, "llama_tiny", "r8_qv")
	path := filepath.Join(t.TempDir(), "a.gguf")
	writeGGUF(t, path, "llama", 16, nil, ggufFromAdapter(want, cfg, false))
	got, err := LoadGGUF(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got.Pair(0, model.ModQ).BT.Data, want.Pair(0, model.ModQ).BT.Data) {
		t.Error("q lora_b loaded unchanged from an unpermuted file")
	}
	if !bytes.Equal(got.Pair(0, model.ModV).BT.Data, want.Pair(0, model.ModV).BT.Data) {
		t.Error("v lora_b changed; only q and k are permuted")
	}
	// Mistral runs as llama in llama.cpp.
	mistral := *cfg
	mistral.Arch = "mistral"
	if _, err := LoadGGUF(path, &mistral); err != nil {
		t.Errorf("llama-architecture GGUF on a Mistral base: %v", err)
	}
}

func TestGGUFErrors(t *testing.T) {
	want, cfg := loadFixture(t, "llama_tiny", "r8_qv")
	good := ggufFromAdapter(want, cfg, true)
	without := func(name string) []ggufTensor {
		var out []ggufTensor
		for _, tt := range good {
			if tt.name != name {
				out = append(out, tt)
			}
		}
		return out
	}
	f32 := func(name string, rows, cols int) ggufTensor {
		return ggufTensor{name, kernels.F32, []int{rows, cols}, make([]byte, 4*rows*cols)}
	}
	tests := []struct {
		name    string
		arch    string
		meta    map[string]string
		tensors []ggufTensor
		err     error
		msg     []string
	}{
		{"other architecture", "qwen2", nil, good, ErrMismatch, []string{`"qwen2"`, `"llama"`}},
		{"a base model", "llama", map[string]string{"general.type": "model"}, good, ErrFormat, []string{"general.type"}},
		{"not LoRA", "llama", map[string]string{"adapter.type": "control_vector"}, good, ErrUnsupported, []string{"control_vector"}},
		{"missing lora_b", "llama", nil, without("blk.0.attn_q.weight.lora_b"), ErrFormat, []string{"blk.0.attn_q.weight.lora_a", "without its lora_b"}},
		{"missing lora_a", "llama", nil, without("blk.1.attn_v.weight.lora_a"), ErrFormat, []string{"blk.1.attn_v.weight.lora_b", "without its lora_a"}},
		{"token embedding", "llama", nil, append(without(""), f32("token_embd.weight.lora_a", 8, 256)), ErrUnsupported, []string{"token_embd"}},
		{"output head", "llama", nil, append(without(""), f32("output.weight.lora_b", 256, 8)), ErrUnsupported, []string{"output"}},
		{"layer beyond the model", "llama", nil, append(without(""), f32("blk.2.attn_q.weight.lora_a", 8, 64)), ErrMismatch, []string{"blk.2", "2 layers"}},
		{"unknown projection", "llama", nil, append(without(""), f32("blk.0.attn_qkv.weight.lora_a", 8, 64)), ErrMismatch, []string{"attn_qkv"}},
		{"not a LoRA tensor", "llama", nil, append(without(""), f32("blk.0.attn_q.weight", 64, 64)), ErrFormat, []string{"blk.0.attn_q.weight"}},
		{"wrong width", "llama", nil, append(without("blk.0.attn_v.weight.lora_a"), f32("blk.0.attn_v.weight.lora_a", 8, 96)),
			ErrMismatch, []string{"blk.0.attn_v.weight.lora_a", "[8, 96]", "[8, 64]"}},
		{"rank disagrees", "llama", nil, append(without("blk.0.attn_v.weight.lora_b"), f32("blk.0.attn_v.weight.lora_b", 32, 4)),
			ErrMismatch, []string{"blk.0.attn_v.weight.lora_b", "[32, 4]", "[32, 8]"}},
		{"no tensors", "llama", nil, nil, ErrFormat, []string{"no LoRA tensors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.gguf")
			w := gguf.NewWriter()
			w.AddString("general.architecture", tt.arch)
			typ, atyp := "adapter", "lora"
			if v, ok := tt.meta["general.type"]; ok {
				typ = v
			}
			if v, ok := tt.meta["adapter.type"]; ok {
				atyp = v
			}
			w.AddString("general.type", typ)
			w.AddString("adapter.type", atyp)
			w.AddFloat32("adapter.lora.alpha", 16)
			for _, ts := range tt.tensors {
				if err := w.AddTensor(ts.name, ts.dt, ts.shape, ts.data); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			_, err := LoadGGUF(path, cfg)
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
			for _, s := range append(tt.msg, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not mention %q", err, s)
				}
			}
		})
	}

	// Truncated and scribbled files fail cleanly.
	path := filepath.Join(t.TempDir(), "a.gguf")
	writeGGUF(t, path, "llama", 16, nil, good)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	for _, n := range []int{4, 20, 100, len(data) / 2, len(data) - 1} {
		os.WriteFile(bad, data[:n], 0o644)
		if _, err := Load(bad, cfg); err == nil {
			t.Errorf("truncated to %d bytes: loaded", n)
		}
	}
	for i := 4; i < min(len(data), 2048); i += 5 {
		b := bytes.Clone(data)
		b[i] ^= 0xa5
		os.WriteFile(bad, b, 0o644)
		Load(bad, cfg) // must not panic
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.gguf"), cfg); err == nil {
		t.Error("missing file: loaded")
	}
}

// TestGGUFQ8_0 loads GGUF adapters with quantized matrices: Q8_0 (rank
// 32, so lora_b rows are whole blocks) and a Q4_K lora_b (rank 256). A
// quantized lora_a stays as it is; lora_b is widened to F32 after
// unpermuting, and the batched delta matches the naive one.
func TestGGUFQ8_0(t *testing.T) {
	for _, tc := range []struct {
		dtA, dtB kernels.DType
		r        int
	}{{kernels.Q8_0, kernels.Q8_0, 32}, {kernels.F32, kernels.Q4_K, 256}} {
		t.Run(tc.dtB.String(), func(t *testing.T) { testGGUFQuantized(t, tc.dtA, tc.dtB, tc.r) })
	}
}

func testGGUFQuantized(t *testing.T, dtA, dtB kernels.DType, r int) {
	cfg := readConfig(t, "llama_tiny")
	rng := rand.New(rand.NewPCG(5, 5))
	var ts []ggufTensor
	var wantB [][]float64 // q_proj lora_b of layer 0, HF order, [out][r]
	for _, m := range []model.Module{model.ModQ, model.ModV} {
		a := randomMatrix(rng, dtA, r, cfg.InDim(m), 0.1)
		b := randomMatrix(rng, dtB, cfg.OutDim(m), r, 0.1)
		if m == model.ModQ {
			wantB = matrix64(b)
			b.Data = permuteRows(b.Data, cfg.Heads, cfg.HeadDim, dtB.RowBytes(r))
		}
		name := "blk.0." + m.GGUFName() + ".weight"
		ts = append(ts, ggufTensor{name + ".lora_a", a.DType, []int{a.Rows, a.Cols}, a.Data},
			ggufTensor{name + ".lora_b", b.DType, []int{b.Rows, b.Cols}, b.Data})
	}
	path := filepath.Join(t.TempDir(), "q.gguf")
	writeGGUF(t, path, "llama", 64, nil, ts)
	a, err := LoadGGUF(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Pair(0, model.ModQ)
	if want := float32(64) / float32(r); p.A.DType != dtA || p.BT.DType != kernels.F32 || p.Scale != want {
		t.Fatalf("A %v BT %v scale %v, want %v, F32, %v", p.A.DType, p.BT.DType, p.Scale, dtA, want)
	}
	if got := transpose64(matrix64(p.BT)); !slices.EqualFunc(got, wantB, slices.Equal) {
		t.Error("BT is not lora_b unpermuted and transposed")
	}
	pool := kernels.NewPool(2)
	defer pool.Close()
	checkBatch(t, pool, cfg, []seq{{nil, 2}, {a, 5}}, rng)
}
