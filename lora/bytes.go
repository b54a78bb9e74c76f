package lora

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/model"
)

// LoadFiles reads an adapter whose files are already in memory, as an
// adapter store or cache holds them: either a PEFT adapter
// (adapter_config.json and adapter_model.safetensors) or a single GGUF
// LoRA file (any name; recognised by its magic bytes). name becomes the
// Adapter's Name and Path and names it in errors.
//
// The checks are those of LoadPEFT and LoadGGUF, by the same code. The
// Adapter copies its weights out of files, which the caller may reuse
// once LoadFiles returns.
func LoadFiles(name string, files map[string][]byte, cfg *model.Config) (*Adapter, error) {
	if len(files) == 1 {
		for fname, data := range files {
			if bytes.HasPrefix(data, []byte("GGUF")) {
				f, err := gguf.Parse(data)
				if err != nil {
					return nil, &Error{Path: name, Err: err}
				}
				defer f.Close()
				return loadGGUF(name, name+"/"+fname, f, cfg)
			}
		}
	}
	confData, hasConf := files[peft.ConfigFile]
	weights, hasWeights := files[peftWeightsFile]
	if !hasConf || !hasWeights {
		if _, ok := files["adapter_model.bin"]; ok && !hasWeights {
			return nil, &Error{Path: name, Detail: "adapter_model.bin (PyTorch pickle) without " + peftWeightsFile + " is", Err: ErrUnsupported}
		}
		return nil, &Error{Path: name, Detail: fmt.Sprintf("files %s are neither a PEFT adapter (%s and %s) nor one GGUF file",
			strings.Join(slices.Sorted(maps.Keys(files)), ", "), peft.ConfigFile, peftWeightsFile), Err: ErrFormat}
	}
	conf, err := peft.Parse(confData)
	if err != nil {
		var fe *peft.FieldError
		if errors.As(err, &fe) {
			fe.File = name + "/" + peft.ConfigFile
		}
		if errors.Is(err, peft.ErrInvalid) {
			return nil, fmt.Errorf("lora: %w (%w)", err, ErrFormat)
		}
		return nil, fmt.Errorf("lora: %w", err)
	}
	path := name + "/" + peftWeightsFile
	f, err := safetensors.Parse(weights)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	defer f.Close()
	return loadPEFT(name, name, path, conf, f, cfg)
}
