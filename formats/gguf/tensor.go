package gguf

import (
	"fmt"
	"unsafe"

	"github.com/switchyard-ai/switchyard/kernels"
)

// Tensor is one tensor of a file, in a type the kernels use. Data aliases
// the mapped file (zero-copy).
type Tensor struct {
	Name  string
	DType kernels.DType
	Shape []int // row-major, outermost first: GGUF's ne reversed
	Data  []byte
}

// Matrix returns t as a kernels.Matrix without copying: a 2-D tensor gives
// Rows = Shape[0] and Cols = Shape[1], a 1-D tensor one row. Other ranks,
// and data whose length does not match the shape, give an error wrapping
// ErrShape.
func (t Tensor) Matrix() (kernels.Matrix, error) {
	m := kernels.Matrix{DType: t.DType, Data: t.Data}
	switch len(t.Shape) {
	case 1:
		m.Rows, m.Cols = 1, t.Shape[0]
	case 2:
		m.Rows, m.Cols = t.Shape[0], t.Shape[1]
	default:
		return kernels.Matrix{}, &Error{Tensor: t.Name, Err: ErrShape,
			Detail: fmt.Sprintf("shape %v has %d dimensions; a matrix needs 1 or 2", t.Shape, len(t.Shape))}
	}
	if err := m.Validate(); err != nil {
		return kernels.Matrix{}, &Error{Tensor: t.Name, Err: ErrShape, Detail: err.Error()}
	}
	return m, nil
}

// aligned returns b if it starts at a multiple of the element size of the
// unquantized type dt, so that the kernels may reinterpret it as []float32
// or []uint16, and an aligned copy of it otherwise. Tensors are always
// aligned unless general.alignment is 1 or 2; the blocked types need none.
func aligned(b []byte, dt kernels.DType) []byte {
	size := uintptr(dt.RowBytes(1)) // 0 for the blocked types
	if len(b) == 0 || size <= 1 || uintptr(unsafe.Pointer(&b[0]))%size == 0 {
		return b
	}
	words := make([]uint64, (len(b)+7)/8)
	c := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(b))
	copy(c, b)
	return c
}
