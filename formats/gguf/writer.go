package gguf

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/switchyard-ai/switchyard/internal/fsutil"
	"github.com/switchyard-ai/switchyard/kernels"
)

// maxNameLen is the longest tensor name llama.cpp reads (GGML_MAX_NAME - 1).
const maxNameLen = 63

// A Writer builds a GGUF v3 file: metadata in the order first added, then
// tensors in the order added. The zero Writer is not usable; call
// NewWriter.
//
// Adding a key that is already present replaces its value and keeps its
// place. The data of added tensors is not copied: it must stay unchanged
// until the last WriteTo or WriteFile.
type Writer struct {
	kvs         []keyValue
	keyIndex    map[string]int
	tensors     []writerTensor
	tensorIndex map[string]int
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{keyIndex: make(map[string]int), tensorIndex: make(map[string]int)}
}

func (w *Writer) set(key string, v any) {
	if i, ok := w.keyIndex[key]; ok {
		w.kvs[i].value = v
		return
	}
	w.keyIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, keyValue{key, v})
}

// AddString sets key to a STRING value.
func (w *Writer) AddString(key, v string) { w.set(key, v) }

// AddBool sets key to a BOOL value.
func (w *Writer) AddBool(key string, v bool) { w.set(key, v) }

// AddUint32 sets key to a UINT32 value.
func (w *Writer) AddUint32(key string, v uint32) { w.set(key, v) }

// AddInt32 sets key to an INT32 value.
func (w *Writer) AddInt32(key string, v int32) { w.set(key, v) }

// AddUint64 sets key to a UINT64 value.
func (w *Writer) AddUint64(key string, v uint64) { w.set(key, v) }

// AddFloat32 sets key to a FLOAT32 value.
func (w *Writer) AddFloat32(key string, v float32) { w.set(key, v) }

// AddStrings sets key to an ARRAY of STRING. v is copied.
func (w *Writer) AddStrings(key string, v []string) { w.set(key, slices.Clone(v)) }

// AddInt32s sets key to an ARRAY of INT32. v is copied.
func (w *Writer) AddInt32s(key string, v []int32) { w.set(key, slices.Clone(v)) }

// AddFloat32s sets key to an ARRAY of FLOAT32. v is copied.
func (w *Writer) AddFloat32s(key string, v []float32) { w.set(key, slices.Clone(v)) }

// Add sets key to v, which may be any value that File.Value returns: the
// GGUF type follows the Go type (uint8 is UINT8, []string an ARRAY of
// STRING, []any an ARRAY of ARRAY, ...). It reports an error wrapping
// ErrInvalid for other Go types, int and uint included. Copying every
// pair of a File with Add reproduces its metadata exactly. Slices are not
// copied: they must stay unchanged until the last WriteTo or WriteFile.
func (w *Writer) Add(key string, v any) error {
	if err := checkValue(v); err != nil {
		return &Error{Err: ErrInvalid, Detail: fmt.Sprintf("metadata %q: %v", key, err)}
	}
	w.set(key, v)
	return nil
}

// checkValue reports why v cannot be a metadata value, if it cannot.
func checkValue(v any) error {
	switch v.(type) {
	case uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64, bool, string:
		return nil
	}
	return checkArray(v, 0)
}

