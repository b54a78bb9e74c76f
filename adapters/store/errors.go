package store

import "errors"

// Sentinel errors, wrapped by the errors the stores return; test for them
// with errors.Is.
var (
	// ErrNotFound reports an object (or, for Open, a repository or
	// bucket) that does not exist.
	ErrNotFound = errors.New("not found")

	// ErrReadOnly reports a write (Put, Delete) to a store that cannot
	// be written, such as HTTP(S) and the Hugging Face hub.
	ErrReadOnly = errors.New("store is read-only")

	// ErrBadName reports an object name or URI that is not allowed:
	// empty, absolute, with ".." or empty segments, backslashes, NUL,
	// or an unknown URI scheme.
	ErrBadName = errors.New("bad name")

	// ErrAuth reports credentials the server refused (HTTP 401/403, S3
	// AccessDenied).
	ErrAuth = errors.New("access denied")

	// ErrUnreachable reports a store whose server could not be reached
	// (connection refused, DNS failure, timeout).
	ErrUnreachable = errors.New("store unreachable")

	// ErrShortBody reports an object whose body ended before (or ran
	// past) the size its store announced.
	ErrShortBody = errors.New("object body does not match its size")
)
