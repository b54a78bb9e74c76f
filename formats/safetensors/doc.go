// Package safetensors reads and writes checkpoints in the Hugging Face
// safetensors format.
//
// A safetensors file is an unsigned 64-bit little-endian header length N,
// N bytes of UTF-8 JSON, then the raw tensor data. The JSON maps each tensor
// name to its dtype, its shape (row-major, outermost dimension first) and its
// data_offsets, a [begin, end) byte range relative to the end of the header.
// The optional key "__metadata__" holds a map of free-form strings.
//
// # Reading
//
// Open maps a file into memory, or every shard of a checkpoint split by a
// model.safetensors.index.json, and validates the whole header before it
// returns: header size, JSON syntax, dtypes, shapes, and that every tensor's
// byte range lies inside the data area, has exactly the size its shape and
// dtype call for, and overlaps no other tensor. Parse does the same for a
// file already in memory. No input, however corrupt, makes this package
// panic or allocate much more than the size of the input.
//
// Tensor returns a view whose Data aliases the mapping (no copy), valid until
// Close. Only F32, F16 and BF16 tensors can be read; a checkpoint that also
// carries other dtypes (an I64 position buffer, say) still opens, and asking
// for such a tensor gives an error wrapping ErrUnsupportedDType.
//
// # Writing
//
// Write and WriteFile produce the exact bytes of the Python safetensors
// library (safetensors.torch.save_file): tensors ordered by dtype (F32, then
// BF16, then F16) and then by name, contiguous data, compact JSON with
// "__metadata__" first and the header padded with spaces to a multiple of 8
// bytes, so that every tensor is aligned to its element size.
//
// # Scope
//
// The package owns the byte format only. It knows no model architecture and
// no PEFT key names; those belong to the packages that load models and
// adapters.
package safetensors