// checkArray reports why v cannot be an array value at the given nesting
// depth, if it cannot; it mirrors the decoder's limits.
func checkArray(v any, depth int) error {
	if depth >= maxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	switch v := v.(type) {
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []uint64, []int64, []float32, []float64, []bool, []string:
		return nil
	case []any:
		for _, e := range v {
			if err := checkArray(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if depth > 0 {
		return fmt.Errorf("an array of arrays holds a %T", v)
	}
	return fmt.Errorf("GGUF has no type for Go type %T", v)
}

// AddTensor adds a tensor of dtype dt with the given row-major shape
// (outermost first, 1 to 4 dimensions) and data, which must hold exactly
// the bytes that shape and dtype call for; for the blocked types the
// innermost dimension must be a multiple of the block (32 for Q8_0, Q5_0
// and Q4_0, 256 for Q4_K and Q6_K). The name must be unique, non-empty
// and at most 63 bytes long, as llama.cpp requires.
func (w *Writer) AddTensor(name string, dt kernels.DType, shape []int, data []byte) error {
	fail := func(err error, format string, args ...any) error {
		return &Error{Tensor: name, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case name == "" || len(name) > maxNameLen:
		return fail(ErrInvalid, "name must be 1 to %d bytes long", maxNameLen)
	case w.hasTensor(name):
		return fail(ErrInvalid, "a tensor of this name was already added")
	case len(shape) < 1 || len(shape) > maxDims:
		return fail(ErrShape, "shape %v must have 1 to %d dimensions", shape, maxDims)
	}
	typ, ok := ggmlType[dt]
	if !ok {
		return fail(ErrUnsupportedType, "dtype %v cannot be written (want F32, F16, BF16, Q8_0, Q5_0, Q4_0, Q4_K or Q6_K)", dt)
	}
	tt := ggmlTypes[typ]
	ne := make([]uint64, len(shape))
	for i, d := range shape {
		if d < 0 {
			return fail(ErrShape, "shape %v has a negative dimension", shape)
		}
		ne[len(shape)-1-i] = uint64(d)
	}
	ti, detail := tensorInfo(name, ne, typ, 0)
	if detail != "" {
		return fail(ErrShape, "%s", detail)
	}
	if ti.Size != uint64(len(data)) {
		return fail(ErrShape, "%s shape %v needs %d bytes of data, has %d", tt.name, shape, ti.Size, len(data))
	}
	w.tensorIndex[name] = len(w.tensors)
	w.tensors = append(w.tensors, writerTensor{ti, data})
	return nil
}

func (w *Writer) hasTensor(name string) bool {
	_, ok := w.tensorIndex[name]
	return ok
}

// alignment returns the data alignment: general.alignment if set, else 32.
func (w *Writer) alignment() (uint64, error) {
	i, ok := w.keyIndex[alignmentKey]
	if !ok {
		return defaultAlignment, nil
	}
	a, ok := w.kvs[i].value.(uint32)
	if !ok || a == 0 || a&(a-1) != 0 {
		return 0, &Error{Err: ErrInvalid, Detail: fmt.Sprintf("%s = %v (%T), want a power of two of type uint32", alignmentKey, w.kvs[i].value, w.kvs[i].value)}
	}
	return uint64(a), nil
}

// WriteTo writes the GGUF file to out and returns the number of bytes
// written. Every tensor's data starts at a multiple of the alignment
// (general.alignment, or 32) and is padded with zeros to the next one. The
// layout is that of llama.cpp's gguf-py writer, byte for byte.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	pad := func(n uint64) uint64 { return (align - n%align) % align }

	h := []byte("GGUF")
	h = le.AppendUint32(h, 3)
	h = le.AppendUint64(h, uint64(len(w.tensors)))
	h = le.AppendUint64(h, uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		h = appendString(h, kv.key)
		h = appendValue(h, kv.value, true)
	}
	var offset uint64
	for _, t := range w.tensors {
		h = appendString(h, t.info.Name)
		h = le.AppendUint32(h, uint32(len(t.info.Shape)))
		for i := len(t.info.Shape) - 1; i >= 0; i-- {
			h = le.AppendUint64(h, uint64(t.info.Shape[i]))
		}
		h = le.AppendUint32(h, t.info.Type)
		h = le.AppendUint64(h, offset)
		offset += t.info.Size + pad(t.info.Size)
	}

	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	bw.Write(h)
	if len(w.tensors) > 0 { // as gguf-py, pad only when a data section follows
		writeZeros(bw, pad(uint64(len(h))))
	}
	for _, t := range w.tensors {
		bw.Write(t.data)
		writeZeros(bw, pad(t.info.Size))
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("gguf: write: %w", err)
	}
	return cw.n, nil
}

// WriteFile writes the GGUF file at path as WriteTo does, atomically: it
// writes a temporary file in the same directory, syncs it, renames it over
// path and syncs the directory, so that path holds either its old content
// or the complete new file, even after a crash. The file gets mode 0644.
func (w *Writer) WriteFile(path string) error {
	if _, err := w.alignment(); err != nil {
		return err
	}
	err := fsutil.WriteFileAtomic(path, func(out io.Writer) error {
		_, err := w.WriteTo(out)
		return err
	})
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// zeros is a source of padding bytes.
var zeros [4096]byte

// writeZeros writes n zero bytes to w, which keeps any error for Flush:
// an alignment may be as large as 2 GiB, so no n-byte buffer is made.
func writeZeros(w *bufio.Writer, n uint64) {
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		w.Write(zeros[:k])
		n -= k
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func appendString(b []byte, s string) []byte {
	b = le.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends v, which checkValue accepted, preceded by its value
// type when typed is set (array elements carry no type of their own).
func appendValue(b []byte, v any, typed bool) []byte {
	t := typeOf(v)
	if typed {
		b = le.AppendUint32(b, uint32(t))
	}
	switch v := v.(type) {
	case uint8:
		return append(b, v)
	case int8:
		return append(b, byte(v))
	case uint16:
		return le.AppendUint16(b, v)
	case int16:
		return le.AppendUint16(b, uint16(v))
	case uint32:
		return le.AppendUint32(b, v)
	case int32:
		return le.AppendUint32(b, uint32(v))
	case uint64:
		return le.AppendUint64(b, v)
	case int64:
		return le.AppendUint64(b, uint64(v))
	case float32:
		return le.AppendUint32(b, math.Float32bits(v))
	case float64:
		return le.AppendUint64(b, math.Float64bits(v))
	case bool:
		if v {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, v)
	case []uint8:
		return appendEach(b, typeUint8, v, func(b []byte, x uint8) []byte { return append(b, x) })
	case []int8:
		return appendEach(b, typeInt8, v, func(b []byte, x int8) []byte { return append(b, byte(x)) })
	case []uint16:
		return appendEach(b, typeUint16, v, le.AppendUint16)
	case []int16:
		return appendEach(b, typeInt16, v, func(b []byte, x int16) []byte { return le.AppendUint16(b, uint16(x)) })
	case []uint32:
		return appendEach(b, typeUint32, v, le.AppendUint32)
	case []int32:
		return appendEach(b, typeInt32, v, func(b []byte, x int32) []byte { return le.AppendUint32(b, uint32(x)) })
	case []uint64:
		return appendEach(b, typeUint64, v, le.AppendUint64)
	case []int64:
		return appendEach(b, typeInt64, v, func(b []byte, x int64) []byte { return le.AppendUint64(b, uint64(x)) })
	case []float32:
		return appendEach(b, typeFloat32, v, func(b []byte, x float32) []byte { return le.AppendUint32(b, math.Float32bits(x)) })
	case []float64:
		return appendEach(b, typeFloat64, v, func(b []byte, x float64) []byte { return le.AppendUint64(b, math.Float64bits(x)) })
	case []bool:
		return appendEach(b, typeBool, v, func(b []byte, x bool) []byte { return appendValue(b, x, false) })
	case []string:
		return appendEach(b, typeString, v, appendString)
	case []any:
		return appendEach(b, typeArray, v, func(b []byte, x any) []byte { return appendValue(b, x, false) })
	}
	panic(fmt.Sprintf("gguf: unchecked metadata value of type %T", v)) // checkValue guards every caller
}

// appendEach appends an array of element type et: the type, the count,
// then each element of v encoded by put.
func appendEach[T any](b []byte, et valueType, v []T, put func([]byte, T) []byte) []byte {
	b = le.AppendUint32(b, uint32(et))
	b = le.AppendUint64(b, uint64(len(v)))
	for _, x := range v {
		b = put(b, x)
	}
	return b
}

// typeOf returns the value type of v, which checkValue accepted.
func typeOf(v any) valueType {
	switch v.(type) {
	case uint8:
		return typeUint8
	case int8:
		return typeInt8
	case uint16:
		return typeUint16
	case int16:
		return typeInt16
	case uint32:
		return typeUint32
	case int32:
		return typeInt32
	case uint64:
		return typeUint64
	case int64:
		return typeInt64
	case float32:
		return typeFloat32
	case float64:
		return typeFloat64
	case bool:
		return typeBool
	case string:
		return typeString
	}
	return typeArray
}
