package store

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// hubFiles is the content of the fake hub's org/repo at main.
func hubFiles() map[string][]byte {
	return map[string][]byte{
		"README.md":                     []byte("# an adapter collection"),
		"adapter_config.json":           []byte(`{"r": 8, "lora_alpha": 16}`),
		"adapter_model.safetensors":     randBytes(150<<10, 3),
		"sub/adapter_config.json":       []byte(`{"r": 4}`),
		"sub/adapter_model.safetensors": randBytes(90<<10, 4),
		"sub/deep/notes.txt":            []byte("deeper"),
		"loras/style.gguf":              randBytes(40<<10, 5),
	}
}

func newTestHub(t *testing.T) *fakeHub {
	return newFakeHub(t, map[string]map[string]map[string][]byte{
		"org/repo": {
			"main":      hubFiles(),
			"refs/pr/1": {"adapter_config.json": []byte(`{"r": 2}`)},
		},
	})
}

// sub returns the files under dir/ with names relative to it.
func sub(files map[string][]byte, dir string) map[string][]byte {
	out := map[string][]byte{}
	for n, d := range files {
		if rel, ok := strings.CutPrefix(n, dir); ok {
			out[rel] = d
		}
	}
	return out
}

func TestHF(t *testing.T) {
	hub := newTestHub(t)
	s := NewHF("org/repo", "", hub.options())
	files := hubFiles()
	t.Run("Root", func(t *testing.T) {
		testReadStore(t, s, files, "", []string{
			"README.md", "adapter_config.json", "adapter_model.safetensors", "loras/style.gguf",
			"sub/adapter_config.json", "sub/adapter_model.safetensors", "sub/deep/notes.txt",
		})
	})
	t.Run("Subdir", func(t *testing.T) {
		testReadStore(t, s, sub(files, "sub/"), "sub/", []string{
			"sub/adapter_config.json", "sub/adapter_model.safetensors", "sub/deep/notes.txt",
		})
	})
	testReadOnly(t, s)
	ctx := context.Background()
	for prefix, want := range map[string]int{"sub/adapter_": 2, "nope/": 0, "sub/deep/": 1, "adapter": 2} {
		got, err := s.List(ctx, prefix)
		if err != nil || len(got) != want {
			t.Errorf("List(%q) = %q, %v; want %d objects", prefix, names(got), err, want)
		}
	}
	// LFS files carry their sha256 as ETag, from List and from Stat
	// through the redirect.
	list, _ := s.List(ctx, "adapter_model.safetensors")
	info, err := s.Stat(ctx, "adapter_model.safetensors")
	if err != nil || len(list) != 1 || len(list[0].ETag) != 64 || info.ETag != list[0].ETag {
		t.Errorf("ETag: List %+v, Stat %+v (%v); want the same sha256", list, info, err)
	}
}

func TestHFRevision(t *testing.T) {
	hub := newTestHub(t)
	s := NewHF("org/repo", "refs/pr/1", hub.options())
	testReadStore(t, s, map[string][]byte{"adapter_config.json": []byte(`{"r": 2}`)}, "", []string{"adapter_config.json"})
	if s.String() != "hf://org/repo@refs%2Fpr%2F1" {
		t.Errorf("String() = %q", s)
	}
	_, err := NewHF("org/repo", "v9", hub.options()).List(context.Background(), "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "RevisionNotFound") {
		t.Errorf("missing revision: err = %v, want ErrNotFound (RevisionNotFound)", err)
	}
}

func TestHFErrors(t *testing.T) {
	hub := newTestHub(t)
	ctx := context.Background()
	// A missing (or private) repository: the hub answers 401 RepoNotFound.
	_, err := NewHF("org/missing", "main", hub.options()).Get(ctx, "adapter_config.json")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("missing repo: err = %v, want ErrNotFound with a HF_TOKEN hint", err)
	}
	hub.token = "secret"
	for _, tc := range []struct {
		token string
		want  error
	}{{"", ErrAuth}, {"wrong", ErrAuth}, {"secret", nil}} {
		opts := hub.options()
		opts.HFToken = tc.token
		s := NewHF("org/repo", "main", opts)
		_, err := s.Stat(ctx, "adapter_config.json")
		if !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("token %q: Stat err = %v, want %v", tc.token, err, tc.want)
		}
		_, err = s.List(ctx, "")
		if !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("token %q: List err = %v, want %v", tc.token, err, tc.want)
		}
	}
	for _, tc := range []struct{ repo, rev, endpoint string }{
		{"org", "main", ""},
		{"org/repo/x", "main", ""},
		{"org/..", "main", ""},
		{"../repo", "main", ""},
		{"org/repo", "../../x", ""},
		{"org/repo", "a//b", ""},
		{"org/repo", "main", "ftp://hub"},
		{"org/repo", "main", "://"},
	} {
		opts := hub.options()
		if tc.endpoint != "" {
			opts.HFEndpoint = tc.endpoint
		}
		s := NewHF(tc.repo, tc.rev, opts)
		if _, err := s.Get(ctx, "adapter_config.json"); !errors.Is(err, ErrBadName) {
			t.Errorf("NewHF(%q, %q, endpoint %q).Get: err = %v, want ErrBadName", tc.repo, tc.rev, tc.endpoint, err)
		}
		if _, err := s.List(ctx, ""); !errors.Is(err, ErrBadName) {
			t.Errorf("NewHF(%q, %q, endpoint %q).List: err = %v, want ErrBadName", tc.repo, tc.rev, tc.endpoint, err)
		}
	}
}

