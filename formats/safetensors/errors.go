package safetensors

import (
	"errors"
	"strconv"
)

// Errors returned by this package wrap one of these sentinels, or an
// error from the os package; test for them with errors.Is.
var (
	// ErrCorrupt reports a malformed file or index: a bad header length,
	// invalid JSON, a missing field, or a tensor whose byte range does not
	// fit its shape, the data area, or its neighbours.
	ErrCorrupt = errors.New("malformed safetensors file")

	// ErrNotFound reports a tensor name that the checkpoint does not hold.
	ErrNotFound = errors.New("tensor not found")

	// ErrUnsupportedDType reports a tensor stored in a dtype that the
	// kernels cannot use (anything but F32, F16 and BF16).
	ErrUnsupportedDType = errors.New("unsupported dtype")

	// ErrShape reports a tensor whose shape does not fit the request, such
	// as a 3-D tensor passed to Tensor.Matrix, or data whose length does
	// not match the shape given to Write.
	ErrShape = errors.New("bad tensor shape")

	// ErrInvalid reports an argument that Write cannot encode: a tensor
	// name that is empty, reserved, duplicated or not valid UTF-8, or
	// metadata that is not valid UTF-8.
	ErrInvalid = errors.New("invalid argument")

	// ErrClosed reports use of a File after Close.
	ErrClosed = errors.New("file already closed")
)

// An Error describes what is wrong with a file, or with one tensor in it.
type Error struct {
	Path   string // the file; empty for data given to Parse or Write
	Tensor string // the tensor concerned; empty when it is the file as a whole
	Detail string // what is wrong, in words; empty to use Err's text
	Err    error  // a sentinel above, or an underlying error
}

func (e *Error) Error() string {
	s := "safetensors: "
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

// corrupt returns an *Error wrapping ErrCorrupt.
func corrupt(path, tensor, detail string) error {
	return &Error{Path: path, Tensor: tensor, Detail: detail, Err: ErrCorrupt}
}
