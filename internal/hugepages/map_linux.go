package hugepages

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The kernel's transparent huge page settings.
const (
	thpEnabled  = "/sys/kernel/mm/transparent_hugepage/enabled"
	thpPageSize = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"
)

// mapRegion maps at least n bytes of anonymous memory and asks for huge
// pages. It maps one huge page more than it needs, so that rest can start
// on a huge page boundary: the kernel backs only whole aligned ranges
// with huge pages.
func mapRegion(n int) (mapped, rest []byte, huge bool, err error) {
	page := hugePageSize()
	size := (n+page-1)/page*page + page
	mapped, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, false, err
	}
	skip := alignSkip(mapped, page)
	rest = mapped[skip : skip+size-page]
	// madvise fails only where the kernel has no transparent huge pages
	// at all; where they are switched off ("never") it succeeds and
	// changes nothing. Either way the mapping works, in ordinary pages.
	huge = syscall.Madvise(rest, madvHugepage) == nil && thpOn()
	return mapped, rest, huge, nil
}

// madvHugepage is MADV_HUGEPAGE, which package syscall does not define.
const madvHugepage = 14

func unmap(b []byte) error { return syscall.Munmap(b) }

// hugePageSize returns the size of a transparent huge page: 2 MiB on
// x86-64, more on arm64 kernels with 16 or 64 KiB base pages.
func hugePageSize() int {
	if b, err := os.ReadFile(thpPageSize); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return 2 << 20
}

// thpOn reports whether transparent huge pages are enabled, always or
// for mappings that ask.
func thpOn() bool {
	b, err := os.ReadFile(thpEnabled)
	return err == nil && (strings.Contains(string(b), "[always]") || strings.Contains(string(b), "[madvise]"))
}
