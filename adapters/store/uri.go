package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// singleFileExt marks the last segment of an s3://, http(s):// or hf://
// URI as one adapter file (a GGUF LoRA) rather than a directory.
const singleFileExt = ".gguf"

// hasKnownScheme reports whether uri starts with "scheme:" for a scheme
// Open understands.
func hasKnownScheme(uri string) bool {
	s, _, ok := strings.Cut(uri, ":")
	switch strings.ToLower(s) {
	case "file", "s3", "http", "https", "hf":
		return ok
	}
	return false
}

// IsRegistryName reports whether uri is a plain adapter name for a
// registry to resolve ("sql-writer") rather than a location: it has no
// scheme and no "/" or backslash, and is not "." or "..".
func IsRegistryName(uri string) bool {
	return uri != "" && uri != "." && uri != ".." && !hasKnownScheme(uri) &&
		!strings.ContainsAny(uri, "/\\")
}

// Open parses an adapter URI and returns the store that holds the
// adapter and the prefix of the adapter's objects inside it:
//
//	file:///abs/dir           Dir rooted at /abs/dir, prefix ""
//	file:///abs/lora.gguf     Dir rooted at /abs, prefix "lora.gguf"
//	/abs/dir, rel/dir, ./dir  as file://, made absolute
//	s3://bucket               S3 store of bucket, prefix ""
//	s3://bucket/a/b           S3 store of bucket, prefix "a/b/"
//	s3://bucket/a/lora.gguf   S3 store of bucket, prefix "a/lora.gguf"
//	https://host/a/b          HTTP store at https://host/a/b/, prefix ""
//	https://host/a/lora.gguf  HTTP store at https://host/a/, prefix "lora.gguf"
//	hf://org/repo             hub store of org/repo at "main", prefix ""
//	hf://org/repo@v1/sub      hub store of org/repo at "v1", prefix "sub/"
//
// A prefix that does not end in "/" names one object, a single-file
// adapter. A file:// or bare path is cleaned lexically ("/a/b/../c" is
// "/a/c") and must name an existing directory or file; a relative path
// is relative to the working directory. s3:// and hf:// paths and http
// URL paths may not have "..", "." or empty segments: object stores have
// no directories to resolve them against. A revision with "/" is written
// escaped: hf://org/repo@refs%2Fpr%2F1.
//
// A registry name (see IsRegistryName), an unknown scheme, a missing
// bucket or repository and a malformed name give errors wrapping
// ErrBadName. nil opts means OptionsFromEnv(). For s3:// Open contacts
// the endpoint (see NewS3); the other stores make no request.
func Open(ctx context.Context, uri string, opts *Options) (Store, string, error) {
	return open(ctx, uri, orEnv(opts))
}

