package tokenizer

// FormatError reports a tokenizer source that cannot be used: malformed,
// or asking for a feature this package does not implement.
type FormatError struct {
	Source string // the file or vocabulary: "tokenizer.json", a path, "GGUF vocabulary", "tokenizer.bin"
	Err    error
}

// Error returns "tokenizer: <source>: <problem>".
func (e *FormatError) Error() string { return "tokenizer: " + e.Source + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FormatError) Unwrap() error { return e.Err }
