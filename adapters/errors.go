package adapters

import (
	"errors"

	"github.com/switchyard-ai/switchyard/lora"
)

// Sentinel errors, wrapped by the errors of the Registry and the Cache;
// test for them with errors.Is.
var (
	// ErrBadName reports an adapter name or reference that is not
	// allowed: see ValidName and ParseRef. Names come from requests, so
	// this is how a path-traversal attempt such as "../../etc" ends.
	ErrBadName = errors.New("bad adapter name")

	// ErrNotFound reports a name or version that is not registered (or
	// no longer is).
	ErrNotFound = errors.New("adapter not found")

	// ErrMismatch reports an adapter that does not fit the registry's
	// base model: a tensor of the wrong shape, a module or layer the base
	// lacks, another architecture. It is lora.ErrMismatch, so the lora
	// package's detailed errors (naming the tensor) match it too.
	ErrMismatch = lora.ErrMismatch

	// ErrInvalid reports adapter files that cannot be read as an
	// adapter: corrupt or truncated safetensors or GGUF, a broken
	// adapter_config.json, missing files, or more bytes than the
	// registry accepts.
	ErrInvalid = errors.New("invalid adapter files")

	// ErrChecksum reports stored adapter files whose size or SHA-256 is
	// not the one recorded when the adapter was registered: the copy on
	// disk or in the remote store was damaged or replaced.
	ErrChecksum = errors.New("adapter checksum mismatch")

	// ErrBaseMismatch reports a registry opened for another base model
	// than the one it was created for.
	ErrBaseMismatch = errors.New("registry belongs to another base model")

	// ErrBudget reports an adapter that cannot be made compute-ready
	// because it is larger than the tier-0 budget, or because every
	// adapter resident in tier 0 is pinned and the budget is full.
	// Acquire returns it at once rather than waiting: the caller may
	// retry once handles are released.
	ErrBudget = errors.New("tier-0 budget exhausted")

	// ErrClosed reports a Registry or Cache used after Close.
	ErrClosed = errors.New("closed")

	// ErrNotPinned reports an Unpin without a matching Pin.
	ErrNotPinned = errors.New("adapter not pinned")
)
