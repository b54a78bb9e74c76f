package adapters

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-ai/switchyard/model"
)

// Version is the metadata of one registered adapter version. The
// Registry stores it; the Cache uses it to find and check the files.
type Version struct {
	Name    string `json:"name"`
	Version int    `json:"version"` // 1, 2, ...; never reused for a name, even after Delete

	Base            string `json:"base"`             // the base model's name, as the Registry was opened with
	BaseFingerprint string `json:"base_fingerprint"` // Fingerprint of the base model's config
	Arch            string `json:"arch"`             // the base model's architecture

	Format  string   `json:"format"`  // "peft" or "gguf"
	Rank    int      `json:"rank"`    // the largest rank of any projection
	Ranks   []int    `json:"ranks"`   // the distinct ranks, ascending (rank_pattern can make several)
	Targets []string `json:"targets"` // projections with LoRA weights, e.g. ["q_proj", "v_proj"]

	Bytes       int64     `json:"bytes"`        // size of the files (tiers 1-3)
	TensorBytes int64     `json:"tensor_bytes"` // size of the compute-ready weights (tier 0)
	SHA256      string    `json:"sha256"`       // Digest of Files
	Files       []File    `json:"files"`        // sorted by Name
	Source      string    `json:"source"`       // the URI it was registered from
	Created     time.Time `json:"created"`
}

// File is one file of an adapter version, stored content-addressed by
// its SHA-256.
type File struct {
	Name   string `json:"name"` // e.g. "adapter_model.safetensors"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// Files holds an adapter's files in memory by name: tier 1 of the Cache.
type Files map[string][]byte

// Size returns the total bytes of the files.
func (f Files) Size() int64 {
	var n int64
	for _, b := range f {
		n += int64(len(b))
	}
	return n
}

// Key returns "name@version", the Version's key in the registry and the
// cache.
func (v *Version) Key() string { return v.Name + "@" + strconv.Itoa(v.Version) }

// Ref returns the Ref of exactly this version.
func (v *Version) Ref() Ref { return Ref{Name: v.Name, Version: v.Version} }

// Digest returns the SHA-256 of an adapter's files taken together: of the
// lines "<sha256 hex>  <name>\n" (sha256sum's format) sorted by name. Two
// versions with the same files have the same digest.
func Digest(files []File) string {
	files = slices.SortedFunc(slices.Values(files), func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s  %s\n", f.SHA256, f.Name)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Fingerprint returns a short hash of the parts of a base model's
// configuration an adapter depends on: architecture and every width that
// a LoRA tensor's shape is made of. Two bases with the same fingerprint
// accept the same adapters.
func Fingerprint(c *model.Config) string {
	s := fmt.Sprintf("arch=%s hidden=%d intermediate=%d layers=%d heads=%d kv_heads=%d head_dim=%d vocab=%d",
		c.Arch, c.Hidden, c.Intermediate, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Vocab)
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// checkFiles verifies that files are exactly those of v (names, sizes and
// SHA-256); where says where they came from, for the error, which wraps
// ErrChecksum.
func (v *Version) checkFiles(files Files, where string) error {
	if len(files) != len(v.Files) {
		return fmt.Errorf("adapters: %s from %s: %w: %d files, want %d", v.Key(), where, ErrChecksum, len(files), len(v.Files))
	}
	for _, f := range v.Files {
		b, ok := files[f.Name]
		if !ok {
			return fmt.Errorf("adapters: %s from %s: %w: %s missing", v.Key(), where, ErrChecksum, f.Name)
		}
		if err := checkBlob(f, b); err != nil {
			return fmt.Errorf("adapters: %s from %s: %w", v.Key(), where, err)
		}
	}
	return nil
}

// checkBlob verifies one file's size and SHA-256. The error wraps
// ErrChecksum.
func checkBlob(f File, b []byte) error {
	if int64(len(b)) != f.Size {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrChecksum, f.Name, len(b), f.Size)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, f.Name, got, f.SHA256)
	}
	return nil
}
