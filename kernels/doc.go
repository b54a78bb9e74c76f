// Package kernels owns the numeric inner loops of Switchyard: matrix
// multiplication of batched f32 activations by weights stored as f32, bf16,
// f16 or q8_0, the vector operations of a transformer layer (RMSNorm,
// softmax, SiLU, RoPE helpers) and the worker pool that spreads them over
// the CPU cores.
//
// Every operation has a plain Go reference implementation. Faster SIMD
// versions are chosen at run time from the CPU's features; setting the
// environment variable SWITCHYARD_KERNELS=go (or building with the purego
// tag) forces the reference path, so the whole test suite can be run
// against it.
//
// Weights are never expanded in memory: a Matrix keeps the bytes exactly as
// the checkpoint stores them and the kernels convert one block at a time.
package kernels
