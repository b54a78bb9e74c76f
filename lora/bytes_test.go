package lora

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/model"
)

// readDir returns every file of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// sameAdapter fails unless got and want hold the same pairs bit for bit.
func sameAdapter(t *testing.T, got, want *Adapter, cfg *model.Config) {
	t.Helper()
	if got.MaxRank != want.MaxRank || got.Bytes != want.Bytes {
		t.Fatalf("MaxRank %d Bytes %d, want %d, %d", got.MaxRank, got.Bytes, want.MaxRank, want.Bytes)
	}
	for i := range cfg.Layers {
		for m := range model.NumModules {
			g, w := got.Pair(i, m), want.Pair(i, m)
			if (g == nil) != (w == nil) {
				t.Fatalf("layer %d %v: present %v, want %v", i, m, g != nil, w != nil)
			}
			if g != nil && (g.Rank != w.Rank || g.Scale != w.Scale || !bytes.Equal(g.A.Data, w.A.Data) || !bytes.Equal(g.BT.Data, w.BT.Data)) {
				t.Errorf("layer %d %v: pair differs", i, m)
			}
		}
	}
}

func TestLoadFilesPEFT(t *testing.T) {
	for _, fixture := range fixtureCases {
		for name, exp := range readExpected(t, fixture) {
			t.Run(fixture+"/"+name, func(t *testing.T) {
				dir := filepath.Join(fixturesDir(t), fixture, exp.Dir)
				if _, err := os.Stat(dir); err != nil {
					dir = filepath.Join(fixturesDir(t), fixture, "adapters", name)
				}
				cfg := readConfig(t, fixture)
				want, err := LoadPEFT(dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				got, err := LoadFiles("x", readDir(t, dir), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if got.Name != "x" || got.Config == nil {
					t.Errorf("Name %q Config %v", got.Name, got.Config)
				}
				sameAdapter(t, got, want, cfg)
			})
		}
	}
}

func TestLoadFilesGGUF(t *testing.T) {
	want, cfg := loadFixture(t, "llama_tiny", "r8_qv")
	path := filepath.Join(t.TempDir(), "a.gguf")
	writeGGUF(t, path, "llama", 16, nil, ggufFromAdapter(want, cfg, true))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadFiles("g", map[string][]byte{"anything.bin": data}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sameAdapter(t, got, want, cfg)
}

func TestLoadFilesErrors(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "llama_tiny", "adapters", "r8_qv")
	cfg := readConfig(t, "llama_tiny")
	good := readDir(t, dir)
	qwen := readDir(t, filepath.Join(fixturesDir(t), "qwen2_tiny", "adapters", "r8_all"))
	w := good[peftWeightsFile]
	tests := []struct {
		name  string
		files map[string][]byte
		want  error
	}{
		{"empty", map[string][]byte{}, ErrFormat},
		{"no weights", map[string][]byte{peft.ConfigFile: good[peft.ConfigFile]}, ErrFormat},
		{"pickle", map[string][]byte{peft.ConfigFile: good[peft.ConfigFile], "adapter_model.bin": {1}}, ErrUnsupported},
		{"bad config", map[string][]byte{peft.ConfigFile: []byte("{"), peftWeightsFile: w}, ErrFormat},
		{"truncated", map[string][]byte{peft.ConfigFile: good[peft.ConfigFile], peftWeightsFile: w[:len(w)-10]}, nil},
		{"other base", qwen, ErrMismatch},
		{"bad gguf", map[string][]byte{"a.gguf": []byte("GGUF\x03\x00")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFiles("x", tt.files, cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not wrap %v", err, tt.want)
			}
		})
	}
}
