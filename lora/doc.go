// Package lora owns LoRA adapters as compute-ready weights and the batched
// LoRA delta that the forward pass adds to its linear projections.
//
// # Adapters
//
// An Adapter holds, for every decoder layer and projection it touches, a
// Pair: lora_A as stored ([rank, in], F32, F16 or BF16, never widened; any
// GGUF type the kernels read) and lora_B transposed at load time ([rank,
// out], same dtype; a blocked lora_B from GGUF, Q8_0 or a K-quant, whose
// blocks do not survive transposition, becomes F32), with
// PEFT's scaling for that projection. Load reads a Hugging Face PEFT directory
// (adapter_config.json and adapter_model.safetensors) or a llama.cpp GGUF
// LoRA file, and checks every tensor against the base model's
// configuration: a tensor of the wrong shape, an unpaired lora_A or
// lora_B, a rank that disagrees with the config, a key for a module the
// base model lacks or a projection the config does not target is an error
// naming the file and the tensor. An adapter that does not fit its base
// model is never served as if it were the base.
//
// Weights are copied out of the file into one allocation per adapter
// (Adapter.Bytes), so an Adapter outlives the file it came from.
//
// # The batched delta
//
// Batch implements model.Delta for a batch of sequences that use different
// adapters (or none). Consecutive sequences that share an adapter form one
// run; for each run and projection the delta is
//
//	tmp[t, k] = Σ_i x[t, i] · A[k, i]            (shrink, kernels.Pool.MatMul)
//	y[t, j]  += scale · Σ_k tmp[t, k] · BT[k, j]  (expand, split over j)
//
// so each run reads its A and B once per step, ranks may differ between
// runs without padding, and tokens of the base model are left untouched.
//
// Residency (which adapters are in memory, eviction, pinning) belongs to
// the adapters package, not to this one.
package lora
