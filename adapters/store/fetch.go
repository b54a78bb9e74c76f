package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Fetch copies every object under prefix from src into the local
// directory dst (created if missing), the part of each name after prefix
// becoming its path under dst; it returns the number of bytes copied.
// Each file is written as Dir.Put writes it (temporary file, fsync,
// rename), so dst never holds a partial file, and each must have the
// size src listed for it. When prefix is the whole name of one object
// (a single-file adapter such as "dir/lora.gguf"), that object is
// copied to its base name under dst. A prefix with no objects under it is an error
// wrapping ErrNotFound. On error the files already copied stay in dst; to
// make the whole adapter appear at once, fetch into a temporary directory
// and rename it. Fetch is how an adapter is materialised on local disk
// for loading.
func Fetch(ctx context.Context, src Store, prefix, dst string) (int64, error) {
	objs, err := src.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	if len(objs) == 0 {
		return 0, fmt.Errorf("store: fetch %s%s: %w: no objects under the prefix", storeName(src), prefix, ErrNotFound)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, fmt.Errorf("store: fetch into %s: %w", dst, err)
	}
	out, err := NewDir(dst)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, o := range objs {
		rel, ok := strings.CutPrefix(o.Name, prefix)
		if rel == "" {
			rel = path.Base(o.Name) // prefix names one object, such as a .gguf file
		}
		if !ok {
			return total, fmt.Errorf("store: fetch %s: listed %q outside prefix %q", storeName(src), o.Name, prefix)
		}
		if err := ValidName(rel); err != nil {
			return total, fmt.Errorf("store: fetch %s: %w", storeName(src), err)
		}
		n, err := fetchOne(ctx, src, o, out, rel)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func fetchOne(ctx context.Context, src Store, o ObjectInfo, out *Dir, rel string) (int64, error) {
	body, err := src.Get(ctx, o.Name)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	cr := &countReader{r: body}
	if err := out.Put(ctx, rel, cr, o.Size); err != nil {
		return cr.n, fmt.Errorf("store: fetch %s%s: %w", storeName(src), o.Name, err)
	}
	return cr.n, nil
}

// storeName returns a store's URI for messages, when it has one.
func storeName(s Store) string {
	if st, ok := s.(fmt.Stringer); ok {
		return st.String() + ": "
	}
	return ""
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
