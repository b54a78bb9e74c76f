package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeHub serves repositories in the Hugging Face hub's URL layout:
//
//	GET /api/models/{org}/{repo}/tree/{revision}[/{path}]?recursive=true&cursor=N
//	GET|HEAD /{org}/{repo}/resolve/{revision}/{path}
//	GET /cdn/{sha256}         (where resolve redirects .safetensors files, as the hub does with LFS
//	                          files, with X-Linked-Size and X-Linked-Etag; HEAD is refused as
//	                          signed CDN URLs do)
//	GET|HEAD /plain/{path}    (revision main of org/repo as a plain file server)
//
// Revisions are path-escaped ("refs%2Fpr%2F1"). The tree API returns
// pageSize entries per page with a Link rel="next" header.
type fakeHub struct {
	repos    map[string]map[string]map[string][]byte // repo -> revision -> path -> contents
	token    string                                  // required as a bearer token when set
	pageSize int
	blobs    map[string][]byte // sha256 hex -> contents, for /cdn/
	srv      *httptest.Server
}

func newFakeHub(t *testing.T, repos map[string]map[string]map[string][]byte) *fakeHub {
	h := &fakeHub{repos: repos, pageSize: 2, blobs: map[string][]byte{}}
	for _, revs := range repos {
		for _, files := range revs {
			for _, data := range files {
				sum := sha256.Sum256(data)
				h.blobs[hex.EncodeToString(sum[:])] = data
			}
		}
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) options() *Options {
	return &Options{HFEndpoint: h.srv.URL, HTTPClient: h.srv.Client()}
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept-Encoding") != "identity" && !strings.HasPrefix(r.URL.Path, "/api/") {
		http.Error(w, "client must ask for identity encoding", http.StatusBadRequest)
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		segs[i], _ = url.PathUnescape(s)
	}
	switch {
	case segs[0] == "cdn" && len(segs) == 2:
		if r.Method != http.MethodGet {
			// Like a signed CDN URL, made for GET only.
			http.Error(w, "signature does not match", http.StatusForbidden)
			return
		}
		data, ok := h.blobs[segs[1]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"`+segs[1]+`"`)
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(data))
	case segs[0] == "plain":
		h.serveFile(w, r, "org/repo", "main", strings.Join(segs[1:], "/"), false)
	case segs[0] == "api" && len(segs) >= 6 && segs[1] == "models" && segs[4] == "tree":
		if !h.authorized(w, r) {
			return
		}
		h.serveTree(w, r, segs[2]+"/"+segs[3], segs[5], strings.Join(segs[6:], "/"))
	case len(segs) >= 5 && segs[2] == "resolve":
		if !h.authorized(w, r) {
			return
		}
		h.serveFile(w, r, segs[0]+"/"+segs[1], segs[3], strings.Join(segs[4:], "/"), true)
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.token == "" || r.Header.Get("Authorization") == "Bearer "+h.token {
		return true
	}
	http.Error(w, "Invalid credentials in Authorization header", http.StatusUnauthorized)
	return false
}

// files returns a revision's files, writing the hub's error when the
// repository or revision does not exist.
func (h *fakeHub) files(w http.ResponseWriter, repo, rev string) map[string][]byte {
	revs, ok := h.repos[repo]
	if !ok {
		// The hub does not tell missing repositories from private ones.
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusUnauthorized)
		return nil
	}
	files, ok := revs[rev]
	if !ok {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Invalid rev id: "+rev, http.StatusNotFound)
		return nil
	}
	return files
}

func (h *fakeHub) serveFile(w http.ResponseWriter, r *http.Request, repo, rev, p string, redirect bool) {
	files := h.files(w, repo, rev)
	if files == nil {
		return
	}
	data, ok := files[p]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(data)
	if redirect && strings.HasSuffix(p, ".safetensors") {
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.Redirect(w, r, h.srv.URL+"/cdn/"+hex.EncodeToString(sum[:]), http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(data))
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request, repo, rev, dir string) {
	files := h.files(w, repo, rev)
	if files == nil {
		return
	}
	type lfs struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	}
	type entry struct {
		Type string `json:"type"`
		Path string `json:"path"`
		Size int64  `json:"size"`
		OID  string `json:"oid"`
		LFS  *lfs   `json:"lfs,omitempty"`
	}
	var entries []entry
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range files {
			if !yield(p) {
				return
			}
		}
	}) {
		if dir != "" && !strings.HasPrefix(p, dir+"/") {
			continue
		}
		for i := len(dir) + 1; i < len(p); i++ {
			if p[i] == '/' && !dirs[p[:i]] {
				dirs[p[:i]] = true
				entries = append(entries, entry{Type: "directory", Path: p[:i], OID: "tree"})
			}
		}
		data := files[p]
		sum := sha256.Sum256(data)
		e := entry{Type: "file", Path: p, Size: int64(len(data)), OID: hex.EncodeToString(sum[:20])}
		if strings.HasSuffix(p, ".safetensors") {
			e.LFS = &lfs{OID: hex.EncodeToString(sum[:]), Size: int64(len(data))}
		}
		entries = append(entries, e)
	}
	if dir != "" && len(entries) == 0 {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if r.URL.Query().Get("recursive") != "true" {
		http.Error(w, "test hub only serves recursive trees", http.StatusBadRequest)
		return
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+h.pageSize, len(entries))
	if end < len(entries) {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", strconv.Itoa(end))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, h.srv.URL, next.RequestURI()))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(entries[start:end])
}
