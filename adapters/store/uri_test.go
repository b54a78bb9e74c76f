package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "adapter_config.json", "a/b/c", "sp ace/é", ".hidden", "a..b", "...", "a/.b/c", "a:b"} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range append(badNames, "a/..", "./a", "a/\x7f", "a\tb") {
		if err := ValidName(name); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ErrBadName", name, err)
		}
	}
}

func TestIsRegistryName(t *testing.T) {
	for uri, want := range map[string]bool{
		"sql-writer": true, "team.summariser_v2": true, "": false, ".": false, "..": false,
		"./sql-writer": false, "a/b": false, "s3://b": false, `a\b`: false, "file:x": false, "v2:x": true,
	} {
		if got := IsRegistryName(uri); got != want {
			t.Errorf("IsRegistryName(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "adapters", "sql"), 0o755)
	os.WriteFile(filepath.Join(root, "adapters", "style.gguf"), []byte("GGUF"), 0o644)
	t.Chdir(root)
	for _, tc := range []struct {
		uri, root, prefix string
	}{
		{"file://" + root + "/adapters/sql", root + "/adapters/sql", ""},
		{"file://" + root + "/adapters/sql/", root + "/adapters/sql", ""},
		{"file://localhost" + root + "/adapters/sql", root + "/adapters/sql", ""},
		{"file://" + root + "/adapters/x/../sql", root + "/adapters/sql", ""},
		{"file://" + root + "/adapters/style.gguf", root + "/adapters", "style.gguf"},
		{root + "/adapters/sql", root + "/adapters/sql", ""},
		{"adapters/sql", root + "/adapters/sql", ""},
		{"./adapters/sql", root + "/adapters/sql", ""},
		{"./adapters/style.gguf", root + "/adapters", "style.gguf"},
		{".", root, ""},
	} {
		s, prefix, err := Open(ctx, tc.uri, &Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", tc.uri, err)
			continue
		}
		d, ok := s.(*Dir)
		if !ok || d.Root() != tc.root || prefix != tc.prefix {
			t.Errorf("Open(%q) = %v, %q; want Dir %s, %q", tc.uri, s, prefix, tc.root, tc.prefix)
		}
	}
	if _, _, err := Open(ctx, "file://"+root+"/missing", &Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing directory: err = %v, want ErrNotFound", err)
	}
}

func TestOpenRemote(t *testing.T) {
	ctx := context.Background()
	opts := &Options{HFEndpoint: "http://hub.test", HFToken: "tok"}
	for _, tc := range []struct {
		uri, store, prefix string
	}{
		{"https://host/adapters/sql", "https://host/adapters/sql/", ""},
		{"https://host/adapters/sql/", "https://host/adapters/sql/", ""},
		{"http://host:8080", "http://host:8080/", ""},
		{"https://host/a/style.gguf", "https://host/a/", "style.gguf"},
		{"https://host/style.gguf", "https://host/", "style.gguf"},
		{"https://host/a%20b/c", "https://host/a%20b/c/", ""},
		{"hf://org/repo", "hf://org/repo@main", ""},
		{"hf://org/repo@v1.0", "hf://org/repo@v1.0", ""},
		{"hf://org/repo/sub/dir", "hf://org/repo@main", "sub/dir/"},
		{"hf://org/repo@abc123/sub/", "hf://org/repo@abc123", "sub/"},
		{"hf://org/repo@refs%2Fpr%2F1/sub", "hf://org/repo@refs%2Fpr%2F1", "sub/"},
		{"hf://org/repo/loras/style.gguf", "hf://org/repo@main", "loras/style.gguf"},
	} {
		s, prefix, err := Open(ctx, tc.uri, opts)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.uri, err)
			continue
		}
		h, ok := s.(*HTTP)
		if !ok || h.String() != tc.store || prefix != tc.prefix {
			t.Errorf("Open(%q) = %v, %q; want %s, %q", tc.uri, s, prefix, tc.store, tc.prefix)
		}
		if ok && h.hub != nil && (h.token != "tok" || !strings.HasPrefix(h.base, "http://hub.test/org/repo/resolve/")) {
			t.Errorf("Open(%q): hub store ignores the options: base %s", tc.uri, h.base)
		}
	}
}

func TestOpenS3(t *testing.T) {
	g := s3Server(t)
	ctx := context.Background()
	bucket := g.newBucket(t)
	for _, tc := range []struct{ uri, prefix string }{
		{"s3://" + bucket, ""},
		{"s3://" + bucket + "/", ""},
		{"s3://" + bucket + "/adapters/sql", "adapters/sql/"},
		{"s3://" + bucket + "/adapters/sql/", "adapters/sql/"},
		{"s3://" + bucket + "/adapters/style.gguf", "adapters/style.gguf"},
	} {
		s, prefix, err := Open(ctx, tc.uri, g.options())
		if err != nil {
			t.Errorf("Open(%q): %v", tc.uri, err)
			continue
		}
		if s3, ok := s.(*S3); !ok || s3.Bucket() != bucket || prefix != tc.prefix {
			t.Errorf("Open(%q) = %v, %q; want bucket %s, %q", tc.uri, s, prefix, bucket, tc.prefix)
		}
	}
	if _, _, err := Open(ctx, "s3://missing-bucket/x", g.options()); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: err = %v, want ErrNotFound", err)
	}
}

func TestOpenBad(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ uri, text string }{
		{"", "empty"},
		{"sql-writer", "registry name"},
		{"ftp://host/x", "unknown scheme"},
		{"gs://bucket/x", "unknown scheme"},
		{"s3://", "missing bucket"},
		{"s3:///prefix", "missing bucket"},
		{"s3://bucket/../x", `".."`},
		{"s3://bucket/a/../../x", `".."`},
		{"s3://bucket/a//b", "empty path segment"},
		{"s3://bucket/a?versionId=1", "query"},
		{"s3://Bad_Bucket/x", "Bucket name"},
		{"hf://", "missing repository"},
		{"hf://org", "missing repository"},
		{"hf://org/", "missing repository"},
		{"hf:///repo", "missing repository"},
		{"hf://org/repo/../../x", `".."`},
		{"hf://org/repo/sub/%2e%2e/x", `".."`},
		{"hf://org/repo@", "revision"},
		{"hf://org/repo@..", "revision"},
		{"hf://org/repo@%zz", "revision"},
		{"hf://org/re po", "org/name"},
		{"hf://org/repo?x=1", "query"},
		{"https://host/../etc", `".."`},
		{"https://host/a/%2e%2e/b", `".."`},
		{"https://user:pw@host/a", "without user"},
		{"https://host/a?sig=1", "query"},
		{"https:///a", "host"},
		{"file://remote/x", "not host"},
		{"file:relative", "want file://"},
		{"hf:org/repo", "want hf://"},
		{"file:///a\x00b", "control character"},
		{"./a\nb", "control character"},
	} {
		s, _, err := Open(ctx, tc.uri, &Options{})
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("Open(%q) = %v, %v; want ErrBadName containing %q", tc.uri, s, err, tc.text)
		}
	}
}
