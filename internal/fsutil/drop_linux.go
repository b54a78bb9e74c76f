package fsutil

import (
	"os"
	"syscall"
	"unsafe"
)

// DropPages tells the OS that the process no longer needs the pages that
// lie wholly inside b, a part of a mapping made by MapFile: they leave its
// resident set, stay in the page cache, and are read back from the file
// if touched again. The pages b shares with its neighbours are kept.
func DropPages(b []byte) error {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + page - 1) &^ (page - 1)
	hi := (start + uintptr(len(b))) &^ (page - 1)
	if len(b) == 0 || hi <= lo {
		return nil
	}
	return syscall.Madvise(b[lo-start:hi-start], syscall.MADV_DONTNEED)
}
