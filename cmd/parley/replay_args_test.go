package main

import (
	"slices"
	"testing"
)

// TestSessionArg finds the session id among replay's flags, also when the
// id starts with "-" as base64url ids may.
func TestSessionArg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		session string
		rest    []string
	}{
		{[]string{"abc"}, "abc", []string{}},
		{[]string{"abc", "--json"}, "abc", []string{"--json"}},
		{[]string{"--json", "abc"}, "abc", []string{"--json"}},
		{[]string{"-2_kaVGZ21olVSM4oHM84w", "--json"}, "-2_kaVGZ21olVSM4oHM84w", []string{"--json"}},
		{[]string{"--json", "-2_kaVGZ21olVSM4oHM84w"}, "-2_kaVGZ21olVSM4oHM84w", []string{"--json"}},
		{[]string{"-data-dir=/tmp/x", "id"}, "id", []string{"-data-dir=/tmp/x"}},
		{[]string{"--", "-json"}, "-json", []string{}},
		{[]string{"--json"}, "", []string{"--json"}},
		{[]string{"-h"}, "", []string{"-h"}},                     // help, not a session
		{[]string{"--bogus", "abc"}, "abc", []string{"--bogus"}}, // an unknown flag stays a flag
		{[]string{"-xyz"}, "", []string{"-xyz"}},                 // not an id's form
		{[]string{"a", "b"}, "a", []string{"b"}},                 // the extra one is refused later
		{nil, "", nil},
	}
	for _, tt := range tests {
		session, rest := sessionArg(tt.args)
		if session != tt.session || len(rest) != len(tt.rest) || (len(rest) > 0 && !slices.Equal(rest, tt.rest)) {
			t.Errorf("sessionArg(%q) = %q, %q; want %q, %q", tt.args, session, rest, tt.session, tt.rest)
		}
	}
}
