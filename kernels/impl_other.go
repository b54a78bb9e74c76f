//go:build !amd64 || purego

package kernels

// simdImpls returns no assembly implementations: this build has none.
func simdImpls() []*impl { return nil }
