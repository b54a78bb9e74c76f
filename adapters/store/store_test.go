package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// randBytes returns n reproducible pseudo-random bytes.
func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// getAll reads the named object whole.
func getAll(t testing.TB, s Store, name string) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(context.Background(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// names returns the names of infos.
func names(infos []ObjectInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

// badNames are refused by ValidName and so by every method of every
// store.
var badNames = []string{
	"", "/etc/passwd", "../../etc", "a/../../etc", "..", ".", "a/./b", "a//b", "a/",
	`a\b`, `..\..\etc`, "a\x00b", "a\nb",
}

// testStore runs the conformance suite for a writable store, which must
// start empty.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	files := map[string][]byte{
		"a/b/c.bin":   randBytes(200<<10, 1),
		"a/x.json":    []byte(`{"r": 8}`),
		"a.txt":       []byte("sorted before a/ by byte order"),
		"top.txt":     []byte("top"),
		"empty":       {},
		"sp ace/é.md": []byte("unicode and space"),
	}
	for name, data := range files {
		if err := s.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put(%q): %v", name, err)
		}
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	testReadStore(t, s, files, "", want)

	t.Run("PrefixIsNotObject", func(t *testing.T) {
		for _, name := range []string{"a", "a/b", "sp ace"} {
			if _, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q), a prefix of objects: err = %v, want ErrNotFound", name, err)
			}
			if _, err := s.Stat(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%q), a prefix of objects: err = %v, want ErrNotFound", name, err)
			}
			if err := s.Delete(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(%q), a prefix of objects: err = %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", want},
			{"a/", []string{"a/b/c.bin", "a/x.json"}},
			{"a/b", []string{"a/b/c.bin"}},
			{"a", []string{"a.txt", "a/b/c.bin", "a/x.json"}},
			{"a/b/c.bin", []string{"a/b/c.bin"}},
			{"nope/", nil},
			{"zzz", nil},
		} {
			got, err := s.List(ctx, tc.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tc.prefix, err)
			}
			if !slices.Equal(names(got), tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, names(got), tc.want)
			}
			for _, o := range got {
				if o.Size != int64(len(files[o.Name])) {
					t.Errorf("List(%q): %s size %d, want %d", tc.prefix, o.Name, o.Size, len(files[o.Name]))
				}
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		before, err := s.Stat(ctx, "top.txt")
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("replaced, and longer")
		if err := s.Put(ctx, "top.txt", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		got, err := getAll(t, s, "top.txt")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("after overwrite Get = %q, %v; want %q", got, err, data)
		}
		after, err := s.Stat(ctx, "top.txt")
		if err != nil {
			t.Fatal(err)
		}
		if after.Size != int64(len(data)) || after.ETag == "" || after.ETag == before.ETag {
			t.Errorf("Stat after overwrite = %+v (before %+v): want new size and ETag", after, before)
		}
	})

	t.Run("PutUnknownSize", func(t *testing.T) {
		data := randBytes(70<<10, 2)
		if err := s.Put(ctx, "unknown/size", bytes.NewReader(data), -1); err != nil {
			t.Fatal(err)
		}
		got, err := getAll(t, s, "unknown/size")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get = %d bytes, %v; want %d bytes", len(got), err, len(data))
		}
	})

	t.Run("PutWrongSize", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			data []byte
			size int64
		}{
			{"short", []byte("12345"), 10},
			{"long", []byte("1234567890"), 5},
		} {
			err := s.Put(ctx, "wrong/"+tc.name, bytes.NewReader(tc.data), tc.size)
			if !errors.Is(err, ErrShortBody) {
				t.Errorf("Put %s reader: err = %v, want ErrShortBody", tc.name, err)
			}
			if _, err := s.Stat(ctx, "wrong/"+tc.name); !errors.Is(err, ErrNotFound) {
				t.Errorf("after failed Put %s: Stat err = %v, want ErrNotFound", tc.name, err)
			}
		}
		// A failed overwrite keeps the old object.
		err := s.Put(ctx, "a/x.json", strings.NewReader("tr"), 100)
		if err == nil {
			t.Fatal("Put with a short reader succeeded")
		}
		if got, _ := getAll(t, s, "a/x.json"); !bytes.Equal(got, files["a/x.json"]) {
			t.Errorf("failed overwrite changed the object to %q", got)
		}
	})

	t.Run("PutReaderError", func(t *testing.T) {
		boom := errors.New("boom")
		r := io.MultiReader(strings.NewReader("partial"), errReader{boom})
		if err := s.Put(ctx, "failing", r, 100); err == nil {
			t.Fatal("Put from a failing reader succeeded")
		}
		if _, err := s.Stat(ctx, "failing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after failed Put: Stat err = %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if err := s.Delete(ctx, "a/b/c.bin"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "a/b/c.bin"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, "a/b/c.bin"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "a/b/c.bin"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: err = %v, want ErrNotFound", err)
		}
		got, err := s.List(ctx, "a/")
		if err != nil || !slices.Equal(names(got), []string{"a/x.json"}) {
			t.Errorf("List(a/) after Delete = %q, %v", names(got), err)
		}
		// The emptied directory can be written again.
		if err := s.Put(ctx, "a/b/c.bin", strings.NewReader("again"), 5); err != nil {
			t.Errorf("Put after Delete: %v", err)
		}
	})

	t.Run("BadNamesWrite", func(t *testing.T) {
		for _, name := range badNames {
			if err := s.Put(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, ErrBadName) {
				t.Errorf("Put(%q): err = %v, want ErrBadName", name, err)
			}
			if err := s.Delete(ctx, name); !errors.Is(err, ErrBadName) {
				t.Errorf("Delete(%q): err = %v, want ErrBadName", name, err)
			}
		}
	})

	t.Run("Atomic", func(t *testing.T) { testAtomic(t, s) })
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// testAtomic overwrites one object with two versions of different
// contents and sizes while readers check that every Get sees one whole
// version.
func testAtomic(t *testing.T, s Store) {
	ctx := context.Background()
	versions := [][]byte{bytes.Repeat([]byte{'a'}, 300<<10), bytes.Repeat([]byte{'b'}, 200<<10)}
	if err := s.Put(ctx, "atomic", bytes.NewReader(versions[0]), int64(len(versions[0]))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ctx.Err() == nil && i < 40; i++ {
			v := versions[i%2]
			if err := s.Put(ctx, "atomic", bytes.NewReader(v), int64(len(v))); err != nil && ctx.Err() == nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
		cancel()
	})
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := getAll(t, s, "atomic")
				if err != nil {
					t.Errorf("Get during overwrites: %v", err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					t.Errorf("Get saw a mix of versions: %d bytes, first %q last %q", len(got), got[:1], got[len(got)-1:])
					return
				}
			}
		})
	}
	wg.Wait()
}

