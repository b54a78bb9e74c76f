package fsutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// residentKB returns the kB of the mapping that starts at b that the
// process holds in memory: its Rss in /proc/self/smaps. (mincore would
// not do: it reports the page cache, where dropped pages stay.)
func residentKB(t *testing.T, b []byte) int {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&b[0])))
	lines := strings.Split(string(smaps), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, start) {
			continue
		}
		for _, l := range lines[i+1:] {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "Rss:" {
				kb, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatal(err)
				}
				return kb
			}
		}
	}
	t.Fatalf("no mapping at %s in smaps", start)
	return 0
}

var sink byte

// TestDropPages checks that DropPages lets go of the pages wholly inside
// its slice, keeps the two it shares with the rest of the mapping, and
// loses no data: the bytes read back the same.
func TestDropPages(t *testing.T) {
	page := os.Getpagesize()
	want := make([]byte, 6*page)
	for i := range want {
		want[i] = byte(i*7 + i/page)
	}
	path := filepath.Join(t.TempDir(), "pages")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer UnmapFile(b)
	for i := 0; i < len(b); i += page {
		sink += b[i] // fault every page in
	}
	if got := residentKB(t, b); got != 6*page/1024 {
		t.Skipf("the mapping holds %d kB after reading it all, not %d: not 4 KB pages of a plain file?", got, 6*page/1024)
	}
	if err := DropPages(b[page+100 : 5*page-1]); err != nil {
		t.Fatal(err)
	}
	// Pages 2 and 3 lie wholly inside; 1 and 4 are shared with bytes
	// outside.
	kb := page / 1024
	if got := residentKB(t, b); got != 4*kb {
		t.Errorf("after DropPages the mapping holds %d kB, want %d (6 pages less the 2 inside)", got, 4*kb)
	}
	if !bytes.Equal(b, want) {
		t.Error("the mapping reads differently after DropPages")
	}
	if err := DropPages(b[10:20]); err != nil {
		t.Errorf("DropPages inside one page: %v", err)
	}
	if err := DropPages(nil); err != nil {
		t.Errorf("DropPages(nil): %v", err)
	}
}

func TestWithin(t *testing.T) {
	big := make([]byte, 200)
	whole := big[50:150]
	other := make([]byte, 10)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"all", whole, true},
		{"middle", whole[10:20], true},
		{"end", whole[90:], true},
		{"empty", whole[5:5], false},
		{"other", other, false},
		{"past the end", big[140:160], false},
		{"before the start", big[40:60], false},
	} {
		if got := Within(c.b, whole); got != c.want {
			t.Errorf("%s: Within = %v, want %v", c.name, got, c.want)
		}
	}
	if Within(whole, whole[10:20]) {
		t.Error("a slice is within a part of itself")
	}
}
