package llm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUTF8Carry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pieces []string
		want   []string // what each Push returns, then Flush
	}{
		{"ascii", []string{"ab", "c"}, []string{"ab", "c", ""}},
		{"euro split 1+2", []string{"a\xe2", "\x82\xacb"}, []string{"a", "€b", ""}},
		{"euro split 2+1", []string{"\xe2\x82", "\xac"}, []string{"", "€", ""}},
		{"emoji byte by byte", []string{"\xf0", "\x9f", "\x98", "\x80"}, []string{"", "", "", "😀", ""}},
		{"unfinished at end", []string{"x\xf0\x9f"}, []string{"x", "\xf0\x9f"}},
		{"invalid passes through", []string{"\xffa"}, []string{"\xffa", ""}},
	}
	for _, tt := range tests {
		var c UTF8Carry
		var got []string
		for _, p := range tt.pieces {
			got = append(got, c.Push(p))
		}
		got = append(got, c.Flush())
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzUTF8Carry: however a valid text is cut, every piece Push returns is
// valid UTF-8 and the pieces join to the text.
func FuzzUTF8Carry(f *testing.F) {
	f.Add("a€😀b日本", uint8(3))
	f.Fuzz(func(t *testing.T, s string, step uint8) {
		if !utf8.ValidString(s) || step == 0 {
			return
		}
		var c UTF8Carry
		var out strings.Builder
		for i := 0; i < len(s); i += int(step) {
			piece := c.Push(s[i:min(i+int(step), len(s))])
			if !utf8.ValidString(piece) {
				t.Fatalf("piece %q not valid", piece)
			}
			out.WriteString(piece)
		}
		out.WriteString(c.Flush())
		if out.String() != s {
			t.Fatalf("%q became %q", s, out.String())
		}
	})
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: not cut in half
		{"héllo", 3, "hé"},
		{"😀x", 3, ""},
		{"", 0, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
