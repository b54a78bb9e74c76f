package store

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string    // slash-separated name relative to the store's root
	Size    int64     // length in bytes
	ModTime time.Time // last modification; zero when the store does not say
	ETag    string    // an opaque version tag (S3 ETag, HF oid); empty when the store has none
}

// Store keeps objects (an adapter's files) under slash-separated names
// relative to the store's root. Names must pass ValidName; every method
// returns an error wrapping ErrBadName for one that does not.
// Implementations are safe for concurrent use.
type Store interface {
	// Get opens the named object for reading. The caller closes it.
	// The error wraps ErrNotFound when the object does not exist. A
	// body that ends before the object's size is an error from Read,
	// never a short silent read.
	Get(ctx context.Context, name string) (io.ReadCloser, error)

	// Put stores size bytes read from r under name, replacing any
	// object already there. It is atomic: readers see either the old
	// object or the whole new one, never a partial one. A reader that
	// yields fewer or more than size bytes is an error and stores
	// nothing; size -1 means unknown. Read-only stores return an
	// error wrapping ErrReadOnly.
	Put(ctx context.Context, name string, r io.Reader, size int64) error

	// Stat describes the named object; the error wraps ErrNotFound
	// when it does not exist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)

	// List describes the objects whose name starts with prefix
	// (plain string prefix, "" for all), sorted by name.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// Delete removes the named object; the error wraps ErrNotFound
	// when it does not exist and ErrReadOnly for read-only stores.
	Delete(ctx context.Context, name string) error
}

// Options configures the remote stores Open and the New functions make.
// A nil *Options means OptionsFromEnv().
type Options struct {
	// S3Endpoint is the S3 server as host:port or a URL
	// (http://host:port selects plain HTTP as S3Insecure does). Empty
	// means AWS (s3.amazonaws.com).
	S3Endpoint string
	// S3AccessKey and S3SecretKey are static credentials; both empty
	// means anonymous access.
	S3AccessKey, S3SecretKey string
	// S3Region is the bucket's region; empty lets the client find it.
	S3Region string
	// S3Insecure speaks plain HTTP to S3Endpoint instead of HTTPS.
	S3Insecure bool

	// HFEndpoint is the Hugging Face hub; empty means
	// https://huggingface.co.
	HFEndpoint string
	// HFToken, when set, is sent as "Authorization: Bearer HFToken" to
	// the hub.
	HFToken string

	// HTTPClient makes the HTTP(S) and hub requests, and its Transport
	// carries the S3 requests. nil gives each store its own client with
	// short connect and response-header timeouts; pass one to share
	// connections among many stores.
	HTTPClient *http.Client
}

// OptionsFromEnv returns Options read from the environment:
// AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION (or AWS_DEFAULT_REGION), HF_ENDPOINT
// and HF_TOKEN (or HUGGING_FACE_HUB_TOKEN). It is the only function in
// the package that reads the environment.
func OptionsFromEnv() *Options {
	o := &Options{
		S3Endpoint:  firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		S3AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		S3SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		S3Region:    firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"),
		HFEndpoint:  os.Getenv("HF_ENDPOINT"),
		HFToken:     firstEnv("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
	}
	return o
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// orEnv returns o, or OptionsFromEnv() when o is nil.
func orEnv(o *Options) *Options {
	if o == nil {
		return OptionsFromEnv()
	}
	return o
}

// sortInfos sorts objects by name, as List returns them.
func sortInfos(infos []ObjectInfo) {
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
}
