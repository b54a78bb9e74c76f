package hugepages

import "syscall"

// pageSize is the size of a huge page on x86-64 and arm64 Linux.
const pageSize = 2 << 20

// mapRegion maps at least n bytes of anonymous memory and asks for 2 MiB
// pages. It maps one huge page more than it needs, so that rest can
// start on a 2 MiB boundary: the kernel backs only whole aligned 2 MiB
// ranges with huge pages.
func mapRegion(n int) (mapped, rest []byte, huge bool, err error) {
	size := (n+pageSize-1)/pageSize*pageSize + pageSize
	mapped, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, false, err
	}
	skip := (pageSize - addr(mapped)%pageSize) % pageSize
	rest = mapped[skip : skip+size-pageSize]
	// Refused where transparent huge pages are disabled: the mapping
	// still works, in 4 KiB pages.
	huge = syscall.Madvise(rest, madvHugepage) == nil
	return mapped, rest, huge, nil
}

// madvHugepage is MADV_HUGEPAGE, which package syscall does not define.
const madvHugepage = 14

func unmap(b []byte) error { return syscall.Munmap(b) }
