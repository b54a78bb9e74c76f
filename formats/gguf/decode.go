package gguf

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Limits of the format, as in ggml.
const (
	maxDims          = 4  // GGML_MAX_DIMS
	defaultAlignment = 32 // GGUF_DEFAULT_ALIGNMENT
	maxArrayDepth    = 8  // arrays of arrays; ggml itself allows none
	alignmentKey     = "general.alignment"
)

// minKV and minTensorInfo are the fewest bytes a metadata pair and a tensor
// info take: the bounds that keep their counts from outgrowing the file.
const (
	minKV         = 8 + 4 + 1     // key length, value type, a one-byte value
	minTensorInfo = 8 + 4 + 4 + 8 // name length, n_dims, type, offset
)

var le = binary.LittleEndian

// decoder reads a GGUF file from memory. Its first error sticks: later
// reads return zero values, and callers check err at loop boundaries.
type decoder struct {
	path string
	b    []byte
	off  int
	err  error

	// Where the decoder is, for messages: section and index name the item
	// being read ("metadata", 3), name its key or tensor name once known.
	section string
	index   uint64
	name    string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if d.section != "" {
		where := fmt.Sprintf("%s %d", d.section, d.index)
		if d.name != "" {
			where += fmt.Sprintf(" (%q)", d.name)
		}
		msg = where + ": " + msg
	}
	d.err = &Error{Path: d.path, Err: ErrCorrupt, Detail: msg}
}

func (d *decoder) remaining() uint64 { return uint64(len(d.b) - d.off) }

// take returns the next n bytes, or nil after an error.
func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > d.remaining() {
		d.fail("file ends at byte %d, %d bytes short of what it declares", len(d.b), n-d.remaining())
		return nil
	}
	p := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return le.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return le.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return le.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string { return string(d.take(d.u64())) }

func (d *decoder) bool() bool {
	v := d.u8()
	if v > 1 {
		d.fail("bool value %d is neither 0 nor 1", v)
	}
	return v == 1
}

// value reads one value of type t; see File.Value for the Go types.
func (d *decoder) value(t valueType, depth int) any {
	switch t {
	case typeUint8:
		return d.u8()
	case typeInt8:
		return int8(d.u8())
	case typeUint16:
		return d.u16()
	case typeInt16:
		return int16(d.u16())
	case typeUint32:
		return d.u32()
	case typeInt32:
		return int32(d.u32())
	case typeFloat32:
		return math.Float32frombits(d.u32())
	case typeBool:
		return d.bool()
	case typeString:
		return d.str()
	case typeArray:
		return d.array(depth)
	case typeUint64:
		return d.u64()
	case typeInt64:
		return int64(d.u64())
	case typeFloat64:
		return math.Float64frombits(d.u64())
	}
	d.fail("unknown value type %d", uint32(t))
	return nil
}

// array reads an array value: element type, count, elements. Its count is
// checked against the bytes left before anything is allocated.
func (d *decoder) array(depth int) any {
	if depth >= maxArrayDepth {
		d.fail("arrays nested more than %d deep", maxArrayDepth)
		return nil
	}
	t := valueType(d.u32())
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if t >= numValueTypes {
		d.fail("array of unknown value type %d", uint32(t))
		return nil
	}
	if n > d.remaining()/minValueSize[t] {
		d.fail("array of %d %v values cannot fit in the %d bytes left", n, t, d.remaining())
		return nil
	}
	switch t {
	case typeUint8:
		return slices.Clone(d.take(n))
	case typeInt8:
		return fixed(d, n, 1, func(p []byte) int8 { return int8(p[0]) })
	case typeUint16:
		return fixed(d, n, 2, le.Uint16)
	case typeInt16:
		return fixed(d, n, 2, func(p []byte) int16 { return int16(le.Uint16(p)) })
	case typeUint32:
		return fixed(d, n, 4, le.Uint32)
	case typeInt32:
		return fixed(d, n, 4, func(p []byte) int32 { return int32(le.Uint32(p)) })
	case typeFloat32:
		return fixed(d, n, 4, func(p []byte) float32 { return math.Float32frombits(le.Uint32(p)) })
	case typeUint64:
		return fixed(d, n, 8, le.Uint64)
	case typeInt64:
		return fixed(d, n, 8, func(p []byte) int64 { return int64(le.Uint64(p)) })
	case typeFloat64:
		return fixed(d, n, 8, func(p []byte) float64 { return math.Float64frombits(le.Uint64(p)) })
	case typeBool:
		out := make([]bool, n)
		for i := range out {
			out[i] = d.bool()
		}
		return out
	case typeString:
		return d.strings(n)
	default: // typeArray
		out := make([]any, n)
		for i := range out {
			if out[i] = d.array(depth + 1); d.err != nil {
				return nil
			}
		}
		return out
	}
}

