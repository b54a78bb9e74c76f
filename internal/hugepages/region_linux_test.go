package hugepages

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestRegionHugePages checks that a region asks for 2 MiB pages when the
// kernel's transparent huge pages allow it, and that the kernel then
// backs written memory with them (it fell back to 4 KiB pages before the
// mapping's start was aligned to 2 MiB).
func TestRegionHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	enabled := !strings.Contains(string(mode), "[never]")
	const size = 8 << 20
	r := New(size)
	defer r.Close()
	if r.Huge() != enabled {
		t.Fatalf("Huge() = %v with transparent huge pages %q", r.Huge(), strings.TrimSpace(string(mode)))
	}
	if r.mapped == nil {
		t.Fatal("New on Linux fell back to the Go heap")
	}
	if addr(r.rest)%pageSize != 0 {
		t.Fatalf("the region starts at %#x, not on a 2 MiB boundary", addr(r.rest))
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
	if kb == 0 {
		t.Errorf("8 MiB written to a region: AnonHugePages 0 kB in its mapping, want 2 MiB pages")
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