// testReadStore runs the read half of the suite: files are the store's
// objects under prefix (names relative to it), list the names List(prefix)
// must return in full.
func testReadStore(t *testing.T, s Store, files map[string][]byte, prefix string, list []string) {
	ctx := context.Background()
	t.Run("Get", func(t *testing.T) {
		for name, data := range files {
			got, err := getAll(t, s, prefix+name)
			if err != nil {
				t.Errorf("Get(%q): %v", prefix+name, err)
				continue
			}
			if !bytes.Equal(got, data) {
				t.Errorf("Get(%q) = %d bytes, want %d", prefix+name, len(got), len(data))
			}
		}
	})
	t.Run("Stat", func(t *testing.T) {
		for name, data := range files {
			info, err := s.Stat(ctx, prefix+name)
			if err != nil {
				t.Errorf("Stat(%q): %v", prefix+name, err)
				continue
			}
			if info.Name != prefix+name || info.Size != int64(len(data)) {
				t.Errorf("Stat(%q) = %+v, want size %d", prefix+name, info, len(data))
			}
		}
	})
	t.Run("ListAll", func(t *testing.T) {
		got, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), list) {
			t.Errorf("List(%q) = %q, want %q", prefix, names(got), list)
		}
		if !slices.IsSortedFunc(got, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("List(%q) not sorted", prefix)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		for _, name := range []string{"missing", prefix + "missing.json", prefix + "no/such/dir/file"} {
			if _, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q): err = %v, want ErrNotFound", name, err)
			}
			if _, err := s.Stat(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%q): err = %v, want ErrNotFound", name, err)
			}
		}
	})
	t.Run("BadNames", func(t *testing.T) {
		for _, name := range badNames {
			if _, err := s.Get(ctx, name); !errors.Is(err, ErrBadName) {
				t.Errorf("Get(%q): err = %v, want ErrBadName", name, err)
			}
			if _, err := s.Stat(ctx, name); !errors.Is(err, ErrBadName) {
				t.Errorf("Stat(%q): err = %v, want ErrBadName", name, err)
			}
		}
		for _, prefix := range []string{"/abs", "../", "a/../../", "a//", `a\`} {
			if _, err := s.List(ctx, prefix); !errors.Is(err, ErrBadName) {
				t.Errorf("List(%q): err = %v, want ErrBadName", prefix, err)
			}
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		for name := range files {
			if rc, err := s.Get(cctx, prefix+name); err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
				if err == nil {
					t.Errorf("Get(%q) with a canceled context succeeded", prefix+name)
				}
			}
			break
		}
		if _, err := s.List(cctx, prefix); err == nil {
			t.Errorf("List with a canceled context succeeded")
		}
	})
}
