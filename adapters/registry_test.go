package adapters

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/adapters/store"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

func openRegistry(t *testing.T, dir string, cfg *model.Config) *Registry {
	t.Helper()
	r, err := Open(context.Background(), dir, cfg, "llama_tiny", &RegistryOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// copyDir copies a fixture adapter into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRegistry(t *testing.T) {
	cfg := fixtureConfig(t, "llama_tiny")
	dir := t.TempDir()
	r := openRegistry(t, dir, cfg)
	ctx := context.Background()
	names := []string{"r8_qv", "r4_all_rslora", "r16_qkvo_patterns"}
	for _, n := range names {
		v, err := r.Register(ctx, n, fixtureAdapter(t, "llama_tiny", n))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 1 || v.Name != n || v.Base != "llama_tiny" || v.Format != "peft" || len(v.Files) != 2 || len(v.SHA256) != 64 {
			t.Errorf("Register(%s) = %+v", n, v)
		}
	}
	v2, err := r.Register(ctx, "r8_qv", "file://"+fixtureAdapter(t, "llama_tiny", "r4_all_rslora"))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Rank != 4 || len(v2.Targets) != 7 {
		t.Errorf("second version: %+v", v2)
	}
	v1, err := r.Resolve("r8_qv@1")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Rank != 8 || !slices.Equal(v1.Targets, []string{"q_proj", "v_proj"}) || v1.Bytes != 15368+969 {
		t.Errorf("r8_qv@1 = %+v", v1)
	}
	if latest, _ := r.Resolve("r8_qv"); latest.Version != 2 {
		t.Errorf("latest r8_qv is version %d", latest.Version)
	}
	if v, _ := r.Resolve("r16_qkvo_patterns"); !slices.Equal(v.Ranks, []int{4, 16}) {
		t.Errorf("ranks of r16_qkvo_patterns: %v", v.Ranks)
	}

	// Delete one version, then reopen: everything else is still there
	// and version numbers are not reused.
	if err := r.Delete(ctx, "r8_qv@1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("r8_qv@1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted version resolves: %v", err)
	}
	if err := r.Delete(ctx, "r8_qv@1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	before := r.List()
	r.Close()
	r = openRegistry(t, dir, cfg)
	after := r.List()
	if len(after) != 3 || len(before) != 3 {
		t.Fatalf("List before reopening %d versions, after %d", len(before), len(after))
	}
	for i := range after {
		if after[i].Key() != before[i].Key() || after[i].SHA256 != before[i].SHA256 || !after[i].Created.Equal(before[i].Created) {
			t.Errorf("version %d: %+v after reopening, %+v before", i, after[i], before[i])
		}
	}
	v3, err := r.Register(ctx, "r8_qv", fixtureAdapter(t, "llama_tiny", "r8_qv"))
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != 3 {
		t.Errorf("version after a deleted one and a reopen: %d, want 3", v3.Version)
	}
	if v3.SHA256 != v1.SHA256 {
		t.Errorf("same files, digest %s then %s", v1.SHA256, v3.SHA256)
	}
	// Every blob a version references is there and checks out; deleting
	// all versions removes the blobs nobody else references.
	for _, v := range r.List() {
		files, err := r.Fetch(ctx, &v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Decode(&v, files); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"r8_qv", "r4_all_rslora", "r16_qkvo_patterns"} {
		if err := r.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("%d blobs left after deleting everything", len(blobs))
	}

	// Another base model cannot open this registry.
	r.Close()
	other := *cfg
	other.Hidden *= 2
	if _, err := Open(ctx, dir, &other, "llama_tiny", nil); !errors.Is(err, ErrBaseMismatch) {
		t.Errorf("Open with another base config: %v", err)
	}
	if _, err := Open(ctx, dir, cfg, "another", nil); !errors.Is(err, ErrBaseMismatch) {
		t.Errorf("Open with another base name: %v", err)
	}
}

func TestRegistryRefuses(t *testing.T) {
	cfg := fixtureConfig(t, "llama_tiny")
	dir := t.TempDir()
	r := openRegistry(t, dir, cfg)
	ctx := context.Background()
	good := fixtureAdapter(t, "llama_tiny", "r8_qv")

	truncated := copyDir(t, good)
	st := filepath.Join(truncated, "adapter_model.safetensors")
	b, _ := os.ReadFile(st)
	os.WriteFile(st, b[:len(b)-100], 0o644)

	corrupt := copyDir(t, good)
	b2 := slices.Clone(b)
	copy(b2[8:], "{{{{")
	os.WriteFile(filepath.Join(corrupt, "adapter_model.safetensors"), b2, 0o644)

	badConfig := copyDir(t, good)
	os.WriteFile(filepath.Join(badConfig, "adapter_config.json"), []byte(`{"peft_type": "LORA", "r": -1}`), 0o644)

	empty := t.TempDir()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name, adapter, uri string
		want               error
		msg                string
	}{
		{"another base", "q", fixtureAdapter(t, "qwen2_tiny", "r8_all"), ErrMismatch, "tensor base_model.model.model.layers."},
		{"truncated", "t", truncated, ErrInvalid, ""},
		{"corrupt", "c", corrupt, ErrInvalid, ""},
		{"bad config", "b", badConfig, ErrInvalid, ""},
		{"no files", "e", empty, ErrInvalid, "no adapter files"},
		{"missing dir", "m", filepath.Join(empty, "nope"), store.ErrNotFound, ""},
		{"traversal name", "../../etc", good, ErrBadName, ""},
		{"slash in name", "a/b", good, ErrBadName, ""},
		{"traversal uri", "s", "s3://bucket/../etc", store.ErrBadName, ""},
		{"unreachable store", "u", "s3://bucket/adapter", store.ErrUnreachable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			r.opts.Store = &store.Options{S3Endpoint: "http://" + closedPort, S3AccessKey: "k", S3SecretKey: "s", S3Region: "us-east-1"}
			_, err := r.Register(ctx, tt.adapter, tt.uri)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Register: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			t.Logf("%v", err)
		})
	}
	if n := len(r.List()); n != 0 {
		t.Errorf("%d versions registered by refused registrations", n)
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("%d blobs left by refused registrations", len(blobs))
	}
	var le *lora.Error
	if _, err := r.Register(ctx, "q", fixtureAdapter(t, "qwen2_tiny", "r8_all")); !errors.As(err, &le) || le.Tensor == "" {
		t.Errorf("shape mismatch error %v does not name the tensor", err)
	}
}

// TestRegistryChecksum damages a stored blob: loading fails with a
// checksum error, in the registry and in a cache, and both stay usable.
func TestRegistryChecksum(t *testing.T) {
	cfg := fixtureConfig(t, "llama_tiny")
	dir := t.TempDir()
	r := openRegistry(t, dir, cfg)
	ctx := context.Background()
	v, err := r.Register(ctx, "a", fixtureAdapter(t, "llama_tiny", "r8_qv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "b", fixtureAdapter(t, "llama_tiny", "r4_all_rslora")); err != nil {
		t.Fatal(err)
	}
	var blob string
	for _, f := range v.Files {
		if f.Name == "adapter_model.safetensors" {
			blob = filepath.Join(dir, "blobs", "sha256", f.SHA256)
		}
	}
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(ctx, &v); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Fetch of a damaged blob: %v", err)
	}
	c := newTestCache(t, r, Budgets{Tier0: 1 << 20, Tier1: 1 << 20}, nil)
	if _, err := c.Acquire(ctx, "a"); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Acquire of a damaged adapter: %v", err)
	}
	h, err := c.Acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if h.Adapter().MaxRank != 4 {
		t.Errorf("b has rank %d", h.Adapter().MaxRank)
	}
	h.Release()
	if res := c.Residency(); len(res) != 1 || res[0].Name != "b" {
		t.Errorf("residency %+v, want b only", res)
	}
	if b := c.TierBytes(); b[Tier0] != h.Adapter().Bytes {
		t.Errorf("tier bytes %v", b)
	}
	if _, err := r.Resolve("a"); err != nil {
		t.Errorf("registry lost a: %v", err)
	}
	// Registering the same files again repairs the blob.
	if _, err := r.Register(ctx, "a", fixtureAdapter(t, "llama_tiny", "r8_qv")); err != nil {
		t.Fatal(err)
	}
	h, err = c.Acquire(ctx, "a@1")
	if err != nil {
		t.Fatalf("a@1 after registering its files again: %v", err)
	}
	h.Release()
}

