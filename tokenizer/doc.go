// Package tokenizer owns the conversion between text and token ids for the
// models Switchyard serves, matching the reference implementations id for
// id: the Hugging Face tokenizers library for tokenizer.json files and
// llama.cpp for GGUF vocabularies.
//
// A Tokenizer is built from one of three sources:
//
//   - LoadHF / ParseHF: a Hugging Face tokenizer.json (BPE model, byte-level
//     as in GPT-2, Llama 3 and Qwen2, or SentencePiece-style with byte
//     fallback as in Llama 2 and Mistral) plus the tokenizer_config.json
//     beside it, which supplies add_bos_token, add_eos_token, the bos/eos
//     tokens and the chat template.
//   - FromGGUF: the tokenizer.ggml.* metadata of a GGUF file, filled in by
//     the caller. The "llama" model is SentencePiece as llama.cpp's
//     llm_tokenizer_spm runs it (score-driven merges, byte fallback); the
//     "gpt2" model is byte-level BPE with the pre-tokenizer named by
//     tokenizer.ggml.pre. This package does not read GGUF files itself.
//   - FromLlama2C: the tokenizer.bin of llama2.c, which is encoded exactly
//     like a GGUF "llama" vocabulary.
//
// # Encoding
//
// Encode first splits the text on added and special tokens (for example
// "<|im_start|>"), the way the source does it: leftmost-longest with the
// lstrip/rstrip/single_word/normalized flags for Hugging Face files, longest
// token first for GGUF as llama.cpp does. The remaining text runs through
// the normalizer, the pre-tokenizer and the model. The pre-tokenizer
// regular expressions of GPT-2, Llama 3 and Qwen2 use look-ahead and
// Unicode classes that Go's regexp lacks; they are hand-coded here and
// recognised by their pattern string. An unknown pattern is an error at
// load time, never a silent approximation.
//
// # Decoding
//
// Decode skips special (control) tokens and turns the rest back into text:
// "▁" becomes a space, <0xAB> byte tokens and byte-level characters become
// raw bytes, and the leading space that SentencePiece adds is removed as the
// source does (Hugging Face's Strip decoder; llama.cpp's detokenize for
// GGUF). Bytes that do not form valid UTF-8 become U+FFFD. A Decoder does
// the same incrementally and never returns half a character; the
// concatenation of its output always equals Decode of the whole sequence.
//
// # Known differences
//
//   - clean_up_tokenization_spaces from tokenizer_config.json is ignored: it
//     is a transformers (not tokenizers) step that makes decoding lossy.
//   - Hugging Face's ByteFallback decoder turns a whole run of byte tokens
//     into one U+FFFD per byte when any of it is invalid; here the complete
//     characters of the run are kept (a Decoder may already have returned
//     them) and only the bytes that cannot complete are replaced.
//   - llama.cpp returns raw bytes; here invalid UTF-8 becomes U+FFFD, one
//     per maximal invalid sequence as String::from_utf8_lossy does.
//   - tokenizer.ggml.pre "default" gets the GPT-2 expression; llama.cpp runs
//     a chain of four expressions that no current model uses.
//   - Letters, numbers and white space are Go's Unicode 15 classes and the
//     NFC tables are Unicode 14; code points classified differently by the
//     references' Unicode versions may split differently.
//
// A Tokenizer is immutable once built and safe for concurrent use.
package tokenizer