// TestHFForeignNextPage checks that pagination never follows a link to
// another host (where the token would go).
func TestHFForeignNextPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<https://elsewhere.example/api/x?cursor=2>; rel="next"`)
		io.WriteString(w, `[]`)
	}))
	defer srv.Close()
	_, err := NewHF("org/repo", "main", &Options{HFEndpoint: srv.URL, HTTPClient: srv.Client()}).List(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "next-page link") {
		t.Errorf("foreign next page: err = %v", err)
	}
}

func testReadOnly(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Put(ctx, "x", strings.NewReader("x"), 1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put: err = %v, want ErrReadOnly", err)
	}
	if err := s.Delete(ctx, "adapter_config.json"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete: err = %v, want ErrReadOnly", err)
	}
}

func TestHTTP(t *testing.T) {
	hub := newTestHub(t)
	files := hubFiles()
	s := NewHTTP(hub.srv.URL+"/plain", hub.srv.Client())
	// Plain HTTP lists only the well-known adapter files.
	testReadStore(t, s, files, "", []string{"adapter_config.json", "adapter_model.safetensors"})
	t.Run("Sub", func(t *testing.T) {
		testReadStore(t, s, sub(files, "sub/"), "sub/", []string{"sub/adapter_config.json", "sub/adapter_model.safetensors"})
	})
	testReadOnly(t, s)
	// A prefix naming one file lists it.
	list, err := s.List(context.Background(), "loras/style.gguf")
	if err != nil || len(list) != 1 || list[0].Size != int64(len(files["loras/style.gguf"])) {
		t.Errorf("List(loras/style.gguf) = %+v, %v", list, err)
	}
	for _, base := range []string{"ftp://x/", "http://", "http://h/p?q=1", "::"} {
		if _, err := NewHTTP(base, nil).Get(context.Background(), "x"); !errors.Is(err, ErrBadName) {
			t.Errorf("NewHTTP(%q).Get: err = %v, want ErrBadName", base, err)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/401/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no token", http.StatusUnauthorized)
	})
	mux.HandleFunc("/403/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>forbidden</html>", http.StatusForbidden)
	})
	mux.HandleFunc("/500/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "disk on fire", http.StatusInternalServerError)
	})
	mux.HandleFunc("/truncated/", func(w http.ResponseWriter, r *http.Request) {
		// Announce 1000 bytes, send 500, and close the connection.
		w.Header().Set("Content-Length", "1000")
		w.Write(make([]byte, 500))
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want error
		text string
	}{
		{"/missing/", ErrNotFound, "404"},
		{"/401/", ErrAuth, "no token"},
		{"/403/", ErrAuth, "403 Forbidden"},
		{"/500/", nil, "disk on fire"},
	} {
		_, err := NewHTTP(srv.URL+tc.path, nil).Get(ctx, "adapter_config.json")
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) ||
			!strings.Contains(err.Error(), "adapter_config.json") {
			t.Errorf("%s: err = %v, want %v containing %q and the name", tc.path, err, tc.want, tc.text)
		}
		if strings.Contains(err.Error(), "<html>") {
			t.Errorf("%s: err quotes HTML: %v", tc.path, err)
		}
	}

	rc, err := NewHTTP(srv.URL+"/truncated/", nil).Get(ctx, "adapter_model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrShortBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: read %d bytes, err = %v; want ErrShortBody and io.ErrUnexpectedEOF", len(data), err)
	}
	if _, err := Fetch(ctx, NewHTTP(srv.URL+"/truncated/", nil), "", t.TempDir()); !errors.Is(err, ErrShortBody) {
		t.Errorf("Fetch of a truncated body: err = %v, want ErrShortBody", err)
	}

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := NewHTTP(srv.URL+"/slow/", nil).Get(cctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow server: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow server took %v with a 200ms deadline", d)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	if _, err := NewHTTP(closed, nil).Stat(ctx, "x"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: err = %v, want ErrUnreachable", err)
	}
}

// TestExactReader covers the size checks every Get and Put rely on.
func TestExactReader(t *testing.T) {
	for _, tc := range []struct {
		data string
		size int64
		want error
	}{
		{"hello", 5, nil},
		{"hello", -1, nil},
		{"", 0, nil},
		{"hell", 5, ErrShortBody},
		{"hello!", 5, ErrShortBody},
		{"", 3, ErrShortBody},
		{"x", 0, ErrShortBody},
	} {
		got, err := io.ReadAll(newExactReader(iotest.OneByteReader(strings.NewReader(tc.data)), tc.size))
		if !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("%q size %d: err = %v, want %v", tc.data, tc.size, err, tc.want)
		}
		if tc.want != nil && int64(len(got)) >= tc.size && tc.size > 0 {
			t.Errorf("%q size %d: handed over %d bytes despite the error", tc.data, tc.size, len(got))
		}
		if tc.want == nil && string(got) != tc.data {
			t.Errorf("%q size %d: got %q", tc.data, tc.size, got)
		}
	}
}
