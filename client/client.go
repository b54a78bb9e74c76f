// Package client is a small Go client for the parts of Switchyard's HTTP
// API that OpenAI clients do not cover: adapter administration, chains
// and the token ids of a completion. For completions and chat, any
// OpenAI client (github.com/openai/openai-go) works against the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one Switchyard server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the server at baseURL ("http://host:port").
// A nil httpClient means http.DefaultClient.
func New(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: httpClient}
}

// Error is an error response of the server, in OpenAI's shape.
type Error struct {
	Status  int    // HTTP status code
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param"`
	Code    string `json:"code"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("switchyard: %d %s: %s", e.Status, e.Type, e.Message)
}

// do sends a request with an optional JSON body and decodes a JSON
// response into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// Adapter is a registered adapter version and its place in the cache.
type Adapter struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Format    string    `json:"format"`
	Rank      int       `json:"rank"`
	Targets   []string  `json:"targets"`
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"`
	Source    string    `json:"source"`
	Created   time.Time `json:"created"`
	Residency string    `json:"residency"` // "tier0" (compute-ready) ... "tier3" (remote store only)
	Pinned    bool      `json:"pinned"`
	InUse     int       `json:"in_use"`
}

// RegisterAdapter registers the adapter at uri (a directory or GGUF file
// on the server, s3://, https:// or hf://) as the next version of name.
func (c *Client) RegisterAdapter(ctx context.Context, name, uri string) (*Adapter, error) {
	var a Adapter
	err := c.do(ctx, "POST", "/v1/adapters", map[string]string{"name": name, "uri": uri}, &a)
	return &a, err
}

// Adapters lists every registered adapter version.
func (c *Client) Adapters(ctx context.Context) ([]Adapter, error) {
	var out struct {
		Data []Adapter `json:"data"`
	}
	err := c.do(ctx, "GET", "/v1/adapters", nil, &out)
	return out.Data, err
}

// Adapter returns the version ref ("name" or "name@N") names.
func (c *Client) Adapter(ctx context.Context, ref string) (*Adapter, error) {
	var a Adapter
	err := c.do(ctx, "GET", "/v1/adapters/"+url.PathEscape(ref), nil, &a)
	return &a, err
}

// DeleteAdapter deletes "name@N", or every version of "name".
func (c *Client) DeleteAdapter(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/v1/adapters/"+url.PathEscape(ref), nil, nil)
}

// PinAdapter keeps ref compute-ready until UnpinAdapter.
func (c *Client) PinAdapter(ctx context.Context, ref string) (*Adapter, error) {
	return c.adapterAction(ctx, ref, "pin")
}

// UnpinAdapter undoes one PinAdapter.
func (c *Client) UnpinAdapter(ctx context.Context, ref string) (*Adapter, error) {
	return c.adapterAction(ctx, ref, "unpin")
}

// PrefetchAdapter loads ref ahead of requests.
func (c *Client) PrefetchAdapter(ctx context.Context, ref string) (*Adapter, error) {
	return c.adapterAction(ctx, ref, "prefetch")
}

func (c *Client) adapterAction(ctx context.Context, ref, action string) (*Adapter, error) {
	var a Adapter
	err := c.do(ctx, "POST", "/v1/adapters/"+url.PathEscape(ref)+"/"+action, nil, &a)
	return &a, err
}

// ChainStep is one step of a chain.
type ChainStep struct {
	Name        string   `json:"name,omitempty"`
	Model       string   `json:"model"`
	Prompt      string   `json:"prompt"` // Jinja: {{ input }}, {{ steps.NAME }}, {{ previous }}
	DependsOn   []string `json:"depends_on,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature float32  `json:"temperature,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// StepResult is one step's output.
type StepResult struct {
	Name         string `json:"name"`
	Model        string `json:"model"`
	Output       string `json:"output"`
	FinishReason string `json:"finish_reason"`
	Usage        Usage  `json:"usage"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChainResult is the outcome of a chain.
type ChainResult struct {
	ID     string       `json:"id"`
	Steps  []StepResult `json:"steps"`
	Output string       `json:"output"` // the last step's output
	Usage  Usage        `json:"usage"`
}

// RunChain runs steps on input.
func (c *Client) RunChain(ctx context.Context, input string, steps []ChainStep) (*ChainResult, error) {
	var r ChainResult
	err := c.do(ctx, "POST", "/v1/chains", map[string]any{"input": input, "steps": steps}, &r)
	return &r, err
}

// SaveChain saves steps as the chain called name.
func (c *Client) SaveChain(ctx context.Context, name string, steps []ChainStep) error {
	return c.do(ctx, "PUT", "/v1/chains/"+url.PathEscape(name), map[string]any{"steps": steps}, nil)
}

// RunSavedChain runs the chain saved as name on input.
func (c *Client) RunSavedChain(ctx context.Context, name, input string) (*ChainResult, error) {
	var r ChainResult
	err := c.do(ctx, "POST", "/v1/chains/"+url.PathEscape(name)+"/run", map[string]any{"input": input}, &r)
	return &r, err
}

// CompletionRequest is a greedy or sampled completion of token ids or
// text.
type CompletionRequest struct {
	Model       string  `json:"model"`
	Prompt      any     `json:"prompt"` // a string or []int
	MaxTokens   int     `json:"max_tokens,omitempty"`
	Temperature float32 `json:"temperature"`
	Seed        *int64  `json:"seed,omitempty"`
	IgnoreEOS   bool    `json:"ignore_eos,omitempty"`
}

// Completion is a completion's text, token ids and usage.
type Completion struct {
	Text         string
	TokenIDs     []int
	FinishReason string
	Usage        Usage
}

// Complete runs one completion and returns its first choice with the
// generated token ids.
func (c *Client) Complete(ctx context.Context, req CompletionRequest) (*Completion, error) {
	var out struct {
		Choices []struct {
			Text         string `json:"text"`
			TokenIDs     []int  `json:"token_ids"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage Usage `json:"usage"`
	}
	if err := c.do(ctx, "POST", "/v1/completions", req, &out); err != nil {
		return nil, err
	}
	if len(out.Choices) == 0 {
		return nil, fmt.Errorf("switchyard: a completion without choices")
	}
	ch := out.Choices[0]
	return &Completion{Text: ch.Text, TokenIDs: ch.TokenIDs, FinishReason: ch.FinishReason, Usage: out.Usage}, nil
}
