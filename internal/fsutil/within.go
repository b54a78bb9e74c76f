package fsutil

import "unsafe"

// Within reports whether b is a non-empty part of whole: the same memory,
// not equal bytes.
func Within(b, whole []byte) bool {
	if len(b) == 0 || len(whole) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&whole[0]))
	return p >= lo && p-lo <= uintptr(len(whole)) && uintptr(len(b)) <= uintptr(len(whole))-(p-lo)
}
