package store

import (
	"context"
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidName checks that every name ValidName accepts stays under
// any root once joined to it, both as a slash path and as a file path.
func FuzzValidName(f *testing.F) {
	for _, s := range append(badNames, "a", "a/b", "..a", "a..", "a/.../b", "é/ü", "a:b", "~", "%2e%2e") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ValidName(%q) = %v, not wrapping ErrBadName", name, err)
			}
			return
		}
		const root = "/srv/store/root"
		for _, joined := range []string{path.Join(root, name), filepath.Join(root, filepath.FromSlash(name))} {
			if !strings.HasPrefix(joined, root+"/") {
				t.Fatalf("valid name %q joins to %q, outside %s", name, joined, root)
			}
		}
		if path.Clean(name) != name {
			t.Fatalf("valid name %q is not clean (%q)", name, path.Clean(name))
		}
	})
}

// FuzzOpenURI checks that Open never panics, refuses what it cannot
// parse with ErrBadName (or ErrNotFound for paths), and never returns a
// prefix that escapes its store. It makes no network request: S3 URIs
// point at a closed endpoint and hub/HTTP stores are not used.
func FuzzOpenURI(f *testing.F) {
	for _, s := range []string{
		"file:///tmp", "/tmp", "./x", "x/y", "sql-writer", "s3://bucket/prefix", "s3://b/../x",
		"https://host/a/b", "http://h/a.gguf", "hf://org/repo", "hf://org/repo@v1/sub", "hf://org/repo@refs%2Fpr%2F1/x",
		"hf://org/repo/../../x", "hf://org", "ftp://x", "", "file://remote/x", "hf:org/repo", "s3://b/a?x",
	} {
		f.Add(s)
	}
	opts := &Options{S3Endpoint: "http://127.0.0.1:1", HFEndpoint: "http://127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, uri string) {
		if strings.HasPrefix(strings.ToLower(uri), "s3://") {
			// Parsing only: NewS3 would dial. Check the prefix rules.
			_, key, _ := strings.Cut(uri[len("s3://"):], "/")
			p, err := objectPrefix(key)
			if err == nil && p != "" && ValidName(strings.TrimSuffix(p, "/")) != nil {
				t.Fatalf("s3 key %q gives prefix %q that ValidName refuses", key, p)
			}
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, prefix, err := Open(ctx, uri, opts)
		if err != nil {
			if !errors.Is(err, ErrBadName) && !errors.Is(err, ErrNotFound) && !strings.Contains(err.Error(), "not a directory") {
				t.Fatalf("Open(%q) = %v: neither ErrBadName nor ErrNotFound", uri, err)
			}
			return
		}
		if s == nil {
			t.Fatalf("Open(%q) returned a nil store without error", uri)
		}
		if prefix != "" && ValidName(strings.TrimSuffix(prefix, "/")) != nil {
			t.Fatalf("Open(%q) returned prefix %q that ValidName refuses", uri, prefix)
		}
		if h, ok := s.(*HTTP); ok && h.err != nil {
			t.Fatalf("Open(%q) returned a broken HTTP store: %v", uri, h.err)
		}
	})
}
