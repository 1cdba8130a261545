package actors

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// stdJSONString encodes s as encoding/json does without HTML escaping.
func stdJSONString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "\n\r\t\x00\x1f\x7f", "<&>", "€😀", "bad \xff byte",
		"\xe2\x82", "line\u2028sep\u2029", "ctl\x17\x17",
	} {
		got := string(appendJSONString(nil, s))
		if want := stdJSONString(s); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello")
	f.Add("\xe2\x82\xac\x00\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		if want := stdJSONString(s); string(got) != want {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func TestDeltaFrame(t *testing.T) {
	t.Parallel()
	f := DeltaFrame("s1", 3, 10, "a\"€", 3)
	var w struct {
		Type, Session, Text string
		Gen                 uint64
		Offset              int
	}
	if err := json.Unmarshal(f.JSON, &w); err != nil {
		t.Fatal(err)
	}
	if w.Type != "delta" || w.Session != "s1" || w.Gen != 3 || w.Offset != 10 || w.Text != "a\"€" {
		t.Errorf("decoded %+v from %s", w, f.JSON)
	}
	if f.Cursor != "3:15" { // 10 + len("a\"€") = 10+5
		t.Errorf("cursor %s, want 3:15", f.Cursor)
	}
	if !utf8.Valid(f.JSON) {
		t.Error("frame is not UTF-8")
	}
}

func TestParseCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Cursor
		wantErr bool
	}{
		{"", Cursor{}, false},
		{"0", Cursor{}, false},
		{"12", Cursor{Seq: 12}, false},
		{"12:0", Cursor{Seq: 12}, false},
		{"12:345", Cursor{Seq: 12, Offset: 345}, false},
		{"x", Cursor{}, true},
		{"-1", Cursor{}, true},
		{"1:-2", Cursor{}, true},
		{"1:x", Cursor{}, true},
		{":5", Cursor{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCursor(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCursor(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil && tt.in != "" && tt.in != "12:0" && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}
