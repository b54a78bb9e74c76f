//go:build !linux

package fsutil

// DropPages does nothing here: the standard library offers madvise on
// Linux only, and without mmap MapFile's buffer is ordinary memory.
func DropPages([]byte) error { return nil }