// fixed decodes n values of size bytes each with get.
func fixed[T any](d *decoder, n uint64, size int, get func([]byte) T) []T {
	p := d.take(n * uint64(size))
	if d.err != nil {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = get(p[i*size:])
	}
	return out
}

// strings reads n strings into one allocation: a first pass checks every
// length, a second slices them out of a single copy of the bytes.
func (d *decoder) strings(n uint64) []string {
	start := d.off
	for range n {
		if d.take(d.u64()); d.err != nil {
			return nil
		}
	}
	raw := d.b[start:d.off]
	blob := string(raw)
	out := make([]string, n)
	p := uint64(0)
	for i := range out {
		l := le.Uint64(raw[p:])
		out[i] = blob[p+8 : p+8+l]
		p += 8 + l
	}
	return out
}

// parse validates the GGUF file b and returns it; path names it in errors.
func parse(path string, b []byte) (*File, error) {
	d := &decoder{path: path, b: b}
	if len(b) < 4 || string(b[:4]) != "GGUF" {
		return nil, &Error{Path: path, Err: ErrCorrupt, Detail: fmt.Sprintf("not a GGUF file: starts with %q, not \"GGUF\"", b[:min(4, len(b))])}
	}
	d.off = 4
	f := &File{Version: d.u32(), Alignment: defaultAlignment, path: path, data: b}
	if d.err != nil {
		return nil, d.err
	}
	if f.Version != 2 && f.Version != 3 {
		detail := fmt.Sprintf("version %d is not supported (want 2 or 3)", f.Version)
		if v := bits.ReverseBytes32(f.Version); v == 2 || v == 3 {
			detail += "; the file looks big-endian"
		}
		return nil, &Error{Path: path, Err: ErrVersion, Detail: detail}
	}
	nTensors, nKV := d.u64(), d.u64()
	if d.err != nil {
		return nil, d.err
	}
	if nKV > d.remaining()/minKV {
		d.fail("%d metadata pairs cannot fit in the %d bytes left", nKV, d.remaining())
	}
	if nTensors > d.remaining()/minTensorInfo {
		d.fail("%d tensor infos cannot fit in the %d bytes left", nTensors, d.remaining())
	}
	if d.err != nil {
		return nil, d.err
	}

	d.section = "metadata"
	f.kvs = make([]keyValue, 0, nKV)
	f.keyIndex = make(map[string]int, nKV)
	for i := range nKV {
		d.index, d.name = i, ""
		key := d.str()
		d.name = key
		v := d.value(valueType(d.u32()), 0)
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := f.keyIndex[key]; dup {
			d.fail("key appears twice")
			return nil, d.err
		}
		f.keyIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, keyValue{key, v})
	}
	if v, ok := f.Value(alignmentKey); ok {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return nil, &Error{Path: path, Err: ErrCorrupt,
				Detail: fmt.Sprintf("%s = %v (%T), want a power of two of type UINT32", alignmentKey, v, v)}
		}
		f.Alignment = a
	}

	d.section = "tensor info"
	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tensorIndex = make(map[string]int, nTensors)
	for i := range nTensors {
		d.index, d.name = i, ""
		name := d.str()
		d.name = name
		nDims := d.u32()
		if d.err == nil && nDims > maxDims {
			d.fail("%d dimensions, more than ggml's %d", nDims, maxDims)
		}
		var ne [maxDims]uint64
		for j := range min(nDims, maxDims) {
			ne[j] = d.u64()
		}
		typ := d.u32()
		offset := d.u64()
		if d.err != nil {
			return nil, d.err
		}
		ti, detail := tensorInfo(name, ne[:nDims], typ, offset)
		if detail == "" && f.Has(name) {
			detail = "name appears twice"
		}
		if detail != "" {
			return nil, &Error{Path: path, Tensor: name, Err: ErrCorrupt, Detail: detail}
		}
		f.tensorIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}

	start := uint64(d.off) + (uint64(f.Alignment)-uint64(d.off)%uint64(f.Alignment))%uint64(f.Alignment)
	if start > uint64(len(b)) {
		if len(f.Tensors) > 0 {
			return nil, &Error{Path: path, Err: ErrCorrupt,
				Detail: fmt.Sprintf("file ends at byte %d, before its data section at byte %d", len(b), start)}
		}
		start = uint64(len(b))
	}
	f.DataOffset = int64(start)
	if err := checkData(path, f.Tensors, uint64(f.Alignment), uint64(len(b))-start); err != nil {
		return nil, err
	}
	return f, nil
}

