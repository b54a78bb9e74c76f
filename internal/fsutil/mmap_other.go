//go:build !unix

package fsutil

import "os"

// MapFile reads the file at path into memory: this platform has no mmap.
func MapFile(path string) ([]byte, error) { return os.ReadFile(path) }

// UnmapFile releases a buffer made by MapFile.
func UnmapFile([]byte) error { return nil }

// SyncDir does nothing: directories cannot be synced portably here.
func SyncDir(string) error { return nil }
