package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkFiles compares the files under dir with want.
func checkFiles(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("%s holds %d files, want %d", dir, len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s/%s: %d bytes, want %d", dir, name, len(got[name]), len(data))
		}
	}
}

func TestFetchHF(t *testing.T) {
	ctx := context.Background()
	hub := newTestHub(t)
	s, prefix, err := Open(ctx, "hf://org/repo/sub", hub.options())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "sql")
	n, err := Fetch(ctx, s, prefix, dst)
	if err != nil {
		t.Fatal(err)
	}
	want := sub(hubFiles(), "sub/")
	var total int64
	for _, d := range want {
		total += int64(len(d))
	}
	if n != total {
		t.Errorf("Fetch copied %d bytes, want %d", n, total)
	}
	checkFiles(t, dst, want)

	// A single-file adapter lands under its base name.
	s, prefix, err = Open(ctx, "hf://org/repo/loras/style.gguf", hub.options())
	if err != nil {
		t.Fatal(err)
	}
	dst = t.TempDir()
	if _, err := Fetch(ctx, s, prefix, dst); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dst, map[string][]byte{"style.gguf": hubFiles()["loras/style.gguf"]})

	if _, err := Fetch(ctx, s, "nope/", t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Fetch of an empty prefix: err = %v, want ErrNotFound", err)
	}
}

func TestFetchDir(t *testing.T) {
	ctx := context.Background()
	src, _ := NewDir(t.TempDir())
	files := map[string][]byte{"a/adapter_config.json": []byte("{}"), "a/adapter_model.safetensors": randBytes(1<<20, 7)}
	for n, d := range files {
		src.Put(ctx, n, bytes.NewReader(d), int64(len(d)))
	}
	dst := t.TempDir()
	if _, err := Fetch(ctx, src, "a/", dst); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dst, sub(files, "a/"))
	// Fetching again over the same files replaces them.
	if _, err := Fetch(ctx, src, "a/", dst); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dst, sub(files, "a/"))
}

func TestFetchS3(t *testing.T) {
	g := s3Server(t)
	ctx := context.Background()
	s := g.newS3(t)
	files := map[string][]byte{"lora/adapter_config.json": []byte("{}"), "lora/adapter_model.safetensors": randBytes(3<<20, 8)}
	for n, d := range files {
		if err := s.Put(ctx, n, bytes.NewReader(d), int64(len(d))); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir()
	if _, err := Fetch(ctx, s, "lora/", dst); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dst, sub(files, "lora/"))
}

// lyingStore lists sizes that differ from what Get returns, as when an
// object changes between List and Get, or lists names that escape.
type lyingStore struct {
	Store
	list []ObjectInfo
}

func (l lyingStore) List(context.Context, string) ([]ObjectInfo, error) { return l.list, nil }

func TestFetchVerifies(t *testing.T) {
	ctx := context.Background()
	src, _ := NewDir(t.TempDir())
	src.Put(ctx, "p/f", strings.NewReader("0123456789"), 10)
	for _, tc := range []struct {
		list []ObjectInfo
		want error
	}{
		{[]ObjectInfo{{Name: "p/f", Size: 11}}, ErrShortBody},
		{[]ObjectInfo{{Name: "p/f", Size: 9}}, ErrShortBody},
		{[]ObjectInfo{{Name: "p/../../etc/passwd", Size: 1}}, ErrBadName},
		{[]ObjectInfo{{Name: "q/f", Size: 10}}, nil}, // outside the prefix: refused
	} {
		dst := t.TempDir()
		_, err := Fetch(ctx, lyingStore{src, tc.list}, "p/", dst)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Fetch listing %+v: err = %v, want %v", tc.list, err, tc.want)
		}
		if ents, _ := os.ReadDir(dst); len(ents) != 0 {
			t.Errorf("Fetch listing %+v left %d entries in dst", tc.list, len(ents))
		}
	}
}

func TestFetchCanceled(t *testing.T) {
	src, _ := NewDir(t.TempDir())
	src.Put(context.Background(), "f", io.LimitReader(zeros{}, 1<<20), 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, src, "", t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a canceled context: err = %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
