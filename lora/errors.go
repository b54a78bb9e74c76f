package lora

import (
	"errors"

	"github.com/switchyard-ai/switchyard/formats/peft"
)

// Sentinel errors, wrapped by every error Load, LoadPEFT, LoadGGUF and
// Adapter.Validate return; test for them with errors.Is.
var (
	// ErrMismatch reports an adapter that does not fit the base model: a
	// tensor of the wrong shape, a layer or module the model lacks, a
	// different architecture, or tensors that disagree with the
	// adapter's own configuration.
	ErrMismatch = errors.New("adapter does not fit the base model")

	// ErrFormat reports a malformed adapter: unreadable files, unknown or
	// duplicate tensor keys, an unpaired lora_A or lora_B, missing
	// metadata.
	ErrFormat = errors.New("malformed adapter")

	// ErrUnsupported reports a valid adapter that uses a feature
	// Switchyard does not serve yet (DoRA, embedding LoRA, ...). It is
	// the same value as peft.ErrUnsupported.
	ErrUnsupported = peft.ErrUnsupported
)

// Error describes what is wrong with an adapter file, or with one tensor
// in it.
type Error struct {
	Path   string // the adapter directory or file
	Tensor string // the tensor concerned; empty when it is the adapter as a whole
	Detail string // what is wrong, in words
	Err    error  // a sentinel above, a *ShapeError, or an underlying error
}

func (e *Error) Error() string {
	s := "lora: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Tensor != "" {
		s += "tensor " + e.Tensor + ": "
	}
	switch {
	case e.Detail != "" && e.Err == ErrUnsupported:
		return s + e.Detail + " not supported yet"
	case e.Detail != "" && (e.Err == ErrMismatch || e.Err == ErrFormat):
		return s + e.Detail
	case e.Detail != "":
		return s + e.Detail + ": " + e.Err.Error()
	}
	return s + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// ShapeError reports a tensor whose shape does not fit the base model. It
// wraps ErrMismatch.
type ShapeError struct {
	Got, Want []int
	Why       string // where Want comes from, e.g. "lora_A is [r, in_features] with r 8 from adapter_config.json and in_features 64 of the base q_proj"
}

func (e *ShapeError) Error() string {
	s := "shape " + shapeString(e.Got) + ", want " + shapeString(e.Want)
	if e.Why != "" {
		s += " (" + e.Why + ")"
	}
	return s
}

// Unwrap returns ErrMismatch.
func (e *ShapeError) Unwrap() error { return ErrMismatch }
