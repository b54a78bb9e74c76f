//go:build !linux

package hugepages

import "errors"

// mapRegion has no 2 MiB pages to ask for outside Linux: New falls back
// to the Go heap.
func mapRegion(int) (mapped, rest []byte, huge bool, err error) {
	return nil, nil, false, errors.ErrUnsupported
}

func unmap([]byte) error { return nil }
