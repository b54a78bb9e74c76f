// Package gguf reads and writes GGUF files, the model format of ggml and
// llama.cpp.
//
// A GGUF file (version 3, or the identical little-endian version 2) holds a
// header ("GGUF", version, tensor count, metadata count), typed metadata
// key/value pairs, one info record per tensor (name, dimensions, ggml type,
// offset), then the tensor data, each tensor starting at a multiple of the
// alignment (general.alignment, 32 by default) from the start of the data
// section.
//
// # Reading
//
// Open maps the file into memory and validates it completely before it
// returns: magic and version, every string length and array count against
// the bytes left, at most 4 dimensions, known ggml types with whole blocks,
// unique keys and tensor names, and tensor data that is aligned, inside the
// data section and overlapping no other tensor. No input, however corrupt,
// makes this package panic or allocate much more than the size of the
// input. Parse does the same for a file already in memory.
//
// Metadata values come back as Go values (see File.Value); typed accessors
// such as File.Uint and File.Strings convert between the integer and float
// widths that different converters write.
//
// Tensor returns a view whose Data aliases the mapping (no copy), valid until
// Close, for the types the kernels use: F32, F16, BF16, Q8_0, Q5_0, Q4_0,
// Q4_K and Q6_K. TensorInfo describes every tensor, whatever its type, and
// the type table (TypeName, TypeSize) knows all ggml types, so files
// holding other quantizations open and name what they hold.
//
// Shapes are row-major, outermost dimension first, like safetensors and
// PyTorch: GGUF's ne (innermost first) reversed. A weight with ne = [in, out]
// has Shape [out, in] and is a kernels.Matrix of out rows.
//
// # Writing
//
// Writer builds a GGUF v3 file from metadata and F32, F16, BF16, Q8_0,
// Q5_0, Q4_0, Q4_K or Q6_K tensors; WriteFile replaces a file atomically.
package gguf
