package gguf

import (
	"errors"
	"strconv"
)

// Errors returned by this package wrap one of these sentinels, or an
// error from the os package; test for them with errors.Is.
var (
	// ErrCorrupt reports a malformed file: a wrong magic, a truncated or
	// oversized field, an unknown value or tensor type, a duplicate key or
	// tensor name, or tensor data outside the data section.
	ErrCorrupt = errors.New("malformed GGUF file")

	// ErrVersion reports a GGUF version other than 2 and 3.
	ErrVersion = errors.New("unsupported GGUF version")

	// ErrNotFound reports a tensor name that the file does not hold.
	ErrNotFound = errors.New("tensor not found")

	// ErrUnsupportedType reports a tensor type that the kernels cannot use
	// (anything but F32, F16, BF16, Q8_0, Q5_0, Q4_0, Q4_K and Q6_K).
	ErrUnsupportedType = errors.New("unsupported tensor type")

	// ErrShape reports a tensor whose shape does not fit the request, such
	// as a 3-D tensor passed to Tensor.Matrix, or data whose length does
	// not match the shape given to Writer.AddTensor.
	ErrShape = errors.New("bad tensor shape")

	// ErrInvalid reports an argument that a Writer cannot encode: a bad
	// tensor name, a metadata value of a Go type GGUF has no type for, or
	// an invalid general.alignment.
	ErrInvalid = errors.New("invalid argument")

	// ErrClosed reports use of a File after Close.
	ErrClosed = errors.New("file already closed")
)

// An Error describes what is wrong with a file, or with one tensor in it.
type Error struct {
	Path   string // the file; empty for data given to Parse, and for a Writer
	Tensor string // the tensor concerned; empty when it is the file as a whole
	Detail string // what is wrong, in words; empty to use Err's text
	Err    error  // a sentinel above, or an underlying error
}

func (e *Error) Error() string {
	s := "gguf: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Tensor != "" {
		s += "tensor " + strconv.Quote(e.Tensor) + ": "
	}
	if e.Detail != "" {
		return s + e.Detail
	}
	return s + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }
