package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, d)
	// No temporary files are left behind, even by the failed Puts.
	filepath.WalkDir(d.Root(), func(p string, e os.DirEntry, err error) error {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestNewDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewDir(filepath.Join(dir, "missing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("NewDir(missing): err = %v, want ErrNotFound", err)
	}
	if _, err := NewDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("NewDir(file): err = %v, want not a directory", err)
	}
	t.Chdir(dir)
	d, err := NewDir(".")
	if err != nil || d.Root() != dir && !strings.HasSuffix(d.Root(), filepath.Base(dir)) {
		t.Errorf("NewDir(.) = %v, %v; want root %s", d, err, dir)
	}
}

// TestDirSymlinks checks that links inside the root work and links out
// of it are refused, for reading, writing and listing.
func TestDirSymlinks(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "real"), 0o755)
	os.WriteFile(filepath.Join(root, "real", "f.json"), []byte("{}"), 0o644)
	for link, target := range map[string]string{
		"esc-dir":  outside,                            // absolute, out
		"esc-rel":  "../" + filepath.Base(outside),     // relative, out
		"esc-file": filepath.Join(outside, "secret"),   // a file out
		"in-dir":   "real",                             // relative, in
		"in-file":  "real/f.json",                      // relative, in
		"abs-in":   filepath.Join(root, "real/f.json"), // absolute: os.Root refuses it
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"esc-dir/secret", "esc-rel/secret", "esc-file", "abs-in"} {
		if _, err := d.Get(ctx, name); !errors.Is(err, ErrBadName) {
			t.Errorf("Get(%q): err = %v, want ErrBadName", name, err)
		}
		if _, err := d.Stat(ctx, name); !errors.Is(err, ErrBadName) {
			t.Errorf("Stat(%q): err = %v, want ErrBadName", name, err)
		}
	}
	if err := d.Put(ctx, "esc-dir/planted", strings.NewReader("x"), 1); !errors.Is(err, ErrBadName) {
		t.Errorf("Put through an escaping link: err = %v, want ErrBadName", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Errorf("Put wrote outside the root")
	}
	if err := d.Delete(ctx, "esc-dir/secret"); !errors.Is(err, ErrBadName) {
		t.Errorf("Delete through an escaping link: err = %v, want ErrBadName", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("Delete removed a file outside the root")
	}
	for _, name := range []string{"in-dir/f.json", "in-file"} {
		if got, err := getAll(t, d, name); err != nil || string(got) != "{}" {
			t.Errorf("Get(%q) = %q, %v; want {}", name, got, err)
		}
	}
	list, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// Links to files inside are listed; links to directories are not
	// followed; links out are skipped.
	if want := []string{"in-file", "real/f.json"}; !slices.Equal(names(list), want) {
		t.Errorf("List = %q, want %q", names(list), want)
	}
}

// TestDirSkipsTemporaryFiles checks that an interrupted Put's leftover
// is not listed.
func TestDirSkipsTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, tmpPrefix+"x-0123"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(root, "x"), []byte("whole"), 0o644)
	d, _ := NewDir(root)
	list, err := d.List(context.Background(), "")
	if err != nil || !slices.Equal(names(list), []string{"x"}) {
		t.Errorf("List = %q, %v; want [x]", names(list), err)
	}
}

func TestDirNotRegular(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	d, _ := NewDir(root)
	if _, err := d.Get(ctx, "sub"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(dir): err = %v, want ErrNotFound", err)
	}
	if _, err := d.Stat(ctx, "sub"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(dir): err = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "sub"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(dir): err = %v, want ErrNotFound", err)
	}
}
