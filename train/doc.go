// Package train finetunes LoRA adapters on a frozen base model, on the CPU.
//
// The trainer has its own forward pass, which keeps the activations that
// backward needs, and a backward pass through every layer type of the
// engine: embedding lookup, RMSNorm, attention with rotate_half RoPE, GQA
// and the causal mask, the SwiGLU MLP and the tied or untied LM head. Only
// the LoRA A and B matrices receive gradients; the base weights are read
// in place (never copied or written), so one loaded model.Model can serve
// requests and train several jobs at once, each job with its own pool.
//
// Each op is a forward/backward pair (ops.go) in the style of llm.c's
// train_gpt2.c, with shapes in comments: n is the number of tokens of a
// packed micro-batch, H the hidden width, I the MLP width, Q = Heads·HeadDim,
// KV = KVHeads·HeadDim, V the vocabulary and r a LoRA rank. The products
// of the forward pass run on kernels.Pool.MatMul, the SIMD kernel that
// serves inference; the transposed products of backward (dX = dY·W) are
// row loops over kernels.AxpyRow, Axpy and Dot.
//
// The loss is the token-level mean next-token cross-entropy over the
// completion tokens of every example of an optimizer step (prompt tokens
// are masked), exactly Hugging Face's causal-LM loss with labels = -100 on
// the prompt. Examples of a micro-batch are packed into one token stream;
// each keeps its own positions and attends only to itself, so packing
// changes speed, never results. The optimizer is AdamW with decoupled
// weight decay (torch.optim.AdamW), with linear warm-up, cosine, linear or
// constant decay, clipping by global norm and gradient accumulation.
// A run is reproducible from its seed, and a run resumed from a checkpoint
// gives the same adapter, bit for bit, as one that was never interrupted.
package train
