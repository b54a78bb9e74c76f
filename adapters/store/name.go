package store

import (
	"fmt"
	"strings"
)

// ValidName reports whether name may name an object: it returns an error
// wrapping ErrBadName when name is empty, absolute (leading "/"), has an
// empty segment ("a//b", trailing "/"), a "." or ".." segment, a
// backslash, a NUL or another control character. A valid name, joined
// to any root, stays under that root.
func ValidName(name string) error {
	if err := checkPath(name); err != nil {
		return fmt.Errorf("store: object name %q: %w", name, err)
	}
	return nil
}

// checkPath applies ValidName's rules and returns an error wrapping
// ErrBadName without the name, for callers that add their own context.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: absolute", ErrBadName)
	case strings.ContainsRune(p, '\\'):
		return fmt.Errorf("%w: backslash", ErrBadName)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character %U", ErrBadName, r)
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: empty path segment", ErrBadName)
		case ".", "..":
			return fmt.Errorf("%w: %q path segment", ErrBadName, seg)
		}
	}
	return nil
}

// validPrefix checks a List prefix: "" is every object; otherwise it is
// a valid name, optionally followed by one "/" (a directory), or a valid
// name's leading part such as "adapter_" that ends in a partial segment.
func validPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if err := checkPath(p); err != nil {
		return fmt.Errorf("store: list prefix %q: %w", prefix, err)
	}
	return nil
}