// tensorInfo builds the info of a tensor from its file record, or explains
// what is wrong with the record.
func tensorInfo(name string, ne []uint64, typ uint32, offset uint64) (TensorInfo, string) {
	tt, ok := ggmlTypes[typ]
	if !ok {
		return TensorInfo{}, fmt.Sprintf("unknown ggml type %d", typ)
	}
	ti := TensorInfo{Name: name, Type: typ, Shape: make([]int, len(ne)), Offset: offset}
	nelem, inner := uint64(1), uint64(1)
	for j, n := range ne {
		hi, lo := bits.Mul64(nelem, n)
		if n > math.MaxInt || hi != 0 || lo > math.MaxInt {
			return TensorInfo{}, fmt.Sprintf("ne %v has more elements than fit in an int", ne)
		}
		nelem = lo
		ti.Shape[len(ne)-1-j] = int(n)
	}
	if len(ne) > 0 {
		inner = ne[0]
	}
	if inner%tt.blockSize != 0 {
		return TensorInfo{}, fmt.Sprintf("innermost dimension %d is not a multiple of the %s block size %d", inner, tt.name, tt.blockSize)
	}
	hi, size := bits.Mul64(nelem/tt.blockSize, tt.blockBytes)
	if hi != 0 || size > math.MaxInt {
		return TensorInfo{}, fmt.Sprintf("%s shape %v takes more bytes than fit in an int", tt.name, ti.Shape)
	}
	ti.Size = size
	return ti, ""
}

// checkData checks that every tensor is aligned, lies inside a data section
// of size bytes and overlaps no other tensor.
func checkData(path string, tensors []TensorInfo, align, size uint64) error {
	for _, ti := range tensors {
		switch {
		case ti.Offset%align != 0:
			return &Error{Path: path, Tensor: ti.Name, Err: ErrCorrupt,
				Detail: fmt.Sprintf("offset %d is not a multiple of the alignment %d", ti.Offset, align)}
		case ti.Offset > size || ti.Size > size-ti.Offset:
			return &Error{Path: path, Tensor: ti.Name, Err: ErrCorrupt,
				Detail: fmt.Sprintf("%d bytes at offset %d run past the %d-byte data section", ti.Size, ti.Offset, size)}
		}
	}
	order := make([]int, 0, len(tensors))
	for i, ti := range tensors {
		if ti.Size > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tensors[a].Offset, tensors[b].Offset) })
	for k := 1; k < len(order); k++ {
		prev, cur := tensors[order[k-1]], tensors[order[k]]
		if cur.Offset < prev.Offset+prev.Size {
			return &Error{Path: path, Tensor: cur.Name, Err: ErrCorrupt,
				Detail: fmt.Sprintf("data [%d, %d) overlaps that of %q [%d, %d)",
					cur.Offset, cur.Offset+cur.Size, prev.Name, prev.Offset, prev.Offset+prev.Size)}
		}
	}
	return nil
}
