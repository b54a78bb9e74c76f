// Package fsutil holds the file-system primitives the format readers and
// writers share: read-only memory mapping of a whole file (and letting
// go of the pages of a mapped part that was copied), and crash-safe
// replacement of a file (temporary file, fsync, rename, fsync of the
// directory).
package fsutil
