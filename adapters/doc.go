// Package adapters keeps the LoRA adapters of one base model: a Registry
// that names, versions and validates them, and a Cache that makes them
// compute-ready for requests within memory and disk budgets.
//
// # Registry
//
// Open opens a registry directory for a base model (its name and
// model.Config). Register fetches an adapter from any URI the store
// package opens (file://, s3://, https://, hf://), checks it against the
// base with the lora package (every tensor's shape, the target modules,
// the architecture of a GGUF file) and refuses a mismatch with an error
// naming the tensor, so an adapter that does not fit is never served as
// if it were the base. Accepted adapters become the next version of
// their name ("sql@1", "sql@2", ...; numbers are never reused), with
// metadata (base model and fingerprint, ranks, targets, sizes, SHA-256 of
// each file and of the whole, source URI, creation time) in a bbolt
// database, registry.db, and files in a content-addressed blob store
// (the directory blobs/ beside it, or RegistryOptions.Blobs).
//
// Register writes the blobs durably (temporary file, fsync, rename)
// before it commits the metadata in one transaction: after a crash at
// any moment a version is either wholly registered or absent, and Open
// removes the temporary files and unreferenced blobs left behind. Every
// read of a blob checks its size and SHA-256 (ErrChecksum).
//
// Names are 1-128 letters, digits, '.', '_' and '-', starting with a
// letter or digit (ValidName); references are "name" (the latest
// version) or "name@N" (ParseRef). Anything else, "../../etc" included,
// is an error wrapping ErrBadName before it reaches a file system.
//
// # Cache
//
// A Cache serves adapters from four tiers:
//
//	0  compute-ready *lora.Adapter in memory     budget Budgets.Tier0
//	1  raw file bytes in memory                  budget Budgets.Tier1
//	2  files in a local directory                budget Budgets.Tier2
//	3  the Loader's store (the Registry's blobs) no budget
//
// Acquire returns a *Handle on the adapter a reference names, pinned
// until Release. A hit (the adapter in tier 0) takes one shard read
// lock and two atomic operations and allocates nothing. A miss loads the
// adapter from the fastest tier that has it, in its own goroutine:
// concurrent misses for one version share one load, loads hold no lock
// that other requests need, and a request whose context ends returns at
// once while the load goes on for the others (it is cancelled when no
// request is left waiting).
//
// Tiers are inclusive: a load from the remote store keeps the files in
// tier 1 and writes them to tier 2 (after the requests have their
// adapter) when the budgets allow, so evicting an adapter from tier 0
// demotes it to the copy below rather than forgetting it. Each tier
// evicts, when an insertion would exceed its budget and without any
// background goroutine, the entry with the lowest score: the logical
// time of its last use plus a bonus per doubling of its hit count (LFU
// with aging). Pinned adapters, in use by a request or held by Pin,
// are never evicted from tier 0; if the pinned ones leave no room,
// Acquire fails with ErrBudget at once instead of waiting.
//
// Deleting or replacing a version is safe while requests use it: a
// Handle keeps its adapter until released, the cache stops handing out
// the deleted version at once, and "name" resolves to the newest version
// from the next request on.
//
// Prefetch and Warm load adapters ahead of requests; Pin and Unpin keep
// hot ones resident; Residency reports what each tier holds with hit,
// miss and load-time statistics.
//
// # Metrics
//
// With CacheOptions.Metrics set, a Cache registers
//
//	switchyard_adapter_cache_hits_total{tier}      requests (tier 0) or loads (tiers 1-3) served by the tier
//	switchyard_adapter_cache_misses_total{tier}    requests (tier 0) or loads (tiers 1-2) that missed it
//	switchyard_adapter_cache_load_seconds{source}  histogram of load time by source (raw, disk, remote)
//	switchyard_adapter_cache_bytes{tier}           bytes held by tiers 0-2
//	switchyard_adapter_cache_evictions_total{tier} evictions from tiers 0-2
package adapters
