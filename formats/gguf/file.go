package gguf

import (
	"fmt"
	"math"
	"slices"

	"github.com/switchyard-ai/switchyard/internal/fsutil"
)

// File is an open GGUF file.
//
// Its methods may be called from several goroutines at once, except Close,
// which must not run concurrently with any other method. The exported
// fields describe the file and must not be modified.
type File struct {
	Version    uint32       // GGUF version, 2 or 3
	Tensors    []TensorInfo // every tensor, in file order
	Alignment  uint32       // data alignment: general.alignment, or 32
	DataOffset int64        // where the data section starts in the file

	path        string     // for error messages; empty for Parse
	data        []byte     // the whole file
	mapped      bool       // whether data is a mapping that Close releases
	kvs         []keyValue // metadata in file order
	keyIndex    map[string]int
	tensorIndex map[string]int
	closed      bool
}

// keyValue is one metadata pair.
type keyValue struct {
	key   string
	value any
}

// TensorInfo describes one tensor of a file, whatever its type.
type TensorInfo struct {
	Name   string
	Type   uint32 // ggml type id: TypeF32, TypeQ4_K, ...
	Shape  []int  // row-major, outermost first: GGUF's ne reversed, so ne=[in,out] gives [out, in]
	Offset uint64 // from the start of the data section
	Size   uint64 // in bytes
}

// TypeName returns the ggml name of the tensor's type, such as "Q4_K".
func (ti TensorInfo) TypeName() string { return TypeName(ti.Type) }

// Open maps the GGUF file at path into memory and validates it; see the
// package documentation. The file must not be truncated while it is open.
func Open(path string) (*File, error) {
	b, err := fsutil.MapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(path, b)
	if err != nil {
		fsutil.UnmapFile(b)
		return nil, err
	}
	f.mapped = true
	return f, nil
}

// Parse reads a GGUF file that is already in memory. The File aliases data,
// which must not change while the File is in use; Close releases nothing.
func Parse(data []byte) (*File, error) { return parse("", data) }

// Close releases the mapping. Tensors obtained from f must not be used
// afterwards; metadata values stay valid. Close is idempotent.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	b := f.data
	f.data = nil
	if !f.mapped {
		return nil
	}
	if err := fsutil.UnmapFile(b); err != nil {
		return fmt.Errorf("gguf: %s: %w", f.path, err)
	}
	return nil
}

// Release tells the OS that the caller no longer reads b, the data of a
// tensor of f (or a part of it), which it has copied: the pages wholly
// inside b leave the process's resident set (see fsutil.DropPages). It
// must not run concurrently with Close, and does nothing for b outside
// the mapping, or for a File from Parse.
func (f *File) Release(b []byte) {
	if f.mapped && !f.closed && fsutil.Within(b, f.data) {
		fsutil.DropPages(b)
	}
}

// Keys returns the metadata keys in file order.
func (f *File) Keys() []string {
	keys := make([]string, len(f.kvs))
	for i, kv := range f.kvs {
		keys[i] = kv.key
	}
	return keys
}

// Value returns the metadata value of key as the Go type matching its GGUF
// type: uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool or string; an array is the slice of that type ([]string,
// []float32, []int32, ...), and an array of arrays is an []any holding such
// slices. Slices are shared with f: callers must not modify them.
func (f *File) Value(key string) (any, bool) {
	i, ok := f.keyIndex[key]
	if !ok {
		return nil, false
	}
	return f.kvs[i].value, true
}

// String returns the value of key if it is a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns the value of key if it is an integer of any GGUF width and
// signedness, and not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Value(key)
	return asUint(v)
}

// Int returns the value of key if it is an integer of any GGUF width and
// signedness that fits an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Value(key)
	return asInt(v)
}

// Float returns the value of key if it is a float32, a float64 or an
// integer.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Value(key)
	switch v := v.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	if u, ok := asUint(v); ok {
		return float64(u), true
	}
	return 0, false
}

// Bool returns the value of key if it is a bool.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Value(key)
	b, ok := v.(bool)
	return b, ok
}

// Strings returns the value of key if it is an array of strings. The slice
// is shared with f: callers must not modify it.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Value(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns the value of key if it is an array of float32 (shared
// with f: callers must not modify it) or of float64 (converted).
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Value(key)
	switch v := v.(type) {
	case []float32:
		return v, true
	case []float64:
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, true
	}
	return nil, false
}

// Int32s returns the value of key if it is an array of integers that all
// fit an int32: an array of INT32 as it is (shared with f: callers must not
// modify it), other widths converted.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Value(key)
	switch v := v.(type) {
	case []int32:
		return v, true
	case []uint8:
		return toInt32s(v)
	case []int8:
		return toInt32s(v)
	case []uint16:
		return toInt32s(v)
	case []int16:
		return toInt32s(v)
	case []uint32:
		return toInt32s(v)
	case []uint64:
		return toInt32s(v)
	case []int64:
		return toInt32s(v)
	}
	return nil, false
}

// Architecture returns general.architecture, or "" when it is absent.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Has reports whether the file holds a tensor called name, whatever its
// type.
func (f *File) Has(name string) bool {
	_, ok := f.tensorIndex[name]
	return ok
}

// Info returns the description of the tensor called name, whatever its
// type.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Tensor returns the tensor called name. Its Data aliases the mapped file
// and stays valid until Close; F32, F16 and BF16 data starts at a multiple
// of the element size, so that it may be reinterpreted as []float32 or
// []uint16 (a file with general.alignment 1 or 2 may need an aligned copy,
// which Tensor then makes). The error wraps ErrNotFound when there is no
// such tensor and ErrUnsupportedType when its type is not F32, F16, BF16,
// Q8_0, Q5_0, Q4_0, Q4_K or Q6_K.
func (f *File) Tensor(name string) (Tensor, error) {
	if f.closed {
		return Tensor{}, &Error{Path: f.path, Tensor: name, Err: ErrClosed}
	}
	ti, ok := f.Info(name)
	if !ok {
		return Tensor{}, &Error{Path: f.path, Tensor: name, Err: ErrNotFound}
	}
	dt, ok := kernelTypes[ti.Type]
	if !ok {
		return Tensor{}, &Error{Path: f.path, Tensor: name, Err: ErrUnsupportedType,
			Detail: fmt.Sprintf("%s (%d) is not supported yet (want F32, F16, BF16, Q8_0, Q5_0, Q4_0, Q4_K or Q6_K)", ti.TypeName(), ti.Type)}
	}
	start := uint64(f.DataOffset) + ti.Offset
	data := f.data[start : start+ti.Size : start+ti.Size]
	return Tensor{Name: name, DType: dt, Shape: slices.Clone(ti.Shape), Data: aligned(data, dt)}, nil
}

// integer is the set of Go types of GGUF integers.
type integer interface {
	~uint8 | ~int8 | ~uint16 | ~int16 | ~uint32 | ~int32 | ~uint64 | ~int64
}

func toInt32s[T integer](v []T) ([]int32, bool) {
	out := make([]int32, len(v))
	for i, x := range v {
		if x < 0 && int64(x) < math.MinInt32 || x > 0 && uint64(x) > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

func asUint(v any) (uint64, bool) {
	switch v := v.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	}
	if i, ok := asInt(v); ok && i >= 0 {
		return uint64(i), true
	}
	return 0, false
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
	}
	return 0, false
}
