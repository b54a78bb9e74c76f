package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequests sends arbitrary bodies to the generation endpoints: the
// server must answer every one with a status below 500 (or a 200) and an
// OpenAI-shaped error, never panic.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"model":"stories","prompt":[1,2,3],"max_tokens":2}`,
		`{"model":"r8","prompt":"hi","max_tokens":2,"n":2,"logprobs":3,"stop":["a","b"]}`,
		`{"model":"stories","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"max_tokens":2}`,
		`{"model":"stories","prompt":[[1],[1,2]],"max_tokens":1,"echo":true}`,
		`{"model":"stories","prompt":"x","max_tokens":2,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"input":"x","steps":[{"model":"r8","prompt":"{{ input }}","max_tokens":2}]}`,
		`{"model":1e400}`, `{"prompt":null}`, `null`, `"x"`, `{"model":"stories","prompt":[-1]}`,
		`{"model":"stories","prompt":"x","temperature":"NaN"}`, `{"steps":[{"model":"r8","prompt":"{% for %}"}]}`,
	} {
		f.Add(s)
	}
	e := newEnv(f, envOptions{})
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/completions", "/v1/chat/completions", "/v1/chains"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
				t.Errorf("%s %q: %d %s", path, body, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("%s %q: %d without an error object: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}