func open(ctx context.Context, uri string, opts *Options) (Store, string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("store: adapter URI %q: %w: %s", uri, ErrBadName, fmt.Sprintf(format, args...))
	}
	if uri == "" {
		return nil, "", bad("empty")
	}
	for _, r := range uri {
		if r < 0x20 || r == 0x7f {
			return nil, "", bad("control character %U", r)
		}
	}
	scheme, rest, hasScheme := strings.Cut(uri, "://")
	if !hasScheme && hasKnownScheme(uri) {
		return nil, "", bad("want %s://...", uri[:strings.IndexByte(uri, ':')])
	}
	if !hasScheme {
		if IsRegistryName(uri) {
			return nil, "", bad("a registry name, not a location (use ./%s for a directory)", uri)
		}
		return openFile(uri, uri)
	}
	switch strings.ToLower(scheme) {
	case "file":
		u, err := url.Parse(uri)
		if err != nil {
			return nil, "", bad("%v", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", bad("file URIs name local paths (file:///abs/path), not host %q", u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, "", bad("want file:///absolute/path")
		}
		return openFile(uri, u.Path)
	case "s3":
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, "", bad("missing bucket (want s3://bucket/prefix)")
		}
		if strings.ContainsAny(rest, "?#") {
			return nil, "", bad("s3 URIs take no query or fragment")
		}
		prefix, err := objectPrefix(key) // keys are literal, as in the AWS CLI
		if err != nil {
			return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
		}
		s, err := NewS3(ctx, "", bucket, opts)
		if err != nil {
			return nil, "", err
		}
		return s, prefix, nil
	case "http", "https":
		u, err := url.Parse(uri)
		if err != nil {
			return nil, "", bad("%v", err)
		}
		if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, "", bad("want %s://host/path without user, query or fragment", scheme)
		}
		p := strings.Trim(u.Path, "/")
		var prefix string
		if p != "" {
			if err := checkPath(p); err != nil {
				return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
			}
			if strings.HasSuffix(p, singleFileExt) {
				p, prefix = path.Dir(p), path.Base(p)
				if p == "." {
					p = ""
				}
			}
		}
		base := u.Scheme + "://" + u.Host + "/"
		if p != "" {
			base += escapePath(p) + "/"
		}
		return NewHTTP(base, opts.HTTPClient), prefix, nil
	case "hf":
		return openHF(uri, rest, opts)
	}
	return nil, "", bad("unknown scheme %q (want file, s3, http, https or hf)", scheme)
}

// openFile opens a local path as a Dir: the directory itself, or the
// parent of a single file.
func openFile(uri, p string) (Store, string, error) {
	abs, err := filepath.Abs(filepath.FromSlash(p)) // also cleans
	if err != nil {
		return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("store: adapter URI %q: %s: %w", uri, abs, ErrNotFound)
		}
		return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
	}
	if fi.IsDir() {
		d, err := NewDir(abs)
		return d, "", err
	}
	d, err := NewDir(filepath.Dir(abs))
	return d, filepath.Base(abs), err
}

// objectPrefix turns the path part of an s3:// or hf:// URI into a List
// prefix: "" stays "", a single file keeps its name, a directory gains
// "/". A trailing "/" is allowed.
func objectPrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if err := checkPath(p); err != nil {
		return "", err
	}
	if strings.HasSuffix(p, singleFileExt) {
		return p, nil
	}
	return p + "/", nil
}

// openHF parses the part of an hf:// URI after the scheme:
// org/repo[@revision][/subdir].
func openHF(uri, rest string, opts *Options) (Store, string, error) {
	if strings.ContainsAny(rest, "?#") {
		return nil, "", fmt.Errorf("store: adapter URI %q: %w: hf URIs take no query or fragment", uri, ErrBadName)
	}
	segs := strings.SplitN(rest, "/", 3)
	if len(segs) < 2 || segs[0] == "" || segs[1] == "" {
		return nil, "", fmt.Errorf("store: adapter URI %q: %w: missing repository (want hf://org/repo[@revision][/subdir])", uri, ErrBadName)
	}
	name, rev, hasRev := strings.Cut(segs[1], "@")
	if hasRev {
		var err error
		if rev, err = url.PathUnescape(rev); err != nil || rev == "" {
			return nil, "", fmt.Errorf("store: adapter URI %q: %w: bad revision after @", uri, ErrBadName)
		}
		if err := checkRevision(rev); err != nil {
			return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
		}
	}
	repo := segs[0] + "/" + name
	if err := checkHubRepo(repo); err != nil {
		return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
	}
	var prefix string
	if len(segs) == 3 {
		sub, err := url.PathUnescape(segs[2])
		if err != nil {
			return nil, "", fmt.Errorf("store: adapter URI %q: %w: %v", uri, ErrBadName, err)
		}
		if prefix, err = objectPrefix(sub); err != nil {
			return nil, "", fmt.Errorf("store: adapter URI %q: %w", uri, err)
		}
	}
	h := NewHF(repo, rev, opts)
	if h.err != nil {
		return nil, "", h.err
	}
	return h, prefix, nil
}
