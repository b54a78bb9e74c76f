package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the HTTP handler of the whole API, with panic recovery,
// request logging and metrics around every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /v1/models/{model...}", s.handleModel)

	mux.HandleFunc("GET /v1/adapters", s.handleListAdapters)
	mux.HandleFunc("POST /v1/adapters", s.handleRegisterAdapter)
	mux.HandleFunc("GET /v1/adapters/{ref}", s.handleGetAdapter)
	mux.HandleFunc("DELETE /v1/adapters/{ref}", s.handleDeleteAdapter)
	mux.HandleFunc("POST /v1/adapters/{ref}/pin", s.handlePin)
	mux.HandleFunc("POST /v1/adapters/{ref}/unpin", s.handleUnpin)
	mux.HandleFunc("POST /v1/adapters/{ref}/prefetch", s.handlePrefetch)

	mux.HandleFunc("POST /v1/chains", s.handleRunChain)
	mux.HandleFunc("GET /v1/chains", s.handleListChains)
	mux.HandleFunc("PUT /v1/chains/{name}", s.handleSaveChain)
	mux.HandleFunc("GET /v1/chains/{name}", s.handleGetChain)
	mux.HandleFunc("DELETE /v1/chains/{name}", s.handleDeleteChain)
	mux.HandleFunc("POST /v1/chains/{name}/run", s.handleRunSavedChain)

	mux.HandleFunc("POST /v1/files", s.handleUploadFile)
	mux.HandleFunc("GET /v1/files", s.handleListFiles)
	mux.HandleFunc("GET /v1/files/{id}", s.handleGetFile)
	mux.HandleFunc("DELETE /v1/files/{id}", s.handleDeleteFile)
	mux.HandleFunc("POST /v1/fine_tuning/jobs", s.handleCreateJob)
	mux.HandleFunc("GET /v1/fine_tuning/jobs", s.handleListJobs)
	mux.HandleFunc("GET /v1/fine_tuning/jobs/{id}", s.handleGetJob)
	mux.HandleFunc("GET /v1/fine_tuning/jobs/{id}/events", s.handleJobEvents)
	mux.HandleFunc("GET /v1/fine_tuning/jobs/{id}/checkpoints", s.handleJobCheckpoints)
	mux.HandleFunc("POST /v1/fine_tuning/jobs/{id}/cancel", s.handleCancelJob)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "not_found",
			Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
	})
	return s.wrap(mux)
}

// statusWriter records the status a handler wrote. It passes Flush
// through so SSE works behind it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap adds panic recovery, the body size limit, logging and request
// metrics to h.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if r.Body != nil {
			limit := s.cfg.MaxRequestBytes
			if isMultipart(r) {
				limit = maxUploadBytes
			}
			r.Body = http.MaxBytesReader(sw, r.Body, limit)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("server: panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "internal_error",
						Message: "internal server error"})
				}
			}
			route := routeLabel(r)
			s.met.requests.WithLabelValues(route, strconv.Itoa(max(sw.status, 200))).Inc()
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
		}()
		h.ServeHTTP(sw, r)
	})
}

func isMultipart(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 10 && ct[:10] == "multipart/"
}

// routeLabel is the metrics label of a request: its mux pattern, which
// keeps the label set bounded (adapter names are not in it).
func routeLabel(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "other"
}
