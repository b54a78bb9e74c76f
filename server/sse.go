package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// sseWriter writes server-sent events, flushing each one to the client.
type sseWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

// newSSE starts an event stream on w. It fails when w cannot flush,
// which a streaming response needs.
func newSSE(w http.ResponseWriter) (*sseWriter, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errors.New("server: the response writer cannot flush, so it cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sseWriter{w: w, f: f}, nil
}

// send writes v as one "data:" event.
func (s *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw(b)
}

func (s *sseWriter) raw(b []byte) error {
	buf := make([]byte, 0, len(b)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

// fail sends an error event in OpenAI's shape; the stream ends after it.
func (s *sseWriter) fail(err error) {
	ae := eventError(err)
	s.send(map[string]any{"error": ae})
}

// finish ends a stream of choices: an error event if one of them did not
// finish (the request's context ended first), else usageChunk (nil when
// the client did not ask for usage) and [DONE].
func (s *sseWriter) finish(ctx context.Context, states []*choiceState, usageChunk any) {
	for _, c := range states {
		if !c.done {
			s.fail(fmt.Errorf("the generation ended early: %w", context.Cause(ctx)))
			return
		}
	}
	if usageChunk != nil {
		s.send(usageChunk)
	}
	s.done()
}

// done sends the terminating "[DONE]" event.
func (s *sseWriter) done() { s.raw([]byte("[DONE]")) }
