package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// DefaultHFEndpoint is the Hugging Face hub NewHF uses when
// Options.HFEndpoint is empty.
const DefaultHFEndpoint = "https://huggingface.co"

// hubRepo is a model repository on a Hugging Face hub at one revision.
type hubRepo struct {
	endpoint string // without trailing "/"
	repo     string // "org/name"
	revision string // branch, tag or commit, unescaped
}

// hubRepoName matches one part of a hub repository id.
var hubRepoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

// checkHubRepo checks a repository id "org/name".
func checkHubRepo(repo string) error {
	org, name, ok := strings.Cut(repo, "/")
	if !ok || !hubRepoName.MatchString(org) || !hubRepoName.MatchString(name) ||
		strings.Contains(repo, "..") || strings.Contains(repo, "--") {
		return fmt.Errorf("%w: hub repository %q is not of the form org/name", ErrBadName, repo)
	}
	return nil
}

// checkRevision checks a hub revision: a branch, tag or commit, which
// may have slashes ("refs/pr/1") but no empty, "." or ".." segments.
func checkRevision(rev string) error {
	if err := checkPath(rev); err != nil {
		return fmt.Errorf("revision %q: %w", rev, err)
	}
	return nil
}

// NewHF returns the read-only store of a Hugging Face hub model
// repository ("org/name") at revision (a branch, tag or commit; ""
// means "main"). Files come from
// {endpoint}/{repo}/resolve/{revision}/{path}, where the hub redirects
// large files to its CDN, and List reads
// {endpoint}/api/models/{repo}/tree/{revision}/{dir}?recursive=true,
// following its pagination. opts gives the endpoint (HFEndpoint, default
// DefaultHFEndpoint), the token sent as "Authorization: Bearer" and the
// HTTP client; nil opts means OptionsFromEnv(). An invalid repository,
// revision or endpoint makes every method fail with an error wrapping
// ErrBadName. ETag is the file's LFS sha256 where it has one, otherwise
// its git blob id (List) or the hub's ETag header (Stat).
func NewHF(repo, revision string, opts *Options) *HTTP {
	opts = orEnv(opts)
	if revision == "" {
		revision = "main"
	}
	endpoint := strings.TrimRight(opts.HFEndpoint, "/")
	if endpoint == "" {
		endpoint = DefaultHFEndpoint
	}
	hub := &hubRepo{endpoint: endpoint, repo: repo, revision: revision}
	h := &HTTP{
		uri:    "hf://" + repo + "@" + url.PathEscape(revision),
		client: orDefaultClient(opts.HTTPClient),
		token:  opts.HFToken,
		hub:    hub,
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		h.err = fmt.Errorf("store: hub endpoint %q: %w: not an http(s) URL", endpoint, ErrBadName)
	default:
		if err := checkHubRepo(repo); err != nil {
			h.err = fmt.Errorf("store: %w", err)
		} else if err := checkRevision(revision); err != nil {
			h.err = fmt.Errorf("store: %s: %w", repo, err)
		}
	}
	h.base = endpoint + "/" + repo + "/resolve/" + url.PathEscape(revision) + "/"
	return h
}

// hubEntry is one element of the hub's tree API response.
type hubEntry struct {
	Type string `json:"type"` // "file" or "directory"
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// hubList lists the repository's files under prefix with the tree API.
func (h *HTTP) hubList(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	dir := strings.TrimSuffix(prefix[:strings.LastIndexByte(prefix, '/')+1], "/")
	next := h.hub.endpoint + "/api/models/" + h.hub.repo + "/tree/" + url.PathEscape(h.hub.revision)
	if dir != "" {
		next += "/" + escapePath(dir)
	}
	next += "?recursive=true"
	var out []ObjectInfo
	for page := 0; next != ""; page++ {
		if page == 10000 {
			return nil, fmt.Errorf("store: %s: list %s: too many pages", h, prefix)
		}
		entries, link, err := h.hubPage(ctx, next, prefix)
		if err != nil {
			if page == 0 && dir != "" && isEntryNotFound(err) {
				return nil, nil // no such directory: nothing under prefix
			}
			return nil, err
		}
		for _, e := range entries {
			if e.Type != "file" || !strings.HasPrefix(e.Path, prefix) || ValidName(e.Path) != nil {
				continue
			}
			info := ObjectInfo{Name: e.Path, Size: e.Size, ETag: e.OID}
			if e.LFS != nil {
				info.ETag = e.LFS.OID
				if e.LFS.Size > 0 {
					info.Size = e.LFS.Size
				}
			}
			out = append(out, info)
		}
		next, err = h.nextPage(link)
		if err != nil {
			return nil, err
		}
	}
	sortInfos(out)
	return out, nil
}

// entryNotFoundError marks a tree request for a directory that does not
// exist, as opposed to a missing repository or revision.
type entryNotFoundError struct{ error }

func (e entryNotFoundError) Unwrap() error { return e.error }

func isEntryNotFound(err error) bool {
	_, ok := err.(entryNotFoundError)
	return ok
}

// hubPage fetches and decodes one page of the tree API and returns its
// "next" link header.
func (h *HTTP) hubPage(ctx context.Context, u, prefix string) ([]hubEntry, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("store: %s: list %s: %w", h, prefix, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchyard")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, "", h.netError("list "+prefix, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		notDir := resp.StatusCode == http.StatusNotFound && resp.Header.Get("X-Error-Code") == "EntryNotFound"
		err := h.statusError("list "+prefix, resp)
		if notDir {
			err = entryNotFoundError{err}
		}
		return nil, "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody+1))
	if err != nil {
		return nil, "", h.netError("list "+prefix, err)
	}
	if len(body) > maxAPIBody {
		return nil, "", fmt.Errorf("store: %s: list %s: tree response over %d bytes", h, prefix, maxAPIBody)
	}
	var entries []hubEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, "", fmt.Errorf("store: %s: list %s: bad tree response: %w", h, prefix, err)
	}
	return entries, resp.Header.Get("Link"), nil
}

// nextPage returns the rel="next" URL of a Link header, refusing one on
// another host than the hub's.
func (h *HTTP) nextPage(link string) (string, error) {
	for part := range strings.SplitSeq(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.Trim(strings.TrimSpace(target), "<>")
		base, _ := url.Parse(h.hub.endpoint)
		u, err := base.Parse(target)
		if err != nil || u.Host != base.Host {
			return "", fmt.Errorf("store: %s: bad next-page link %q", h, target)
		}
		return u.String(), nil
	}
	return "", nil
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
