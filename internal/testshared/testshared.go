// Package testshared locates the read-only shared test data (models,
// fixtures, tokenizers) that lives beside the repository in ../shared, or
// wherever $SWITCHYARD_SHARED points.
package testshared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared data directory, failing the test when it is
// missing: the data is always present in CI, so its absence is an error,
// not a reason to skip.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SWITCHYARD_SHARED"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared test data not found at %s (set SWITCHYARD_SHARED): %v", d, err)
	}
	return d
}

// Path joins elements onto Dir.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}
