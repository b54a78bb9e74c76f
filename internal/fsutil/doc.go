// Package fsutil holds the two file-system primitives the format readers
// and writers share: read-only memory mapping of a whole file, and
// crash-safe replacement of a file (temporary file, fsync, rename, fsync
// of the directory).
package fsutil
