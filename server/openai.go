package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/switchyard-ai/switchyard/engine"
)

// Error types, as the OpenAI API names them.
const (
	typeInvalid    = "invalid_request_error"
	typeNotFound   = "not_found_error"
	typePermission = "permission_error"
	typeRateLimit  = "rate_limit_error"
	typeServer     = "server_error"
	typeOverloaded = "overloaded_error"
)

// apiError is an error response in OpenAI's shape.
type apiError struct {
	Status     int    `json:"-"`
	RetryAfter string `json:"-"` // Retry-After header, for 429 and 503
	Message    string `json:"message"`
	Type       string `json:"type"`
	Param      any    `json:"param"` // string or null
	Code       any    `json:"code"`  // string or null
}

func (e *apiError) Error() string { return e.Message }

// invalid returns a 400 invalid_request_error about param.
func invalid(param, format string, args ...any) *apiError {
	var p any
	if param != "" {
		p = param
	}
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: p, Code: "invalid_value",
		Message: fmt.Sprintf(format, args...)}
}

// writeError writes err as an OpenAI error response. Errors other than
// *apiError become 500s.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "internal_error", Message: err.Error()}
	}
	if ae.RetryAfter != "" {
		w.Header().Set("Retry-After", ae.RetryAfter)
	}
	writeJSON(w, ae.Status, map[string]any{"error": ae})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decodeBody reads a JSON request body into v, turning every failure into
// a clear 400 (or 413 for a body over the limit).
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Code: "request_too_large",
				Message: fmt.Sprintf("request body is larger than %d bytes", mb.Limit)}
		}
		return invalid("", "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("", "the request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return invalid("", "the request body has data after its JSON object")
	}
	return nil
}

// jsonError describes a JSON decoding error for a client.
func jsonError(err error) *apiError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &te):
		// Embedded structs show up in the path under their Go names.
		field := strings.NewReplacer("samplingFields.", "", "chainSpec.", "").Replace(te.Field)
		if field == "" {
			return invalid("", "the request body must be a JSON object, not %s", te.Value)
		}
		return invalid(field, "%s must be %s, not %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return invalid("", "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "malformed JSON: the body ends early")
	}
	return invalid("", "malformed JSON: %v", err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// stringList is a JSON field that is a string or an array of strings
// (stop).
type stringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *stringList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return invalid("stop", "stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// promptInput is the prompt of a completion: a string, an array of
// strings, an array of token ids or an array of arrays of token ids. Each
// element is one prompt.
type promptInput struct {
	texts []string
	ids   [][]int
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *promptInput) UnmarshalJSON(b []byte) error {
	bad := invalid("prompt", "prompt must be a string, an array of strings, an array of token ids or an array of arrays of token ids")
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		p.texts = []string{one}
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) == 0 {
		if err == nil {
			return invalid("prompt", "prompt is an empty array")
		}
		return bad
	}
	var texts []string
	if json.Unmarshal(b, &texts) == nil {
		p.texts = texts
		return nil
	}
	var ids []int
	if json.Unmarshal(b, &ids) == nil {
		p.ids = [][]int{ids}
		return nil
	}
	var idss [][]int
	if json.Unmarshal(b, &idss) == nil {
		p.ids = idss
		return nil
	}
	return bad
}

// streamOptions is stream_options.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// samplingFields are the decoding settings that completions and chat
// share.
type samplingFields struct {
	Model             string         `json:"model"`
	MaxTokens         *int           `json:"max_tokens"`
	Temperature       *float32       `json:"temperature"`
	TopP              *float32       `json:"top_p"`
	TopK              *int           `json:"top_k"`
	MinP              *float32       `json:"min_p"`
	Stop              stringList     `json:"stop"`
	Seed              *int64         `json:"seed"`
	PresencePenalty   *float32       `json:"presence_penalty"`
	FrequencyPenalty  *float32       `json:"frequency_penalty"`
	RepetitionPenalty *float32       `json:"repetition_penalty"`
	N                 *int           `json:"n"`
	Stream            bool           `json:"stream"`
	StreamOptions     *streamOptions `json:"stream_options"`
	IgnoreEOS         bool           `json:"ignore_eos"`
	User              string         `json:"user"`
}

// maxN bounds n, the number of choices per prompt.
const maxN = 16

// maxLogprobs bounds logprobs and top_logprobs, as OpenAI does.
const maxLogprobs = 20

// params checks the shared fields and returns the engine's settings (with
// MaxTokens left to the caller) and n.
func (f *samplingFields) params() (engine.SamplingParams, int, error) {
	if f.Model == "" {
		return engine.SamplingParams{}, 0, invalid("model", "model is required")
	}
	p := engine.SamplingParams{Temperature: 1, Stop: f.Stop}
	if f.Temperature != nil {
		p.Temperature = *f.Temperature
	}
	if f.TopP != nil {
		p.TopP = *f.TopP
	}
	if f.TopK != nil {
		if *f.TopK < -1 {
			return p, 0, invalid("top_k", "top_k must be -1 (off), 0 (off) or positive, not %d", *f.TopK)
		}
		p.TopK = max(*f.TopK, 0)
	}
	if f.MinP != nil {
		p.MinP = *f.MinP
	}
	if f.PresencePenalty != nil {
		p.PresencePenalty = *f.PresencePenalty
	}
	if f.FrequencyPenalty != nil {
		p.FrequencyPenalty = *f.FrequencyPenalty
	}
	if f.RepetitionPenalty != nil {
		p.RepetitionPenalty = *f.RepetitionPenalty
	}
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if len(f.Stop) > 4 {
		return p, 0, invalid("stop", "at most 4 stop strings are allowed, got %d", len(f.Stop))
	}
	n := 1
	if f.N != nil {
		n = *f.N
		if n < 1 || n > maxN {
			return p, 0, invalid("n", "n must be between 1 and %d, not %d", maxN, n)
		}
	}
	if f.MaxTokens != nil && *f.MaxTokens < 1 {
		return p, 0, invalid("max_tokens", "max_tokens must be at least 1, not %d", *f.MaxTokens)
	}
	if err := p.Validate(); err != nil {
		var pe *engine.ParamError
		if errors.As(err, &pe) {
			return p, 0, invalid(pe.Param, "%s %s", pe.Param, pe.Reason)
		}
		return p, 0, invalid("", "%v", err)
	}
	if f.StreamOptions != nil && !f.Stream {
		return p, 0, invalid("stream_options", "stream_options is only allowed with stream: true")
	}
	return p, n, nil
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	samplingFields
	Prompt   *promptInput `json:"prompt"`
	Logprobs *int         `json:"logprobs"`
	Echo     bool         `json:"echo"`
	Suffix   *string      `json:"suffix"`
	BestOf   *int         `json:"best_of"`
}

// chatMessage is one message of a chat request; Content is a string or an
// array of content parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name,omitempty"`
}

// text returns the message's content as one string: the string itself or
// its text parts joined.
func (m *chatMessage) text(i int) (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	param := fmt.Sprintf("messages[%d].content", i)
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", invalid(param, "%s must be a string or an array of content parts", param)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", invalid(fmt.Sprintf("%s[%d].type", param, j), "content part type %q is not supported; only text is", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	samplingFields
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Logprobs            bool          `json:"logprobs"`
	TopLogprobs         *int          `json:"top_logprobs"`
}

// usage is the token counts of a response.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (u *usage) add(prompt, completion int) {
	u.PromptTokens += prompt
	u.CompletionTokens += completion
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}
