package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// wellKnownFiles are the adapter file names HTTP.List looks for, since
// plain HTTP cannot list a directory: PEFT's config and weights. A
// pickled adapter_model.bin is listed when it exists so that callers can
// refuse it by name; loading pickle is unsafe. GGUF adapters have no
// well-known name and are addressed by their full URL instead.
var wellKnownFiles = [...]string{"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"}

// Limits on what the HTTP stores read into memory.
const (
	maxAPIBody   = 32 << 20 // one page of hub tree JSON
	maxErrorBody = 1 << 10  // the part of an error response quoted in messages
)

// HTTP is a read-only Store of files under a base URL: object "a/b" is
// GET base/a/b. Put and Delete return errors wrapping ErrReadOnly. Stat
// is a HEAD request. Redirects are followed. Response bodies are read
// with "Accept-Encoding: identity" and must have the length the server
// announced: a body that ends early fails with an error wrapping
// ErrShortBody, never a short silent read.
//
// Plain HTTP cannot list, so List returns those of the PEFT file names
// adapter_config.json, adapter_model.safetensors and adapter_model.bin
// directly under the prefix's directory that exist (one HEAD each), plus
// the prefix itself when it names an object (a .gguf file). A listed
// adapter_model.bin is pickle, which callers should refuse to load. The HTTP that NewHF returns
// lists through the hub's tree API instead.
//
// Status 404 and 410 become errors wrapping ErrNotFound, 401 and 403
// errors wrapping ErrAuth, and failures to connect errors wrapping
// ErrUnreachable.
type HTTP struct {
	base   string       // file URL prefix, ending in "/"
	uri    string       // the store's URI for messages
	client *http.Client // never nil
	token  string       // bearer token sent with every request; "" for none
	hub    *hubRepo     // non-nil for a Hugging Face hub repository
	err    error        // why the base URL is unusable; returned by every method
}

// NewHTTP returns the read-only store of the files under baseURL, an
// http or https URL ("/" is appended when missing). A nil client means
// one with short connect and response-header timeouts and no overall
// timeout. A malformed baseURL makes every method fail with an error
// wrapping ErrBadName.
func NewHTTP(baseURL string, client *http.Client) *HTTP {
	h := &HTTP{base: baseURL, uri: baseURL, client: orDefaultClient(client)}
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		h.err = fmt.Errorf("store: %w: %v", ErrBadName, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		h.err = fmt.Errorf("store: %q: %w: not an http(s) URL", baseURL, ErrBadName)
	case u.RawQuery != "" || u.Fragment != "":
		h.err = fmt.Errorf("store: %q: %w: a base URL takes no query or fragment", baseURL, ErrBadName)
	}
	if !strings.HasSuffix(h.base, "/") {
		h.base += "/"
	}
	return h
}

// String returns the store's URI.
func (h *HTTP) String() string { return h.uri }

// orDefaultClient returns c, or a new client when c is nil; one is made per store that is given no client, so that
// no state is shared between stores.
func orDefaultClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}

// objectURL returns the URL of the named object, each segment escaped.
func (h *HTTP) objectURL(name string) string {
	return h.base + escapePath(name)
}

// do sends a request for the named object (for messages) and maps
// transport errors and error statuses; on success the caller owns the
// response body. With follow false, a redirect is returned as it is
// instead of being followed.
func (h *HTTP) do(ctx context.Context, method, u, name string, follow bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %s: %w", h, name, err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "switchyard")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	client := h.client
	if !follow {
		c := *h.client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		client = &c
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, h.netError(name, err)
	}
	if resp.StatusCode/100 == 2 || !follow && resp.StatusCode/100 == 3 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, h.statusError(name, resp)
}

// netError wraps a failed request, adding ErrUnreachable when no
// connection could be made.
func (h *HTTP) netError(name string, err error) error {
	where := h.String()
	if name != "" {
		where += ": " + name
	}
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("store: %s: %w: %w", where, ErrUnreachable, err)
	}
	return fmt.Errorf("store: %s: %w", where, err)
}

