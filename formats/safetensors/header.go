package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// maxHeaderSize is the largest JSON header accepted, the limit of the
// Python library (MAX_HEADER_SIZE).
const maxHeaderSize = 100_000_000

// metadataKey is the reserved header key of the free-form string map.
const metadataKey = "__metadata__"

// dtypeBits gives the element size in bits of each dtype the reference
// library knows, so that sizes can be checked even for tensors this package
// cannot hand out. A dtype string missing from this table is accepted as
// long as its byte range is sane; its size cannot be checked.
var dtypeBits = map[string]uint64{
	"BOOL": 8, "U8": 8, "I8": 8,
	"F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32,
	"I64": 64, "U64": 64, "F64": 64, "C64": 64,
	"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

// info is one tensor of a parsed file.
type info struct {
	path       string // the file holding the tensor, for error messages
	dtype      string // as written in the header, e.g. "F32" or "I64"
	shape      []int
	begin, end uint64 // data_offsets, relative to the data area
	data       []byte // the tensor's bytes, aliasing the file
}

// rawInfo is a tensor entry of the JSON header.
type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// parseFile validates the safetensors file b and returns its tensors, whose
// data alias b, and its __metadata__. path names the file in errors.
func parseFile(path string, b []byte) (map[string]info, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, corrupt(path, "", fmt.Sprintf("file is %d bytes, too short for the 8-byte header length", len(b)))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeaderSize {
		return nil, nil, corrupt(path, "", fmt.Sprintf("header length %d exceeds the %d-byte limit", n, maxHeaderSize))
	}
	if n > uint64(len(b)-8) {
		return nil, nil, corrupt(path, "", fmt.Sprintf("header length %d runs past the end of the %d-byte file", n, len(b)))
	}
	hdr, data := b[8:8+n], b[8+n:]
	if !utf8.Valid(hdr) {
		return nil, nil, corrupt(path, "", "header is not valid UTF-8")
	}
	if t := bytes.TrimLeft(hdr, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, nil, corrupt(path, "", "header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, nil, corrupt(path, "", "header is not valid JSON: "+err.Error())
	}

	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names) // report the same error first on every run

	var meta map[string]string
	tensors := make(map[string]info, len(raw))
	for _, name := range names {
		if name == metadataKey {
			if err := json.Unmarshal(raw[name], &meta); err != nil {
				return nil, nil, corrupt(path, "", "__metadata__ is not a map of strings: "+err.Error())
			}
			continue
		}
		ti, err := parseInfo(path, name, raw[name], data)
		if err != nil {
			return nil, nil, err
		}
		tensors[name] = ti
	}
	if err := checkOverlap(path, names, tensors); err != nil {
		return nil, nil, err
	}
	return tensors, meta, nil
}

// parseInfo validates the header entry msg of tensor name against the data
// area.
func parseInfo(path, name string, msg json.RawMessage, data []byte) (info, error) {
	var ri rawInfo
	if err := json.Unmarshal(msg, &ri); err != nil {
		return info{}, corrupt(path, name, "bad header entry: "+err.Error())
	}
	switch {
	case ri.DType == nil || *ri.DType == "":
		return info{}, corrupt(path, name, "header entry has no dtype")
	case ri.Shape == nil:
		return info{}, corrupt(path, name, "header entry has no shape")
	case len(ri.DataOffsets) != 2:
		return info{}, corrupt(path, name, fmt.Sprintf("data_offsets %v is not a [begin, end] pair", ri.DataOffsets))
	}
	ti := info{path: path, dtype: *ri.DType, begin: ri.DataOffsets[0], end: ri.DataOffsets[1]}

	nelem := uint64(1)
	ti.shape = make([]int, len(ri.Shape))
	for i, d := range ri.Shape {
		hi, lo := bits.Mul64(nelem, d)
		if d > math.MaxInt || hi != 0 || lo > math.MaxInt {
			return info{}, corrupt(path, name, fmt.Sprintf("shape %v has more elements than fit in an int", ri.Shape))
		}
		nelem = lo
		ti.shape[i] = int(d)
	}

	if ti.begin > ti.end {
		return info{}, corrupt(path, name, fmt.Sprintf("data_offsets [%d, %d] end before they begin", ti.begin, ti.end))
	}
	if ti.end > uint64(len(data)) {
		return info{}, corrupt(path, name, fmt.Sprintf("data_offsets [%d, %d] run past the %d-byte data area", ti.begin, ti.end, len(data)))
	}
	if nbits, ok := dtypeBits[ti.dtype]; ok {
		hi, lo := bits.Mul64(nelem, nbits)
		if hi != 0 || lo%8 != 0 || lo/8 != ti.end-ti.begin {
			return info{}, corrupt(path, name, fmt.Sprintf("data_offsets [%d, %d] hold %d bytes, but %s shape %v needs %s",
				ti.begin, ti.end, ti.end-ti.begin, ti.dtype, ti.shape, bitsText(hi, lo)))
		}
	}
	ti.data = data[ti.begin:ti.end:ti.end]
	return ti, nil
}

// bitsText describes a size of hi*2^64+lo bits in bytes, for messages.
func bitsText(hi, lo uint64) string {
	switch {
	case hi != 0:
		return "more than 2^61 bytes"
	case lo%8 != 0:
		return fmt.Sprintf("%d bits, not a whole number of bytes", lo)
	}
	return fmt.Sprintf("%d bytes", lo/8)
}

// checkOverlap reports two non-empty tensors whose byte ranges overlap.
// names lists every key of tensors (and possibly the metadata key).
func checkOverlap(path string, names []string, tensors map[string]info) error {
	byBegin := make([]string, 0, len(tensors))
	for _, name := range names {
		if ti, ok := tensors[name]; ok && ti.begin < ti.end {
			byBegin = append(byBegin, name)
		}
	}
	slices.SortStableFunc(byBegin, func(a, b string) int { return cmp.Compare(tensors[a].begin, tensors[b].begin) })
	for i := 1; i < len(byBegin); i++ {
		prev, cur := tensors[byBegin[i-1]], tensors[byBegin[i]]
		if cur.begin < prev.end {
			return corrupt(path, byBegin[i], fmt.Sprintf("data_offsets [%d, %d] overlap those of %q [%d, %d]",
				cur.begin, cur.end, byBegin[i-1], prev.begin, prev.end))
		}
	}
	return nil
}
