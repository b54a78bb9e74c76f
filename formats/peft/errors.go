package peft

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped by every error that Parse and ReadFile return so
// that callers can tell a broken file from a feature Switchyard lacks.
var (
	// ErrInvalid marks a configuration that is malformed or that PEFT
	// itself would refuse: bad JSON, a field of the wrong type, a
	// non-positive rank, a pattern that does not compile.
	ErrInvalid = errors.New("invalid adapter config")

	// ErrUnsupported marks a valid PEFT configuration that uses a feature
	// Switchyard does not serve yet (DoRA, modules_to_save, embedding
	// LoRA, ...).
	ErrUnsupported = errors.New("not supported yet")
)

// FieldError reports a problem with one field of an adapter_config.json.
// Err is ErrInvalid or ErrUnsupported; for ErrUnsupported, Msg names the
// feature and the message ends in "not supported yet".
type FieldError struct {
	File  string // path of the file, "" when parsing bytes
	Field string // JSON key, e.g. "use_dora"
	Msg   string // what is wrong, in words
	Err   error  // ErrInvalid or ErrUnsupported
}

func (e *FieldError) Error() string {
	s := "peft: "
	if e.File != "" {
		s += e.File + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Msg
	if e.Err == ErrUnsupported {
		s += " " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrInvalid or ErrUnsupported.
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func unsupported(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrUnsupported}
}
