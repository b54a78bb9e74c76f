package gguf

import (
	"fmt"

	"github.com/switchyard-ai/switchyard/kernels"
)

// ggml tensor types (enum ggml_type), as stored in TensorInfo.Type. Ids
// 4, 5, 31-33 and 36-38 belonged to types that GGUF files no longer use.
const (
	TypeF32     uint32 = 0
	TypeF16     uint32 = 1
	TypeQ4_0    uint32 = 2
	TypeQ4_1    uint32 = 3
	TypeQ5_0    uint32 = 6
	TypeQ5_1    uint32 = 7
	TypeQ8_0    uint32 = 8
	TypeQ8_1    uint32 = 9
	TypeQ2_K    uint32 = 10
	TypeQ3_K    uint32 = 11
	TypeQ4_K    uint32 = 12
	TypeQ5_K    uint32 = 13
	TypeQ6_K    uint32 = 14
	TypeQ8_K    uint32 = 15
	TypeIQ2_XXS uint32 = 16
	TypeIQ2_XS  uint32 = 17
	TypeIQ3_XXS uint32 = 18
	TypeIQ1_S   uint32 = 19
	TypeIQ4_NL  uint32 = 20
	TypeIQ3_S   uint32 = 21
	TypeIQ2_S   uint32 = 22
	TypeIQ4_XS  uint32 = 23
	TypeI8      uint32 = 24
	TypeI16     uint32 = 25
	TypeI32     uint32 = 26
	TypeI64     uint32 = 27
	TypeF64     uint32 = 28
	TypeIQ1_M   uint32 = 29
	TypeBF16    uint32 = 30
	TypeTQ1_0   uint32 = 34
	TypeTQ2_0   uint32 = 35
	TypeMXFP4   uint32 = 39
	TypeNVFP4   uint32 = 40
	TypeQ1_0    uint32 = 41
)

// typeTraits describes the storage of one ggml type: blockSize values take
// blockBytes bytes (ggml's blck_size and type_size).
type typeTraits struct {
	name                  string
	blockSize, blockBytes uint64
}

// qk is the super-block size of the K and IQ quantizations (QK_K).
const qk = 256

// ggmlTypes is ggml's type_traits table, for sizes and names.
var ggmlTypes = map[uint32]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 2 + 16},
	TypeQ4_1:    {"Q4_1", 32, 2 + 2 + 16},
	TypeQ5_0:    {"Q5_0", 32, 2 + 4 + 16},
	TypeQ5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	TypeQ8_0:    {"Q8_0", 32, 2 + 32},
	TypeQ8_1:    {"Q8_1", 32, 2 + 2 + 32},
	TypeQ2_K:    {"Q2_K", qk, 2 + 2 + qk/16 + qk/4},
	TypeQ3_K:    {"Q3_K", qk, 2 + qk/4 + qk/8 + 12},
	TypeQ4_K:    {"Q4_K", qk, 2 + 2 + 12 + qk/2},
	TypeQ5_K:    {"Q5_K", qk, 2 + 2 + 12 + qk/8 + qk/2},
	TypeQ6_K:    {"Q6_K", qk, 2 + qk/2 + qk/4 + qk/16},
	TypeQ8_K:    {"Q8_K", qk, 4 + qk + qk/8},
	TypeIQ2_XXS: {"IQ2_XXS", qk, 2 + qk/4},
	TypeIQ2_XS:  {"IQ2_XS", qk, 2 + qk/4 + qk/32},
	TypeIQ3_XXS: {"IQ3_XXS", qk, 2 + qk/4 + qk/8},
	TypeIQ1_S:   {"IQ1_S", qk, 2 + qk/8 + qk/16},
	TypeIQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	TypeIQ3_S:   {"IQ3_S", qk, 2 + qk/4 + qk/8 + qk/32 + 4},
	TypeIQ2_S:   {"IQ2_S", qk, 2 + qk/4 + qk/16},
	TypeIQ4_XS:  {"IQ4_XS", qk, 2 + 2 + qk/2 + qk/64},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", qk, qk/8 + qk/16 + qk/32},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", qk, 2 + 4*13},
	TypeTQ2_0:   {"TQ2_0", qk, 2 + 64},
	TypeMXFP4:   {"MXFP4", 32, 1 + 16},
	TypeNVFP4:   {"NVFP4", 64, 4 + 32},
	TypeQ1_0:    {"Q1_0", 128, 2 + 16},
}

// TypeName returns the ggml name of tensor type t, such as "Q4_K", or
// "type(t)" for an id that is not in the table.
func TypeName(t uint32) string {
	if tt, ok := ggmlTypes[t]; ok {
		return tt.name
	}
	return fmt.Sprintf("type(%d)", t)
}

// TypeSize reports how tensor type t is stored: blockSize consecutive
// values (along the innermost dimension) take blockBytes bytes. ok is
// false for an id that is not in the table.
func TypeSize(t uint32) (blockSize, blockBytes uint64, ok bool) {
	tt, ok := ggmlTypes[t]
	return tt.blockSize, tt.blockBytes, ok
}

// kernelTypes maps the ggml types that the kernels use to their DType.
var kernelTypes = map[uint32]kernels.DType{
	TypeF32:  kernels.F32,
	TypeF16:  kernels.F16,
	TypeBF16: kernels.BF16,
	TypeQ8_0: kernels.Q8_0,
	TypeQ4_K: kernels.Q4_K,
	TypeQ6_K: kernels.Q6_K,
	TypeQ5_0: kernels.Q5_0,
	TypeQ4_0: kernels.Q4_0,
}

// ggmlType is the inverse of kernelTypes.
var ggmlType = map[kernels.DType]uint32{
	kernels.F32:  TypeF32,
	kernels.F16:  TypeF16,
	kernels.BF16: TypeBF16,
	kernels.Q8_0: TypeQ8_0,
	kernels.Q4_K: TypeQ4_K,
	kernels.Q6_K: TypeQ6_K,
	kernels.Q5_0: TypeQ5_0,
	kernels.Q4_0: TypeQ4_0,
}

// valueType is the type of a metadata value (enum gguf_type).
type valueType uint32

const (
	typeUint8 valueType = iota
	typeInt8
	typeUint16
	typeInt16
	typeUint32
	typeInt32
	typeFloat32
	typeBool
	typeString
	typeArray
	typeUint64
	typeInt64
	typeFloat64
	numValueTypes
)

// minValueSize is the fewest bytes a value of each type takes in a file:
// the bound that keeps an array count from outgrowing the file.
var minValueSize = [numValueTypes]uint64{
	typeUint8: 1, typeInt8: 1, typeBool: 1,
	typeUint16: 2, typeInt16: 2,
	typeUint32: 4, typeInt32: 4, typeFloat32: 4,
	typeUint64: 8, typeInt64: 8, typeFloat64: 8,
	typeString: 8,     // the length
	typeArray:  4 + 8, // element type and count
}

var valueTypeNames = [numValueTypes]string{
	"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
	"BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
}

func (t valueType) String() string {
	if t < numValueTypes {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}
