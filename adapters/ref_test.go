package adapters

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"sql", Ref{Name: "sql"}, true},
		{"sql@1", Ref{Name: "sql", Version: 1}, true},
		{"sql-writer_v2.1@42", Ref{Name: "sql-writer_v2.1", Version: 42}, true},
		{"A9", Ref{Name: "A9"}, true},
		{strings.Repeat("a", 128), Ref{Name: strings.Repeat("a", 128)}, true},
		{strings.Repeat("a", 129), Ref{}, false},
		{"", Ref{}, false},
		{"@1", Ref{}, false},
		{"sql@", Ref{}, false},
		{"sql@0", Ref{}, false},
		{"sql@01", Ref{}, false},
		{"sql@-1", Ref{}, false},
		{"sql@+1", Ref{}, false},
		{"sql@1@2", Ref{}, false},
		{"sql@1234567890", Ref{}, false},
		{"../../etc", Ref{}, false},
		{"..", Ref{}, false},
		{".hidden", Ref{}, false},
		{"a/b", Ref{}, false},
		{`a\b`, Ref{}, false},
		{"a b", Ref{}, false},
		{"a\x00", Ref{}, false},
		{"-x", Ref{}, false},
		{"é", Ref{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ParseRef(%q): %v does not wrap ErrBadName", tt.in, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, got.String())
		}
	}
}

// FuzzParseRef checks that every accepted reference is a safe file name
// and round-trips through String.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"sql", "sql@1", "a.b-c_d@99", "../../etc", "a@01", "a@", "@", "a/b@1", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ParseRef(%q): %v does not wrap ErrBadName", s, err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q).String() = %q", s, r.String())
		}
		if r.Version < 0 || ValidName(r.Name) != nil {
			t.Fatalf("ParseRef(%q) = %+v", s, r)
		}
		if strings.ContainsAny(r.Name, "/\\@\x00") || strings.HasPrefix(r.Name, ".") {
			t.Fatalf("ParseRef(%q) accepted an unsafe name %q", s, r.Name)
		}
	})
}
