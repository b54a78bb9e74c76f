package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// tmpPrefix starts the names of Put's temporary files. List skips files
// whose base name starts with it, so a Put interrupted by a crash never
// shows up as an object.
const tmpPrefix = ".switchyard-tmp-"

// Dir is a Store of files under a local directory, which may be a
// network (NFS) mount: object "a/b" is the file root/a/b. Put writes a
// temporary file in the target's directory, fsyncs it, renames it into
// place and fsyncs the directory, so readers see the old or the new file
// and never a partial one; no file locks are taken. Every operation goes
// through os.Root, so no name, not even through a symbolic link, reaches
// outside the root; such a name gets an error wrapping ErrBadName.
// Symbolic links are followed when they are relative and stay inside the
// root; os.Root treats every absolute link as leaving it.
//
// ETag is the file's modification time and size in hex, which changes
// whenever Put replaces the file.
type Dir struct {
	root string // absolute, cleaned
}

// NewDir returns the Dir rooted at the existing directory root (made
// absolute). The error wraps ErrNotFound when root does not exist.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: dir %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: dir %s: %w", abs, ErrNotFound)
		}
		return nil, fmt.Errorf("store: dir %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: dir %s: not a directory", abs)
	}
	return &Dir{root: abs}, nil
}

// Root returns the directory's absolute path.
func (d *Dir) Root() string { return d.root }

// String returns the file:// URI of the directory.
func (d *Dir) String() string { return "file://" + filepath.ToSlash(d.root) }

// open opens the root for one operation. Opening it per operation keeps
// Dir free of file descriptors to close and survives the directory being
// replaced (a remounted NFS share).
func (d *Dir) open(ctx context.Context) (*os.Root, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", d, err)
	}
	r, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, d.fail("", err)
	}
	return r, nil
}

// fail wraps err from the file system with the store and object name,
// mapping a missing file to ErrNotFound and an escape through a symbolic
// link to ErrBadName.
func (d *Dir) fail(name string, err error) error {
	where := d.String()
	if name != "" {
		where += ": " + name
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: %s: %w", where, ErrNotFound)
	case escapes(err):
		return fmt.Errorf("store: %s: %w: resolves outside the store's root", where, ErrBadName)
	}
	return fmt.Errorf("store: %s: %w", where, err)
}

// escapes reports whether err is os.Root refusing a path that leaves the
// root (through ".." or an absolute target in a symbolic link). The os
// package does not export that error, so its text is matched.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// Get opens the named file.
func (d *Dir) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	r, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(name)
	if err != nil {
		return nil, d.fail(name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, d.fail(name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("store: %s: %s: %w (not a regular file)", d, name, ErrNotFound)
	}
	return f, nil
}

// Put writes the file atomically: temporary file, fsync, rename, fsync
// of the directory. Missing parent directories are created.
func (d *Dir) Put(ctx context.Context, name string, src io.Reader, size int64) (err error) {
	if err := ValidName(name); err != nil {
		return err
	}
	r, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	dir := path.Dir(name)
	if dir != "." {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return d.fail(name, err)
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(dir, tmpPrefix+path.Base(name)+"-"+hex.EncodeToString(rnd[:]))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return d.fail(name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			r.Remove(tmp)
		}
	}()
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(f, ctxReader{ctx, newExactReader(src, size)}, buf); err != nil {
		return fmt.Errorf("store: %s: put %s: %w", d, name, err)
	}
	if err := f.Sync(); err != nil {
		return d.fail(name, err)
	}
	if err := f.Close(); err != nil {
		return d.fail(name, err)
	}
	if err := r.Rename(tmp, name); err != nil {
		return d.fail(name, err)
	}
	// Make the rename durable. Some file systems cannot fsync a
	// directory (EINVAL); the rename has happened either way.
	if df, err := r.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return nil
}

// Stat describes the named file.
func (d *Dir) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ValidName(name); err != nil {
		return ObjectInfo{}, err
	}
	r, err := d.open(ctx)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer r.Close()
	fi, err := r.Stat(name)
	if err != nil {
		return ObjectInfo{}, d.fail(name, err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("store: %s: %s: %w (not a regular file)", d, name, ErrNotFound)
	}
	return dirInfo(name, fi), nil
}

func dirInfo(name string, fi fs.FileInfo) ObjectInfo {
	return ObjectInfo{
		Name:    name,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size()),
	}
}

// List walks the directory below prefix. Symbolic links to files inside
// the root are listed as the files they point to; links to directories
// are not followed, and links that leave the root are skipped.
func (d *Dir) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	r, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// Walk only the deepest directory the prefix names in full.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var out []ObjectInfo
	err = fs.WalkDir(r.FS(), start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			// Skip directories that cannot hold a match.
			if p != start && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(p, prefix) || strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		fi, err := r.Stat(p) // follows in-root links
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || escapes(err) {
				return nil // vanished, dangling or escaping link
			}
			return err
		}
		if fi.Mode().IsRegular() {
			out = append(out, dirInfo(p, fi))
		}
		return nil
	})
	if err != nil {
		return nil, d.fail(prefix, err)
	}
	sortInfos(out)
	return out, nil
}

// Delete removes the named file. Emptied parent directories are left in
// place, so a concurrent Put into them never fails.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	r, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Lstat(name)
	if err != nil {
		return d.fail(name, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("store: %s: %s: %w (a directory)", d, name, ErrNotFound)
	}
	if err := r.Remove(name); err != nil {
		return d.fail(name, err)
	}
	return nil
}