// statusError describes an error response.
func (h *HTTP) statusError(name string, resp *http.Response) error {
	where := h.String()
	if name != "" {
		where += ": " + name
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	detail := resp.Status
	if code := resp.Header.Get("X-Error-Code"); code != "" {
		detail += " (" + code + ")"
	}
	if msg := strings.TrimSpace(string(body)); msg != "" && isText(msg) {
		detail += ": " + msg
	}
	hint := ""
	if h.hub != nil && h.token == "" {
		hint = "; set HF_TOKEN for private or gated repositories"
	}
	switch code := resp.Header.Get("X-Error-Code"); {
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone,
		code == "RepoNotFound", code == "EntryNotFound", code == "RevisionNotFound":
		// The hub answers 401 RepoNotFound for a repository that does
		// not exist or that the token cannot see.
		return fmt.Errorf("store: %s: %w: %s%s", where, ErrNotFound, detail, hint)
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("store: %s: %w: %s%s", where, ErrAuth, detail, hint)
	}
	return fmt.Errorf("store: %s: %s", where, detail)
}

// isText reports whether an error body is worth quoting (not HTML or
// binary).
func isText(s string) bool {
	if strings.HasPrefix(s, "<") {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// Get downloads the named file.
func (h *HTTP) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := h.check(name); err != nil {
		return nil, err
	}
	resp, err := h.do(ctx, http.MethodGet, h.objectURL(name), name, true)
	if err != nil {
		return nil, err
	}
	body := &httpBody{r: newExactReader(resp.Body, resp.ContentLength), where: h.String() + ": " + name}
	return readCloser{body, resp.Body}, nil
}

// httpBody names the object in read errors.
type httpBody struct {
	r     io.Reader
	where string
}

func (b *httpBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("store: %s: %w", b.where, err)
	}
	return n, err
}

// Put returns an error wrapping ErrReadOnly.
func (h *HTTP) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return fmt.Errorf("store: %s: put %s: %w", h, name, ErrReadOnly)
}

// Delete returns an error wrapping ErrReadOnly.
func (h *HTTP) Delete(ctx context.Context, name string) error {
	return fmt.Errorf("store: %s: delete %s: %w", h, name, ErrReadOnly)
}

// Stat sends a HEAD request for the named file. Size is the
// Content-Length (-1 when the server does not say), ModTime the
// Last-Modified time and ETag the ETag without quotes. For a hub
// repository, a redirect that carries X-Linked-Size and X-Linked-Etag
// (the hub's answer for a file stored in LFS or Xet) is read without
// following it: the CDN's signed URL may accept GET only.
func (h *HTTP) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := h.check(name); err != nil {
		return ObjectInfo{}, err
	}
	u := h.objectURL(name)
	resp, err := h.do(ctx, http.MethodHead, u, name, h.hub == nil)
	if err != nil {
		return ObjectInfo{}, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		size, err := strconv.ParseInt(resp.Header.Get("X-Linked-Size"), 10, 64)
		if err == nil && size >= 0 {
			return ObjectInfo{Name: name, Size: size, ETag: unquoteETag(resp.Header.Get("X-Linked-Etag"))}, nil
		}
		if resp, err = h.do(ctx, http.MethodHead, u, name, true); err != nil {
			return ObjectInfo{}, err
		}
		resp.Body.Close()
	}
	info := ObjectInfo{Name: name, Size: resp.ContentLength, ETag: unquoteETag(resp.Header.Get("ETag"))}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = t
	}
	return info, nil
}

func unquoteETag(s string) string {
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// List returns the objects under prefix: from the hub's tree API for a
// hub repository, otherwise those of the well-known PEFT files in the prefix's
// directory (and the prefix itself when it names a file) that answer a
// HEAD request.
func (h *HTTP) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if h.err != nil {
		return nil, h.err
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	if h.hub != nil {
		return h.hubList(ctx, prefix)
	}
	dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	var names []string
	if prefix != dir && ValidName(prefix) == nil {
		names = append(names, prefix)
	}
	for _, f := range wellKnownFiles {
		if n := dir + f; strings.HasPrefix(n, prefix) && n != prefix {
			names = append(names, n)
		}
	}
	var out []ObjectInfo
	for _, n := range names {
		info, err := h.Stat(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sortInfos(out)
	return out, nil
}

// check returns the store's own error or the name's.
func (h *HTTP) check(name string) error {
	if h.err != nil {
		return h.err
	}
	return ValidName(name)
}