// TestRegistryCrash simulates a crash between writing the blobs and
// committing the metadata, and one in the middle of a blob write.
func TestRegistryCrash(t *testing.T) {
	cfg := fixtureConfig(t, "llama_tiny")
	dir := t.TempDir()
	ctx := context.Background()
	r := openRegistry(t, dir, cfg)
	if _, err := r.Register(ctx, "kept", fixtureAdapter(t, "llama_tiny", "r8_qv")); err != nil {
		t.Fatal(err)
	}
	type crash struct{}
	r.testHook = func(stage string) {
		if stage == "blobs-written" {
			panic(crash{})
		}
	}
	func() {
		defer func() {
			if p := recover(); p != (crash{}) {
				t.Fatalf("recovered %v", p)
			}
		}()
		r.Register(ctx, "lost", fixtureAdapter(t, "llama_tiny", "r4_all_rslora"))
	}()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if ents, _ := os.ReadDir(blobs); len(ents) != 4 {
		t.Fatalf("%d blobs before the restart, want 4 (2 committed, 2 orphaned by the crash)", len(ents))
	}
	// A write cut short leaves a temporary file.
	if err := os.WriteFile(filepath.Join(blobs, ".switchyard-tmp-0123-abcd"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.db.Close() // the process dies: no cleanup runs

	r = openRegistry(t, dir, cfg)
	if _, err := r.Resolve("lost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("half-registered adapter visible: %v", err)
	}
	v, err := r.Resolve("kept")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(ctx, &v); err != nil {
		t.Errorf("committed adapter damaged by the crash: %v", err)
	}
	ents, _ := os.ReadDir(blobs)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("blobs after the restart: %v, want the 2 of kept", names)
	}
	if _, err := r.Register(ctx, "lost", fixtureAdapter(t, "llama_tiny", "r4_all_rslora")); err != nil {
		t.Errorf("registering again after the crash: %v", err)
	}
}

// TestRegistryCache exercises the registry as a cache's loader: version
// replacement and deletion while a handle is in use.
func TestRegistryCache(t *testing.T) {
	cfg := fixtureConfig(t, "llama_tiny")
	r := openRegistry(t, t.TempDir(), cfg)
	ctx := context.Background()
	if _, err := r.Register(ctx, "a", fixtureAdapter(t, "llama_tiny", "r8_qv")); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, r, Budgets{Tier0: 1 << 20, Tier1: 1 << 20, Tier2: 1 << 20, DiskDir: t.TempDir()}, nil)
	h1, err := c.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want, err := lora.LoadPEFT(fixtureAdapter(t, "llama_tiny", "r8_qv"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := h1.Adapter(); a.Bytes != want.Bytes || a.MaxRank != 8 || string(a.Pair(1, model.ModV).BT.Data) != string(want.Pair(1, model.ModV).BT.Data) {
		t.Fatal("cached adapter differs from lora.LoadPEFT's")
	}
	if _, err := r.Register(ctx, "a", fixtureAdapter(t, "llama_tiny", "r4_all_rslora")); err != nil {
		t.Fatal(err)
	}
	h2, err := c.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if h2.Version().Version != 2 || h2.Adapter().MaxRank != 4 {
		t.Fatalf("after replacement \"a\" is %s with rank %d", h2.Version().Key(), h2.Adapter().MaxRank)
	}
	if err := r.Delete(ctx, "a@1"); err != nil {
		t.Fatal(err)
	}
	if h1.Adapter().MaxRank != 8 || h1.Adapter().Pair(1, model.ModV) == nil {
		t.Fatal("the running request lost its adapter when its version was deleted")
	}
	if _, err := c.Acquire(ctx, "a@1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Acquire of the deleted version: %v", err)
	}
	h1.Release()
	h2.Release()
	if res := c.Residency(); len(res) != 1 || res[0].Version != 2 {
		t.Errorf("residency %+v", res)
	}
}
