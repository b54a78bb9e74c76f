package adapters

import (
	"fmt"
	"strconv"
	"strings"
)

// maxNameLen bounds adapter names, which become file names in the disk
// tier and keys in the registry.
const maxNameLen = 128

// ValidName reports whether name may name an adapter: 1 to 128 ASCII
// letters, digits, '.', '_' and '-', starting with a letter or digit.
// The rule keeps names safe as file names on every platform (no '/',
// no "..", no leading '.') and leaves '@' free to separate a version.
// The error wraps ErrBadName.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("adapters: %w: empty name", ErrBadName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("adapters: %w: name of %d bytes, longer than %d", ErrBadName, len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("adapters: %w: %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", ErrBadName, name)
		}
	}
	return nil
}

// Ref names an adapter version: Name@Version, or the latest version of
// Name when Version is 0.
type Ref struct {
	Name    string
	Version int // 1, 2, ...; 0 means the latest
}

// ParseRef parses "name" or "name@N", where name passes ValidName and N is
// a positive decimal version without leading zeros (so that every version
// has one spelling). The error wraps ErrBadName.
func ParseRef(s string) (Ref, error) {
	name, ver, hasVer := strings.Cut(s, "@")
	if err := ValidName(name); err != nil {
		return Ref{}, fmt.Errorf("adapters: reference %q: %w", s, errBadNameOnly(err))
	}
	if !hasVer {
		return Ref{Name: name}, nil
	}
	if ver == "" || ver[0] == '0' || len(ver) > 9 || strings.TrimLeft(ver, "0123456789") != "" {
		return Ref{}, fmt.Errorf("adapters: reference %q: %w: version must be a positive integer without leading zeros", s, ErrBadName)
	}
	v, _ := strconv.Atoi(ver) // at most 9 digits: cannot fail or overflow
	return Ref{Name: name, Version: v}, nil
}

// errBadNameOnly strips ValidName's "adapters: " prefix so that messages
// of callers that add their own context do not repeat it.
func errBadNameOnly(err error) error {
	return unprefixed{err}
}

type unprefixed struct{ err error }

func (u unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), "adapters: ") }
func (u unprefixed) Unwrap() error { return u.err }

// String returns "name" or "name@N".
func (r Ref) String() string {
	if r.Version == 0 {
		return r.Name
	}
	return r.Name + "@" + strconv.Itoa(r.Version)
}
