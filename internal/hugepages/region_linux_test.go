package hugepages

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestRegionHugePages checks that a region is mapped with its start on a
// huge page boundary, says it has huge pages when the kernel's
// transparent huge pages are enabled, and then gets them for memory it
// writes. (The kernel may find no free huge page; it compacts memory to
// make one, for a mapping that asked, where its defrag setting says so,
// and only there does the test insist.)
func TestRegionHugePages(t *testing.T) {
	mode, err := os.ReadFile(thpEnabled)
	if err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	enabled := strings.Contains(string(mode), "[always]") || strings.Contains(string(mode), "[madvise]")
	const size = 8 << 20
	r := New(size)
	defer r.Close()
	if r.mapped == nil {
		t.Fatal("New on Linux fell back to the Go heap")
	}
	if r.Huge() != enabled {
		t.Fatalf("Huge() = %v with transparent huge pages %q", r.Huge(), strings.TrimSpace(string(mode)))
	}
	if addr(r.rest)%hugePageSize() != 0 {
		t.Fatalf("the region starts at %#x, not on a %d-byte boundary", addr(r.rest), hugePageSize())
	}
	if !enabled {
		return
	}
	b := r.Take(size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	kb, err := anonHugeKB(addr(b))
	if err != nil {
		t.Fatal(err)
	}
	defrag, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/defrag")
	compacts := strings.Contains(string(defrag), "[always]") || strings.Contains(string(defrag), "[madvise]") ||
		strings.Contains(string(defrag), "[defer+madvise]")
	switch {
	case kb == 0 && compacts:
		t.Errorf("8 MiB written to a region: AnonHugePages 0 kB in its mapping, want huge pages (defrag %q)", strings.TrimSpace(string(defrag)))
	case kb == 0:
		t.Logf("8 MiB written to a region got no huge page; defrag %q does not compact for it", strings.TrimSpace(string(defrag)))
	}
}

// anonHugeKB returns the AnonHugePages of the mapping holding address a,
// from /proc/self/smaps.
func anonHugeKB(a int) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		var lo, hi uint64
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 { // a mapping's first line
			in = uint64(a) >= lo && uint64(a) < hi
			continue
		}
		var kb int
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			if _, err := fmt.Sscanf(line, "AnonHugePages: %d kB", &kb); err != nil {
				return 0, fmt.Errorf("smaps line %q: %v", line, err)
			}
			return kb, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no mapping in /proc/self/smaps holds %#x", a)
}
