//go:build !unix

package gguf

import "os"

// mapFile reads the file at path into memory: this platform has no mmap.
func mapFile(path string) ([]byte, error) { return os.ReadFile(path) }

// unmapFile releases a buffer made by mapFile.
func unmapFile([]byte) error { return nil }

// syncDir does nothing: directories cannot be synced portably here.
func syncDir(string) error { return nil }
