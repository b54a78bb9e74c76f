package safetensors

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchyard-ai/switchyard/internal/fsutil"
	"github.com/switchyard-ai/switchyard/kernels"
)

// dtypeRank orders dtypes as the Python library's Dtype enum does; Write
// puts higher ranks first.
var dtypeRank = map[kernels.DType]int{kernels.F16: 0, kernels.BF16: 1, kernels.F32: 2}

// Write writes tensors and metadata to w as a safetensors file, with
// exactly the layout of the Python safetensors library: tensors ordered by
// dtype (F32, then BF16, then F16; a single-dtype file is simply sorted by
// name) and then by name, "__metadata__" first with its keys sorted and
// omitted when metadata is empty, contiguous data_offsets, and the JSON
// header space-padded to a multiple of 8 bytes.
//
// Every tensor must have a unique, non-empty, valid UTF-8 name other than
// "__metadata__", a DType of F32, F16 or BF16, non-negative dimensions, and
// exactly the Data its shape and dtype call for. Nothing is written when a
// tensor breaks these rules.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	hdr, order, err := encodeHeader(tensors, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))))
	bw.Write(hdr)
	for _, i := range order {
		bw.Write(tensors[i].Data)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// WriteFile writes a safetensors file at path as Write does, atomically: it
// writes a temporary file in the same directory, syncs it, renames it over
// path and syncs the directory, so that path holds either its old content
// or the complete new file, even after a crash. The file gets mode 0644.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	if err := fsutil.WriteFileAtomic(path, func(w io.Writer) error { return Write(w, tensors, metadata) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// encodeHeader validates tensors and metadata and returns the padded JSON
// header and the order in which to write the tensors' data.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if err := checkTensor(t); err != nil {
			return nil, nil, err
		}
		if seen[t.Name] {
			return nil, nil, &Error{Tensor: t.Name, Err: ErrInvalid, Detail: "two tensors have this name"}
		}
		seen[t.Name] = true
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, &Error{Err: ErrInvalid, Detail: fmt.Sprintf("metadata %q: not valid UTF-8", k)}
		}
	}

	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := tensors[a], tensors[b]
		return cmp.Or(cmp.Compare(dtypeRank[tb.DType], dtypeRank[ta.DType]), strings.Compare(ta.Name, tb.Name))
	})

	h := []byte{'{'}
	if len(metadata) > 0 {
		h = appendJSONString(h, metadataKey)
		h = append(h, ':', '{')
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendJSONString(h, k)
			h = append(h, ':')
			h = appendJSONString(h, metadata[k])
		}
		h = append(h, '}')
	}
	var offset uint64
	for _, i := range order {
		t := tensors[i]
		if len(h) > 1 {
			h = append(h, ',')
		}
		h = appendJSONString(h, t.Name)
		h = append(h, `:{"dtype":"`...)
		h = append(h, dtypeNames[t.DType]...)
		h = append(h, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendUint(h, offset, 10)
		h = append(h, ',')
		offset += uint64(len(t.Data))
		h = strconv.AppendUint(h, offset, 10)
		h = append(h, ']', '}')
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	return h, order, nil
}

// checkTensor reports why t cannot be written, if it cannot.
func checkTensor(t Tensor) error {
	if t.Name == "" || t.Name == metadataKey || !utf8.ValidString(t.Name) {
		return &Error{Tensor: t.Name, Err: ErrInvalid, Detail: "name is empty, reserved or not valid UTF-8"}
	}
	if _, ok := dtypeNames[t.DType]; !ok {
		return &Error{Tensor: t.Name, Err: ErrUnsupportedDType,
			Detail: fmt.Sprintf("dtype %v cannot be written (want F32, F16 or BF16)", t.DType)}
	}
	n := uint64(t.DType.RowBytes(1))
	for _, d := range t.Shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if d < 0 || hi != 0 || lo > math.MaxInt {
			return &Error{Tensor: t.Name, Err: ErrShape, Detail: fmt.Sprintf("shape %v is negative or too large", t.Shape)}
		}
		n = lo
	}
	if n != uint64(len(t.Data)) {
		return &Error{Tensor: t.Name, Err: ErrShape,
			Detail: fmt.Sprintf("%v shape %v needs %d bytes of data, has %d", t.DType, t.Shape, n, len(t.Data))}
	}
	return nil
}

// appendJSONString appends s as a JSON string escaped as serde_json does
// (the Python library's encoder): only '"', '\\' and control characters
// are escaped, the latter as \b \t \n \f \r or \u00xx. s must be UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
