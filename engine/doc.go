// Package engine turns a model, its tokenizer and LoRA adapters into text
// generation: it runs batches of requests, each on its own adapter or on
// the base model, through the model step by step, samples their next
// tokens and decides when each one is finished.
//
// Scheduler is the serving loop: continuous batching, where requests join
// and leave the running batch at every step, long prompts are prefilled
// in chunks beside running decodes, the paged KV cache has a byte budget
// and a full cache preempts the newest sequence for later recomputation.
// Engine.Generate runs a fixed batch to completion, for the command line.
//
// Every request in a batch shares each step's pass over the base weights;
// its adapter adds only its own low-rank delta, so a batch mixes any
// number of adapters and each request gets the result it would get alone.
package engine
