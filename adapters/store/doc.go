// Package store reads and writes LoRA adapters' files where teams keep
// them: a local or network (NFS) directory, S3-compatible object storage,
// a plain HTTP(S) server, or the Hugging Face hub.
//
// # Stores
//
// A Store holds objects under slash-separated names relative to its root,
// with five operations: Get, Put, Stat, List and Delete. The
// implementations are
//
//   - Dir: files under a local directory. Put writes a temporary file,
//     fsyncs it and renames it into place, so readers never see a partial
//     file; it takes no locks, so it is safe on NFS. Names never escape
//     the root, not even through symbolic links.
//   - S3: a bucket of an S3-compatible server (AWS, MinIO, VersityGW, ...)
//     through minio-go. PutObject is atomic in S3.
//   - HTTP: read-only files under a base URL. Plain HTTP cannot list a
//     directory, so List reports which of the well-known PEFT file names
//     (adapter_config.json, adapter_model.safetensors, adapter_model.bin)
//     exist.
//   - HTTP made by NewHF: a read-only Hugging Face hub repository at one
//     revision. List uses the hub's tree API; files come from
//     {endpoint}/{repo}/resolve/{revision}/{path}.
//
// # Names and URIs
//
// Object names must pass ValidName: no empty, "." or ".." segments, no
// leading "/", no backslash or control characters. Every method of every
// store checks its name, so no name reaches outside the store's root.
//
// Open turns an adapter URI into a Store and the prefix inside it where
// the adapter's files live:
//
//	file:///abs/dir                    Dir rooted at /abs/dir, prefix ""
//	/abs/dir, ./rel/dir, rel/dir       the same as file:// (made absolute)
//	s3://bucket/some/prefix            S3 for bucket, prefix "some/prefix/"
//	http://host/path, https://...      HTTP at that base URL, prefix ""
//	hf://org/repo[@revision][/subdir]  hub repo at revision (default
//	                                   "main"), prefix "subdir/"
//
// A URI whose last segment is a file (a GGUF LoRA such as
// s3://bucket/loras/style.gguf) gives its whole object name as the
// prefix, with no trailing "/".
// A file:// path is cleaned (so "/a/b/../c" is "/a/c"); the ".." segments
// of s3://, hf:// and http(s):// paths are refused with ErrBadName because
// object stores have no directories to resolve them against. A plain name
// with no scheme and no "/" (such as "sql-writer") is a registry name,
// not a store: Open refuses it with ErrBadName and callers look it up in
// their registry first (IsRegistryName tells them apart).
//
// Nothing in the package reads the environment except OptionsFromEnv,
// which Open and the New functions call when given nil Options.
//
// # Errors
//
// Errors wrap the sentinels in errors.go: ErrNotFound, ErrReadOnly,
// ErrBadName, ErrAuth, ErrUnreachable and ErrShortBody; they name the
// store's URI and the object. A body that ends before the size its store
// announced is an error from Read, never a short silent read.
//
// Fetch copies an adapter's objects into a local directory for loading.
package store
