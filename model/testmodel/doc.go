// Package testmodel writes models with random weights, for tests and
// benchmarks that need a real checkpoint on disk but not a trained one.
//
// A Shape describes the architecture (Tiny for unit tests, SmolLM2_135M
// for benchmarks at a real model's size). WriteHF writes it as a Hugging
// Face model directory (config.json, generation_config.json and
// model.safetensors) and WriteGGUF as a GGUF v3 file laid out as
// llama.cpp's convert_hf_to_gguf.py lays out the same checkpoint,
// including the interleaved q/k row order of Llama and a minimal
// SentencePiece-style vocabulary, so that llama.cpp itself can load it.
//
// The weights are a pure function of the shape and a seed: every tensor is
// drawn from its own PCG stream, keyed by its Hugging Face name, so the
// Hugging Face and GGUF files written with the same seed hold the same
// values up to the rounding of their storage types. Matrices and biases
// are drawn from N(0, 0.02²) and norm weights from 1 + 0.1·N(0, 1).
//
// WriteSmolLM2Files writes SmolLM2-135M-shaped files once into a cache
// directory and reuses them afterwards.
//
// The package does not import package model, so that model's own tests
// can use it.
package testmodel
