package testmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/switchyard-ai/switchyard/kernels"
)

// SmolLM2Seed is the seed of the weights WriteSmolLM2Files writes.
const SmolLM2Seed = 135

// WriteSmolLM2Files makes sure dir holds random-weight SmolLM2-135M
// checkpoints for seed SmolLM2Seed and returns their paths: a Hugging Face
// directory in BF16 (the dtype of the real checkpoint), and GGUF files
// with F16 and Q8_0 matrices. Files already there are reused, so only the
// first call pays for writing them: about 700 MB, which takes from
// seconds to a minute or two, mostly spent drawing and syncing the data.
//
// Each file or directory is written under a temporary name and renamed
// into place, so an existing path is always complete, and tests in several
// processes may call it at once. The names carry cacheVersion, so files
// from a version of this package that drew other values are not reused.
// A natural dir is one kept between runs, such as
// filepath.Join(os.TempDir(), "switchyard-testmodel").
func WriteSmolLM2Files(dir string) (hfDir, ggufF16, ggufQ8 string, err error) {
	return writeCached(dir, "smollm2-135m-v"+strconv.Itoa(cacheVersion), SmolLM2_135M, SmolLM2Seed)
}

// cacheVersion names the generation of WriteSmolLM2Files's files; bump it
// whenever the values or layout the writers produce change.
const cacheVersion = 1

// writeCached is WriteSmolLM2Files for any shape, with file names
// starting with prefix.
func writeCached(dir, prefix string, s Shape, seed uint64) (hfDir, ggufF16, ggufQ8 string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", "", fmt.Errorf("testmodel: %w", err)
	}
	hfDir = filepath.Join(dir, prefix+"-bf16")
	ggufF16 = filepath.Join(dir, prefix+"-f16.gguf")
	ggufQ8 = filepath.Join(dir, prefix+"-q8_0.gguf")

	if !exists(filepath.Join(hfDir, "model.safetensors")) {
		tmp, err := os.MkdirTemp(dir, ".hf-*")
		if err != nil {
			return "", "", "", fmt.Errorf("testmodel: %w", err)
		}
		defer os.RemoveAll(tmp) // gone after a successful rename
		if err := os.Chmod(tmp, 0o755); err != nil {
			return "", "", "", fmt.Errorf("testmodel: %w", err)
		}
		if err := WriteHF(tmp, s, kernels.BF16, seed); err != nil {
			return "", "", "", err
		}
		// Renaming onto a complete directory fails: another process
		// finished first, and its files are as good as ours.
		if err := os.Rename(tmp, hfDir); err != nil && !exists(filepath.Join(hfDir, "model.safetensors")) {
			return "", "", "", fmt.Errorf("testmodel: %w", err)
		}
	}
	for _, f := range []struct {
		path string
		dt   kernels.DType
	}{{ggufF16, kernels.F16}, {ggufQ8, kernels.Q8_0}} {
		if exists(f.path) {
			continue
		}
		// WriteGGUF replaces the file atomically.
		if err := WriteGGUF(f.path, s, f.dt, seed); err != nil {
			return "", "", "", err
		}
	}
	return hfDir, ggufF16, ggufQ8, nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
