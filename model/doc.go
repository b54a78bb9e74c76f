// Package model owns the decoder-only transformer architectures Switchyard
// runs (Llama, Mistral, Qwen2): their configuration, their weights as
// loaded from a Hugging Face directory or a GGUF file, the key/value cache
// and the batched forward pass.
//
// The forward pass takes a batch of sequences, each adding any number of
// tokens (a prefill chunk or one decode token), and runs every linear
// projection once over all the batch's tokens, so the weights are read once
// per step. Per-token corrections such as LoRA adapters enter through the
// Delta interface, which the lora package implements; the base weights are
// never modified.
//
// Keys and values live in a paged cache: a KVPool of fixed-size blocks
// shared by all sequences, each Cache holding a block table over it, so
// memory is bounded and sequences of any length share one budget. Inside
// a block the keys are stored transposed, so that attention's two
// products are both sums of scaled rows. NewCache makes a private cache
// of a given capacity for one-off use.
//
// One RoPE convention is used inside: Hugging Face's rotate_half, where
// dimension j of a head pairs with j + head_dim/2. Checkpoints that store
// q/k rows interleaved (GGUF files of Llama models) are converted at load.
package model
